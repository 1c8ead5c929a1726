import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A `nats-server` child process on a free loopback port, for tests, grid-chaos and benchmarks. Its store
/// directory and log live in a temporary directory removed with the object; the process is SIGKILLed when the
/// object goes away, so a failing test never leaves a server behind.
public final class NATSServerProcess: @unchecked Sendable {
    /// Where nats-server is, nil when it is not installed (`make test` installs it with apt).
    public static let executable: String? = {
        for p in ["/usr/sbin/nats-server", "/usr/bin/nats-server", "/usr/local/bin/nats-server"]
        where FileManager.default.isExecutableFile(atPath: p) {
            return p
        }
        return nil
    }()
    public static var isInstalled: Bool { executable != nil }

    public let name: String
    public let port: Int
    public let clusterPort: Int?
    public let directory: String
    public var arguments: [String]
    public private(set) var process: Process?
    private let ownsDirectory: Bool

    /// - Parameters:
    ///   - extra: more nats-server flags (auth, TLS, cluster routes).
    ///   - jetStream: `-js` with a store directory under `directory`.
    public init(name: String = "n1", port: Int? = nil, clusterPort: Int? = nil, directory: String? = nil,
                jetStream: Bool = true, extra: [String] = []) {
        self.name = name
        self.port = port ?? freeLoopbackPort()
        self.clusterPort = clusterPort
        if let directory {
            self.directory = directory
            ownsDirectory = false
        } else {
            self.directory = makeTempDirectory("nats-\(name)")
            ownsDirectory = true
        }
        var args = ["-a", "127.0.0.1", "-p", String(self.port), "--server_name", name]
        if jetStream { args += ["-js", "-sd", self.directory + "/js"] }
        self.arguments = args + extra
    }

    public var url: String { "nats://127.0.0.1:\(port)" }
    public var logPath: String { directory + "/\(name).log" }

    /// Starts the server and waits (up to `timeout` seconds) until its client port accepts connections.
    public func start(timeout: Double = 10) throws {
        guard let exe = Self.executable else { throw NATSTestError("nats-server is not installed (apt-get install nats-server)") }
        if let p = process, p.isRunning { return }
        let p = Process()
        p.executableURL = URL(fileURLWithPath: exe)
        p.arguments = arguments
        FileManager.default.createFile(atPath: logPath, contents: nil)
        let log = FileHandle(forWritingAtPath: logPath)!
        log.seekToEndOfFile()
        p.standardOutput = log
        p.standardError = log
        try p.run()
        process = p
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if tcpConnects(port: port) { return }
            if !p.isRunning { throw NATSTestError("nats-server \(name) exited during start: \(tail())") }
            usleep(20_000)
        }
        throw NATSTestError("nats-server \(name) did not listen on \(port) within \(timeout) s: \(tail())")
    }

    /// SIGKILL (a crash); waits for the process to be gone.
    public func kill() {
        guard let p = process else { return }
        if p.isRunning { Glibc.kill(p.processIdentifier, SIGKILL) }
        p.waitUntilExit()
        process = nil
    }

    /// SIGTERM and wait (at most 30 s, then SIGKILL, said on standard error: a server killed before it flushed its
    /// JetStream store may lose what it acknowledged, so a run that lost events can be told apart).
    public func stop() {
        guard let p = process else { return }
        if p.isRunning { p.terminate() }
        let deadline = Date().addingTimeInterval(30)
        while p.isRunning, Date() < deadline { usleep(10_000) }
        if p.isRunning {
            FileHandle.standardError.write(Data("nats-server \(name) did not stop within 30 s of SIGTERM: SIGKILL (what it had not flushed may be lost)\n".utf8))
        }
        kill()
    }

    public var isRunning: Bool { process?.isRunning ?? false }

    /// The end of the server's log (for failure messages).
    public func tail(_ n: Int = 2000) -> String {
        let s = (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? ""
        return String(s.suffix(n))
    }

    deinit {
        kill()
        if ownsDirectory { try? FileManager.default.removeItem(atPath: directory) }
    }
}

/// A JetStream cluster of `size` nats-server processes on loopback, routes between every pair.
public final class NATSClusterProcesses: @unchecked Sendable {
    public let servers: [NATSServerProcess]
    public let directory: String

    public init(size: Int = 3, clusterName: String = "sgev", extra: [String] = []) {
        let directory = makeTempDirectory("nats-cluster")
        self.directory = directory
        let clientPorts = (0..<size).map { _ in freeLoopbackPort() }
        let routePorts = (0..<size).map { _ in freeLoopbackPort() }
        let routes = routePorts.map { "nats://127.0.0.1:\($0)" }.joined(separator: ",")
        servers = (0..<size).map { i in
            let dir = "\(directory)/n\(i + 1)"
            try? FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
            return NATSServerProcess(
                name: "n\(i + 1)", port: clientPorts[i], clusterPort: routePorts[i], directory: dir, jetStream: true,
                extra: ["--cluster_name", clusterName, "--cluster", "nats://127.0.0.1:\(routePorts[i])", "--routes", routes]
                    + extra)
        }
    }

    /// Every client URL, comma-separated (what `--replicate` takes).
    public var urls: String { servers.map(\.url).joined(separator: ",") }

    public func start() throws {
        for s in servers { try s.start() }
    }

    public func killAll() { for s in servers { s.kill() } }

    /// SIGTERM to every server (each flushes its JetStream store and exits), waiting for each.
    public func stopAll() { for s in servers { s.stop() } }

    deinit {
        for s in servers { s.kill() }
        try? FileManager.default.removeItem(atPath: directory)
    }
}

public struct NATSTestError: Error, CustomStringConvertible {
    public var description: String
    public init(_ d: String) { description = d }
}

/// A TCP port on 127.0.0.1 nobody listens on right now (bind to 0, read it back, close).
public func freeLoopbackPort() -> Int {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    defer { close(fd) }
    var addr = sockaddr_in()
    addr.sin_family = sa_family_t(AF_INET)
    addr.sin_port = 0
    addr.sin_addr.s_addr = inet_addr("127.0.0.1")
    var len = socklen_t(MemoryLayout<sockaddr_in>.size)
    _ = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, len) } }
    _ = withUnsafeMutablePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &len) } }
    return Int(UInt16(bigEndian: addr.sin_port))
}

/// True when a TCP connection to 127.0.0.1:`port` succeeds.
public func tcpConnects(port: Int) -> Bool {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    defer { close(fd) }
    var addr = sockaddr_in()
    addr.sin_family = sa_family_t(AF_INET)
    addr.sin_port = UInt16(port).bigEndian
    addr.sin_addr.s_addr = inet_addr("127.0.0.1")
    return withUnsafePointer(to: &addr) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
    } == 0
}

/// A fresh directory under /tmp.
public func makeTempDirectory(_ label: String) -> String {
    var template = Array("/tmp/sgev-\(label)-XXXXXX".utf8CString)
    let p = template.withUnsafeMutableBufferPointer { mkdtemp($0.baseAddress!) }
    return String(cString: p!)
}

/// Runs a command, returns its exit status (for `openssl` in the TLS tests).
@discardableResult
public func runCommand(_ exe: String, _ args: [String]) throws -> Int32 {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: exe)
    p.arguments = args
    p.standardOutput = FileHandle.nullDevice
    p.standardError = FileHandle.nullDevice
    try p.run()
    p.waitUntilExit()
    return p.terminationStatus
}
