import Foundation
import Testing
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// A temporary directory removed when released.
final class TempDir: @unchecked Sendable {
    let path: String

    init(_ label: String) {
        var template = Array("/tmp/sgev-\(label)-XXXXXX".utf8CString)
        let p = template.withUnsafeMutableBufferPointer { mkdtemp($0.baseAddress!) }
        path = String(cString: p!)
    }

    deinit { try? FileManager.default.removeItem(atPath: path) }

    func file(_ name: String) -> String { path + "/" + name }
}

/// The repository's root (this file is Tests/InteropTests/Support.swift).
let repoRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path

func productPath(_ name: String) -> String {
    URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath().deletingLastPathComponent().appendingPathComponent(name).path
}

/// A free loopback TCP port (bound then released).
func freePort() -> Int {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    defer { close(fd) }
    var addr = sockaddr_in()
    addr.sin_family = sa_family_t(AF_INET)
    addr.sin_port = 0
    addr.sin_addr.s_addr = inet_addr("127.0.0.1")
    _ = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
    var len = socklen_t(MemoryLayout<sockaddr_in>.size)
    _ = withUnsafeMutablePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &len) } }
    return Int(UInt16(bigEndian: addr.sin_port))
}

struct TestFailure: Error, CustomStringConvertible {
    var description: String
    init(_ d: String) { description = d }
}

/// An HTTP answer.
struct HTTPAnswer {
    var status: Int
    var headers: [String: String]
    var body: Data
    var text: String { String(decoding: body, as: UTF8.self) }
    func json() throws -> [String: Any] {
        guard let o = try JSONSerialization.jsonObject(with: body) as? [String: Any] else { throw TestFailure("not a JSON object: \(text.prefix(300))") }
        return o
    }
}

/// One HTTP request over loopback, waited for (at most `timeout` seconds).
func http(_ method: String, _ url: String, headers: [String: String] = [:], body: Data? = nil, timeout: Double = 20) throws -> HTTPAnswer {
    var request = URLRequest(url: URL(string: url)!)
    request.httpMethod = method
    request.timeoutInterval = timeout
    for (k, v) in headers { request.setValue(v, forHTTPHeaderField: k) }
    request.httpBody = body
    final class Box: @unchecked Sendable { var answer: HTTPAnswer?; var error: Error? }
    let box = Box()
    let done = DispatchSemaphore(value: 0)
    URLSession.shared.dataTask(with: request) { data, response, error in
        if let r = response as? HTTPURLResponse {
            var h: [String: String] = [:]
            for (k, v) in r.allHeaderFields { h[String(describing: k).lowercased()] = String(describing: v) }
            box.answer = HTTPAnswer(status: r.statusCode, headers: h, body: data ?? Data())
        }
        box.error = error
        done.signal()
    }.resume()
    guard done.wait(timeout: .now() + timeout + 5) == .success else { throw TestFailure("\(method) \(url): no answer") }
    guard let answer = box.answer else { throw TestFailure("\(method) \(url): \(box.error.map { "\($0)" } ?? "no answer")") }
    return answer
}

/// A child process of a built product (or any executable), output to a log file.
final class ChildProcess: @unchecked Sendable {
    let process = Process()
    let logPath: String

    init(_ executable: String, _ arguments: [String], log: String, environment: [String: String]? = nil) throws {
        logPath = log
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        if let environment { process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 } }
        FileManager.default.createFile(atPath: log, contents: nil)
        let handle = FileHandle(forWritingAtPath: log)!
        process.standardOutput = handle
        process.standardError = handle
        try process.run()
    }

    var log: String { (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? "" }

    func kill(_ signal: Int32 = SIGKILL) {
        guard process.isRunning else { return }
        Foundation.kill(process.processIdentifier, signal)
        process.waitUntilExit()
    }

    deinit { kill() }
}

/// grid-eventd on a temporary directory and a free loopback port, ready when its HTTP API answers.
final class DaemonUnderTest: @unchecked Sendable {
    let dir: TempDir
    let port: Int
    let child: ChildProcess
    var base: String { "http://127.0.0.1:\(port)" }
    var socket: String { dir.file("d.sock") }
    var dataDir: String { dir.file("data") }

