import EventEmitter
import EventStore
import Foundation
import GridEvents
import GridEventsLogging
import Logging
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// The interop rows (issue 18): JSON events over HTTP next to the Unix-socket path, OTLP/HTTP logs from the
/// OpenTelemetry Python SDK's batch exporter, and what the swift-log handler adds to a `logger.info` call next to
/// swift-log's own StreamLogHandler writing to /dev/null.
extension GridBench {
    /// Starts grid-eventd with HTTP on a free port; returns it and its base URL once /api/stats answers.
    func startHTTPDaemon(_ dir: String) throws -> (Process, String) {
        let port = Int.random(in: 20_000...29_000)
        let daemon = Process()
        daemon.executableURL = URL(fileURLWithPath: bin + "/grid-eventd")
        daemon.arguments = ["--data-dir", dir + "/data", "--socket", dir + "/s.sock", "--sync", "batch", "--http", "127.0.0.1:\(port)",
                            "--log-level", "warning", "--max-ingest-body", "64MiB"]
        try daemon.run()
        let base = "http://127.0.0.1:\(port)"
        for _ in 0..<500 {
            if (try? post(base + "/api/stats", method: "GET", body: Data()))?.0 == 200 { return (daemon, base) }
            usleep(20_000)
        }
        throw BenchError("grid-eventd did not answer on \(base)")
    }

    func post(_ url: String, method: String = "POST", body: Data, contentType: String = "application/x-ndjson") throws -> (Int, Data) {
        var r = URLRequest(url: URL(string: url)!)
        r.httpMethod = method
        r.timeoutInterval = 120
        if method == "POST" {
            r.httpBody = body
            r.setValue(contentType, forHTTPHeaderField: "Content-Type")
        }
        final class Box: @unchecked Sendable { var status = 0; var data = Data() }
        let box = Box()
        let done = DispatchSemaphore(value: 0)
        URLSession.shared.dataTask(with: r) { d, resp, _ in
            box.status = (resp as? HTTPURLResponse)?.statusCode ?? 0
            box.data = d ?? Data()
            done.signal()
        }.resume()
        done.wait()
        return (box.status, box.data)
    }

    func storedEvents(_ base: String) -> Int {
        guard let (status, data) = try? post(base + "/api/stats", method: "GET", body: Data()), status == 200,
              let o = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else { return -1 }
        return o["events"] as? Int ?? -1
    }

    func interopRows(_ all: [GridEvent]) throws -> [Row] {
        var rows: [Row] = []
        let sample = Array(all.prefix(200_000))
        let lines = work + "/interop.jsonl"
        _ = try writeJSONLines(sample, to: lines)
        let text = try Data(contentsOf: URL(fileURLWithPath: lines))
        // Request bodies of 5,000 lines each.
        var bodies: [Data] = []
        var start = 0
        var count = 0
        for (i, b) in text.enumerated() where b == 0x0A {
            count += 1
            if count == 5000 {
                bodies.append(text[start...i])
                start = i + 1
                count = 0
            }
        }
        if start < text.count { bodies.append(text[start...]) }
        let requestBodies = bodies

        var http: [Double] = []
        var socket: [Double] = []
        for r in 0..<runs {
            // HTTP: 4 clients posting the bodies in turn.
            let dir = work + "/http-\(r)"
            try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
            let (daemon, base) = try startHTTPDaemon(dir)
            let t0 = monotonicNanos()
            let failures = NSLock()
            nonisolated(unsafe) var failed = 0
            DispatchQueue.concurrentPerform(iterations: 4) { client in
                for k in stride(from: client, to: requestBodies.count, by: 4) {
                    let (status, _) = (try? post(base + "/api/events", body: requestBodies[k])) ?? (0, Data())
                    if status != 200 { failures.withLock { failed += 1 } }
                }
            }
            let elapsed = Double(monotonicNanos() - t0) / 1e9
            let stored = storedEvents(base)
            daemon.terminate()
            daemon.waitUntilExit()
            guard failed == 0, stored == sample.count else { throw BenchError("HTTP ingest: \(failed) failed requests, \(stored) stored of \(sample.count)") }
            http.append(Double(sample.count) / elapsed)
            try? FileManager.default.removeItem(atPath: dir)

            // The Unix socket: grid-cli emit of the same lines.
            let sdir = work + "/sock-\(r)"
            try FileManager.default.createDirectory(atPath: sdir, withIntermediateDirectories: true)
            let sd = try startDaemon(sdir, sync: "batch")
            let cli = Process()
            cli.executableURL = URL(fileURLWithPath: bin + "/grid-cli")
            cli.arguments = ["emit", "--storage", sdir + "/s.sock", "--spool-dir", sdir + "/spool", "--timeout", "120"]
            cli.standardInput = FileHandle(forReadingAtPath: lines)
            cli.standardOutput = FileHandle.nullDevice
            let t1 = monotonicNanos()
            try cli.run()
            cli.waitUntilExit()
            let e2 = Double(monotonicNanos() - t1) / 1e9
            sd.terminate()
            sd.waitUntilExit()
            guard cli.terminationStatus == 0 else { throw BenchError("grid-cli emit exited \(cli.terminationStatus)") }
            socket.append(Double(sample.count) / e2)
            try? FileManager.default.removeItem(atPath: sdir)
            print("interop run \(r + 1): HTTP \(Int(http.last!)) events/s, socket (grid-cli emit) \(Int(socket.last!)) events/s")
        }
        rows.append(Row(name: "JSON ingest over HTTP: POST /api/events, 5,000 lines per request, 4 clients, \(sample.count / 1000)k lines, --sync batch", unit: "events/s", ours: http, sqlite: nil, higherIsBetter: true))
        rows.append(Row(name: "the same lines over the Unix socket: grid-cli emit, --sync batch", unit: "events/s", ours: socket, sqlite: nil, higherIsBetter: true))
        try? FileManager.default.removeItem(atPath: lines)

        // OTLP/HTTP from the Python SDK (logging -> LoggingHandler -> BatchLogRecordProcessor -> OTLPLogExporter).
        // The repository root is two levels above `bin` as written (.build/release is a symlink, so not through it).
        let absolute = bin.hasPrefix("/") ? bin : FileManager.default.currentDirectoryPath + "/" + bin
        var parts: [Substring] = []
        for c in absolute.split(separator: "/") where c != "." {
            if c == ".." { _ = parts.popLast() } else { parts.append(c) }
        }
        let root = "/" + parts.dropLast(2).joined(separator: "/")
        let script = root + "/Tools/interop/otlp_send.py"
        if FileManager.default.fileExists(atPath: script) {
            var otlp: [Double] = []
            for r in 0..<runs {
                let dir = work + "/otlp-\(r)"
                try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
                let (daemon, base) = try startHTTPDaemon(dir)
                let p = Process()
                p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
                p.arguments = ["python3", script, base + "/v1/logs", "50000", "50000"]  // a queue that holds them all: none dropped
                let out = Pipe()
                p.standardOutput = out
                try p.run()
                let data = out.fileHandleForReading.readDataToEndOfFile()
                p.waitUntilExit()
                let stored = storedEvents(base)
                daemon.terminate()
                daemon.waitUntilExit()
                let o = (try? JSONSerialization.jsonObject(with: data) as? [String: Any]) ?? [:]
                guard p.terminationStatus == 0, let seconds = o["seconds"] as? Double, o["export_ok"] as? Bool == true, stored == 50_000 else {
                    print("OTLP row skipped: \(String(decoding: data, as: UTF8.self)) stored \(stored)")
                    break
                }
                otlp.append(50_000 / seconds)
                print("otlp run \(r + 1): \(Int(otlp.last!)) records/s")
                try? FileManager.default.removeItem(atPath: dir)
            }
            if !otlp.isEmpty {
                rows.append(Row(name: "OTLP/HTTP logs in: 50,000 Python logging records through the OpenTelemetry SDK's batch exporter (protobuf, 512 per export, queue 50,000), until flushed", unit: "events/s", ours: otlp, sqlite: nil, higherIsBetter: true))
            }
        } else {
            print("(OTLP row skipped: \(script) not found)")
        }
        rows += try logHandlerRows()
        return rows
    }

