import EventStore
import EventWire
import Foundation
import GridEvents
import Testing

/// A temporary directory removed when released.
final class TempDir {
    let path: String

    init(_ label: String, mode: mode_t = 0o700) {
        var template = Array("/tmp/sgev-\(label)-XXXXXX".utf8CString)
        let p = template.withUnsafeMutableBufferPointer { mkdtemp($0.baseAddress!) }
        path = String(cString: p!)
        chmod(path, mode)
    }

    deinit { try? FileManager.default.removeItem(atPath: path) }

    func file(_ name: String) -> String { path + "/" + name }
}

func productPath(_ name: String) -> String {
    URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath().deletingLastPathComponent().appendingPathComponent(name).path
}

/// A grid-eventd child process on temporary paths.
final class DaemonProcess {
    let dataDir: String
    let socket: String
    let extra: [String]
    let logPath: String
    /// HTTP address for the daemon (default: an ephemeral loopback port nobody uses).
    var extraHTTP = "127.0.0.1:0"
    /// Extra environment variables for the daemon (for example `GRID_EVENTD_FAULTS`).
    var environment: [String: String] = [:]
    private(set) var process: Process?

    init(dataDir: String, socket: String, extra: [String] = []) {
        self.dataDir = dataDir
        self.socket = socket
        self.extra = extra
        self.logPath = dataDir + ".log"
    }

    /// Starts the daemon and waits (up to 15 s) until its socket accepts connections.
    func start() throws {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: productPath("grid-eventd"))
        p.arguments = ["--data-dir", dataDir, "--socket", socket, "--metrics-interval", "3600", "--http", extraHTTP] + extra
        if !environment.isEmpty { p.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 } }
        FileManager.default.createFile(atPath: logPath, contents: nil)
        let logHandle = FileHandle(forWritingAtPath: logPath)!
        logHandle.seekToEndOfFile()
        p.standardError = logHandle
        p.standardOutput = logHandle
        try p.run()
        process = p
        let deadline = Date().addingTimeInterval(15)
        while Date() < deadline {
            if canConnect(socket) { return }
            if !p.isRunning { throw HarnessError("grid-eventd exited during start: \(log())") }
            usleep(20_000)
        }
        throw HarnessError("grid-eventd did not listen on \(socket) within 15 s: \(log())")
    }

    /// Runs a daemon that is expected to refuse to start; returns its exit status (nil if it kept running).
    func startExpectingRefusal() throws -> Int32? {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: productPath("grid-eventd"))
        p.arguments = ["--data-dir", dataDir, "--socket", socket, "--metrics-interval", "3600"] + extra
        FileManager.default.createFile(atPath: logPath, contents: nil)
        let logHandle = FileHandle(forWritingAtPath: logPath)!
        p.standardError = logHandle
        p.standardOutput = logHandle
        try p.run()
        let deadline = Date().addingTimeInterval(15)
        while p.isRunning, Date() < deadline { usleep(20_000) }
        if p.isRunning {
            Foundation.kill(p.processIdentifier, SIGKILL)
            p.waitUntilExit()
            return nil
        }
        return p.terminationStatus
    }

    func log() -> String { (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? "" }

    /// SIGTERM and wait for a clean exit; returns the exit status.
    @discardableResult
    func stop() -> Int32 {
        guard let p = process else { return 0 }
        p.terminate()
        p.waitUntilExit()
        process = nil
        return p.terminationStatus
    }

    /// SIGKILL: a crash.
    func kill() {
        guard let p = process else { return }
        Foundation.kill(p.processIdentifier, SIGKILL)
        p.waitUntilExit()
        process = nil
    }

    deinit {
        if let p = process, p.isRunning {
            Foundation.kill(p.processIdentifier, SIGKILL)
            p.waitUntilExit()
        }
    }
}

struct HarnessError: Error, CustomStringConvertible {
    var description: String
    init(_ d: String) { description = d }
}

func canConnect(_ path: String) -> Bool { UnixSocket.isListening(path) }

func connectUnix(_ fd: Int32, _ path: String) -> Bool { UnixSocket.connect(fd, path: path) }

/// A child process running a built product; output captured.
final class Child: @unchecked Sendable {
    let process = Process()
    private let out = Pipe()
    private let err = Pipe()
    private var outData = Data()
    private var errData = Data()
    private let group = DispatchGroup()

    init(_ product: String, _ arguments: [String], environment: [String: String]? = nil, prefix: [String] = []) throws {
        if prefix.isEmpty {
            process.executableURL = URL(fileURLWithPath: productPath(product))
            process.arguments = arguments
        } else {
            process.executableURL = URL(fileURLWithPath: prefix[0])
            process.arguments = Array(prefix.dropFirst()) + [productPath(product)] + arguments
        }
        if let environment { process.environment = environment }
        process.standardOutput = out
        process.standardError = err
        try process.run()
        group.enter()
        DispatchQueue.global().async { [self] in
            outData = out.fileHandleForReading.readDataToEndOfFile()
            group.leave()
        }
        group.enter()
        DispatchQueue.global().async { [self] in
            errData = err.fileHandleForReading.readDataToEndOfFile()
            group.leave()
        }
    }

    /// Waits for exit (killing the child after `timeout` seconds); returns status and output.
    func wait(timeout: Double = 120) -> (status: Int32, stdout: String, stderr: String) {
        let deadline = Date().addingTimeInterval(timeout)
        while process.isRunning, Date() < deadline { usleep(10_000) }
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        process.waitUntilExit()
        group.wait()
        return (process.terminationStatus, String(decoding: outData, as: UTF8.self), String(decoding: errData, as: UTF8.self))
    }
}

/// The JSON summary emit-load prints last.
func summary(_ stdout: String) -> [String: Any] {
    guard let line = stdout.split(separator: "\n").last,
        let obj = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any]
    else { return [:] }
    return obj
}

func readIds(_ path: String) -> [String] {
    ((try? String(contentsOfFile: path, encoding: .utf8)) ?? "").split(separator: "\n").map(String.init)
}

/// Opens the store read-only and calls `body`.
func withStore<T>(_ dir: String, _ body: (EventStore) throws -> T) throws -> T {
    let store = try EventStore.open(at: dir, options: StoreOptions(readOnly: true))
    defer { store.close() }
    return try body(store)
}

/// Counts stored events whose id carries `tag` (one producer's events).
func countEvents(_ store: EventStore, producerTag tag: String) -> Int {
    var n = 0
    let needle = "-" + tag + "-"
    store.forEachEvent { e in
        if e.id.contains(needle) { n += 1 }
        return true
    }
    return n
}