    init(_ label: String, extra: [String] = [], dir: TempDir? = nil) throws {
        self.dir = dir ?? TempDir(label)
        port = freePort()
        child = try ChildProcess(productPath("grid-eventd"),
                                 ["--data-dir", self.dir.file("data"), "--socket", self.dir.file("d.sock"), "--http", "127.0.0.1:\(port)",
                                  "--metrics-interval", "3600"] + extra,
                                 log: self.dir.file("grid-eventd.log"))
        let deadline = Date().addingTimeInterval(20)
        while Date() < deadline {
            if let a = try? http("GET", base + "/api/stats", headers: ["Authorization": "Bearer " + (Self.token(extra) ?? "")], timeout: 2),
               a.status == 200 || a.status == 401 { return }
            if !child.process.isRunning { throw TestFailure("grid-eventd exited: \(child.log)") }
            usleep(50_000)
        }
        throw TestFailure("grid-eventd did not answer HTTP within 20 s: \(child.log)")
    }

    static func token(_ args: [String]) -> String? {
        guard let i = args.firstIndex(of: "--token"), i + 1 < args.count else { return nil }
        return args[i + 1]
    }

    /// Events of a structured query (`/api/events?...`), every page.
    func events(_ query: String) throws -> [[String: Any]] {
        var out: [[String: Any]] = []
        var cursor: String?
        repeat {
            let a = try http("GET", base + "/api/events?limit=1000&" + query + (cursor.map { "&cursor=\($0)" } ?? ""))
            guard a.status == 200 else { throw TestFailure("GET /api/events?\(query): \(a.status) \(a.text)") }
            let o = try a.json()
            out += o["events"] as? [[String: Any]] ?? []
            cursor = o["next_cursor"] as? String
        } while cursor != nil
        return out
    }
}

/// Runs `python3 script args`, feeding `input`; throws with its output when it fails or runs past `timeout`.
func python(_ script: String, _ arguments: [String], input: Data? = nil, timeout: Double = 120) throws -> String {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    p.arguments = ["python3", repoRoot + "/Tools/interop/" + script] + arguments
    let out = Pipe()
    let err = Pipe()
    let inp = Pipe()
    p.standardOutput = out
    p.standardError = err
    p.standardInput = inp
    try p.run()
    final class Box: @unchecked Sendable { var out = Data(); var err = Data() }
    let box = Box()
    let group = DispatchGroup()
    group.enter()
    DispatchQueue.global().async { box.out = out.fileHandleForReading.readDataToEndOfFile(); group.leave() }
    group.enter()
    DispatchQueue.global().async { box.err = err.fileHandleForReading.readDataToEndOfFile(); group.leave() }
    if let input { inp.fileHandleForWriting.write(input) }
    try? inp.fileHandleForWriting.close()
    let deadline = Date().addingTimeInterval(timeout)
    while p.isRunning, Date() < deadline { usleep(10_000) }
    if p.isRunning { kill(p.processIdentifier, SIGKILL) }
    p.waitUntilExit()
    group.wait()
    let stdout = String(decoding: box.out, as: UTF8.self)
    guard p.terminationStatus == 0 else {
        throw TestFailure("python3 \(script) exited \(p.terminationStatus): \(String(decoding: box.err, as: UTF8.self).suffix(2000)) \(stdout.suffix(500))")
    }
    return stdout
}

/// The families of a Prometheus exposition as parsed by prometheus_client's parser.
struct ParsedMetrics {
    var families: [String: (type: String, samples: [(name: String, labels: [String: String], value: Double)])] = [:]

    init(_ text: String) throws {
        let json = try python("parse_metrics.py", [], input: Data(text.utf8))
        guard let o = try JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any],
              let fams = o["families"] as? [String: [String: Any]] else { throw TestFailure("parse_metrics.py printed \(json.prefix(300))") }
        for (name, f) in fams {
            let samples = (f["samples"] as? [[Any]] ?? []).map { s in
                (name: s[0] as? String ?? "", labels: s[1] as? [String: String] ?? [:], value: (s[2] as? NSNumber)?.doubleValue ?? .nan)
            }
            families[name] = (f["type"] as? String ?? "", samples)
        }
    }

    /// The value of the sample `name` with exactly these labels (nil when absent).
    func value(_ name: String, _ labels: [String: String] = [:]) -> Double? {
        for f in families.values {
            for s in f.samples where s.name == name && s.labels == labels { return s.value }
        }
        return nil
    }

    func type(ofFamily name: String) -> String? { families[name]?.type }
}