    /// p50 and p99 of one `logger.info` call (with two metadata values), in ns: GridEventsLogHandler into an
    /// emitter connected to a running daemon, against StreamLogHandler writing to /dev/null.
    func logHandlerRows() throws -> [Row] {
        let dir = work + "/logh"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let daemon = try startDaemon(dir, sync: "batch")
        defer {
            daemon.terminate()
            daemon.waitUntilExit()
        }
        func measure(_ logger: Logger, _ n: Int) -> (Double, Double) {
            var samples = [UInt64](repeating: 0, count: n)
            for i in 0..<n {
                let t = monotonicNanos()
                logger.info("request served", metadata: ["node_id": "node-7", "status": "200"])
                samples[i] = monotonicNanos() - t
            }
            samples.sort()
            return (Double(samples[n / 2]), Double(samples[n * 99 / 100]))
        }
        var ours50: [Double] = [], ours99: [Double] = [], stream50: [Double] = [], stream99: [Double] = []
        for r in 0..<runs {
            var options = EmitterOptions(producerName: "bench-log-\(r)")
            options.spoolDirectory = dir + "/spool"
            options.notice = { _ in }
            let emitter = EventEmitter(storage: dir + "/s.sock", options: options)
            let events = Logger(label: "bench") { GridEventsLogHandler(label: $0, emitter: emitter) }
            _ = measure(events, 10_000)  // warm up
            let (a, b) = measure(events, 100_000)
            _ = emitter.flush(timeout: 60)
            emitter.close(timeout: 5)
            // StreamLogHandler to standard output, pointed at /dev/null for the measurement.
            fflush(nil)  // every stream, standard output among them
            let saved = dup(1)
            let null = open("/dev/null", O_WRONLY)
            dup2(null, 1)
            let stream = Logger(label: "bench") { StreamLogHandler.standardOutput(label: $0) }
            _ = measure(stream, 10_000)
            let (c, d) = measure(stream, 100_000)
            fflush(nil)  // every stream, standard output among them
            dup2(saved, 1)
            close(null)
            close(saved)
            ours50.append(a); ours99.append(b); stream50.append(c); stream99.append(d)
            print("log handler run \(r + 1): GridEventsLogHandler p50 \(Int(a)) ns p99 \(Int(b)) ns; StreamLogHandler to /dev/null p50 \(Int(c)) ns p99 \(Int(d)) ns")
        }
        return [
            Row(name: "logger.info with 2 metadata values: GridEventsLogHandler (emitter to a running daemon), p50", unit: "ns", ours: ours50, sqlite: nil, higherIsBetter: false),
            Row(name: "logger.info with 2 metadata values: GridEventsLogHandler, p99", unit: "ns", ours: ours99, sqlite: nil, higherIsBetter: false),
            Row(name: "the same call with swift-log's StreamLogHandler writing to /dev/null, p50", unit: "ns", ours: stream50, sqlite: nil, higherIsBetter: false),
            Row(name: "the same call with StreamLogHandler to /dev/null, p99", unit: "ns", ours: stream99, sqlite: nil, higherIsBetter: false),
        ]
    }
}
