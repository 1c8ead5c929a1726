import EventWire
import Foundation
import GridBase

/// A grid-eventd child process of the campaign: started on the scenario's paths, killed with SIGKILL or stopped
/// with SIGTERM, its log kept in a file.
final class DaemonProcess {
    let bin: String
    let dataDir: String
    let socket: String
    let logPath: String
    var extra: [String]
    var environment: [String: String] = [:]
    /// The HTTP address (default: an ephemeral loopback port).
    var http = "127.0.0.1:0"
    private(set) var process: Process?
    /// Largest resident set seen by `sample()`, bytes.
    private(set) var maxRSS = 0
    /// Largest anonymous resident memory (heap: indexes, buffers) seen by `sample()`; VmRSS also counts the pages
    /// of the memory-mapped segments, which the kernel can drop.
    private(set) var maxAnon = 0
    private(set) var starts = 0

    init(bin: String, dataDir: String, socket: String, extra: [String] = []) {
        self.bin = bin
        self.dataDir = dataDir
        self.socket = socket
        self.extra = extra
        self.logPath = dataDir + ".log"
    }

    var pid: Int32? { process.map(\.processIdentifier) }
    var isRunning: Bool { process?.isRunning ?? false }

    /// Starts the daemon and waits (up to `timeout` s) until its socket accepts connections.
    func start(timeout: Double = 20) throws {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: bin + "/grid-eventd")
        p.arguments = ["--data-dir", dataDir, "--socket", socket, "--metrics-interval", "3600", "--http", http] + extra
        var env = ProcessInfo.processInfo.environment
        env.removeValue(forKey: "GRID_EVENTD_FAULTS")
        for (k, v) in environment { env[k] = v }
        p.environment = env
        if !FileManager.default.fileExists(atPath: logPath) { _ = FileManager.default.createFile(atPath: logPath, contents: nil) }
        let log = FileHandle(forWritingAtPath: logPath)!
        log.seekToEndOfFile()
        p.standardError = log
        p.standardOutput = log
        try p.run()
        try? log.close()
        process = p
        starts += 1
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if UnixSocket.isListening(socket) { return }
            if !p.isRunning { throw ChaosError("grid-eventd exited during start (status \(p.terminationStatus)): \(logTail())") }
            usleep(5_000)
        }
        throw ChaosError("grid-eventd did not listen on \(socket) within \(timeout) s: \(logTail())")
    }

    /// SIGKILL: a crash.
    func kill9() {
        guard let p = process else { return }
        kill(p.processIdentifier, SIGKILL)
        p.waitUntilExit()
        process = nil
    }

    /// SIGTERM and wait (up to 60 s, then SIGKILL); returns the exit status.
    @discardableResult
    func stop() -> Int32 {
        guard let p = process else { return 0 }
        p.terminate()
        let deadline = Date().addingTimeInterval(60)
        while p.isRunning, Date() < deadline { usleep(10_000) }
        if p.isRunning { kill(p.processIdentifier, SIGKILL) }
        p.waitUntilExit()
        process = nil
        return p.terminationStatus
    }

    /// Records the current resident set size; returns it.
    @discardableResult
    func sample() -> Int {
        guard let pid else { return 0 }
        let rss = residentBytes(pid)
        maxRSS = max(maxRSS, rss)
        maxAnon = max(maxAnon, residentBytes(pid, field: "RssAnon:"))
        return rss
    }

    /// Open file descriptors of the daemon.
    func fdCount() -> Int {
        guard let pid else { return 0 }
        return (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/fd").count) ?? 0
    }

    func log() -> String { (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? "" }

    func logTail(_ n: Int = 1500) -> String { String(log().suffix(n)) }

    deinit {
        if let p = process, p.isRunning {
            kill(p.processIdentifier, SIGKILL)
            p.waitUntilExit()
        }
    }
}

/// VmRSS of a process, bytes (`field: "RssAnon:"` for its anonymous memory alone, without mapped file pages).
func residentBytes(_ pid: Int32, field: String = "VmRSS:") -> Int {
    guard let text = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8) else { return 0 }
    for line in text.split(separator: "\n") where line.hasPrefix(field) {
        let kb = line.split(separator: " ").compactMap { Int($0) }.first ?? 0
        return kb * 1024
    }
    return 0
}

/// One `grid-chaos emit` producer process.
final class EmitterProcess {
    let name: String
    let statusPath: String
    let stopPath: String
    let logPath: String
    private let process = Process()
    private(set) var maxQueued = 0
    private(set) var maxRSS = 0

    init(bin: String, work: String, storage: String, name: String, rate: Int, count: Int = 0, spoolDir: String,
         seed: UInt64, flushTimeout: Double = 120) throws {
        self.name = name
        statusPath = work + "/\(name).status"
        stopPath = work + "/\(name).stop"
        logPath = work + "/\(name).log"
        try? FileManager.default.removeItem(atPath: stopPath)
        try? FileManager.default.removeItem(atPath: statusPath)
        process.executableURL = URL(fileURLWithPath: bin + "/grid-chaos")
        process.arguments = [
            "emit", "--storage", storage, "--producer", name, "--rate", "\(rate)", "--count", "\(count)",
            "--spool-dir", spoolDir, "--status", statusPath, "--stop-file", stopPath, "--seed", "\(seed)",
            "--flush-timeout", "\(flushTimeout)",
        ]
        _ = FileManager.default.createFile(atPath: logPath, contents: nil)
        let log = FileHandle(forWritingAtPath: logPath)!
        log.seekToEndOfFile()
        process.standardError = log
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        try? log.close()
    }

    /// The last progress the producer wrote.
    func status() -> [String: Any] {
        guard let data = FileManager.default.contents(atPath: statusPath),
            let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any]
        else { return [:] }
        maxQueued = max(maxQueued, object["max_queued"] as? Int ?? 0)
        maxRSS = max(maxRSS, residentBytes(process.processIdentifier))
        return object
    }

    func int(_ key: String) -> Int { status()[key] as? Int ?? 0 }

    /// Asks the producer to stop emitting; it then flushes.
    func requestStop() { _ = FileManager.default.createFile(atPath: stopPath, contents: nil) }

    /// Waits for the producer to finish (SIGKILL after `timeout`); returns its final status.
    func finish(timeout: Double = 150, stop: Bool = true) -> (exit: Int32, status: [String: Any]) {
        if stop { requestStop() }
        let deadline = Date().addingTimeInterval(timeout)
        while process.isRunning, Date() < deadline { usleep(20_000) }
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        process.waitUntilExit()
        return (process.terminationStatus, status())
    }

    var isRunning: Bool { process.isRunning }

    func log() -> String { (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? "" }

    deinit {
        if process.isRunning {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
        }
    }
}

struct ChaosError: Error, CustomStringConvertible {
    var description: String
    init(_ d: String) { description = d }
}

/// Runs a command to completion; returns its exit status and output.
@discardableResult
func runCommand(_ path: String, _ arguments: [String]) -> (status: Int32, output: String) {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: path)
    p.arguments = arguments
    let pipe = Pipe()
    p.standardOutput = pipe
    p.standardError = pipe
    do { try p.run() } catch { return (-1, "\(error)") }
    let data = pipe.fileHandleForReading.readDataToEndOfFile()
    p.waitUntilExit()
    return (p.terminationStatus, String(decoding: data, as: UTF8.self))
}
