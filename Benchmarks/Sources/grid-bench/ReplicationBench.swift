import EventStore
import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import GridEvents
import NATSTestSupport

/// The replication rows: a three-node NATS cluster on loopback, three host grid-eventd's replicating, one
/// aggregator; producers are emit-load processes. Everything shares this machine's cores.
extension GridBench {
    final class Grid {
        let nats = NATSClusterProcesses(size: 3)
        var processes: [Process] = []
        let dir: String
        let bin: String
        let aggPort = freeLoopbackPort()
        let hostPorts = (1...3).map { _ in freeLoopbackPort() }

        let sync: String

        init(bin: String, dir: String, sync: String) throws {
            self.bin = bin
            self.dir = dir
            self.sync = sync
            try nats.start()
            try start("aggregator", ["--aggregate", nats.urls, "--host-id", "aggregator", "--http", "127.0.0.1:\(aggPort)"])
            for i in 1...3 { try start("h\(i)", ["--replicate", nats.urls, "--host-id", "h\(i)", "--http", "127.0.0.1:\(hostPorts[i - 1])"]) }
        }

        func socket(_ name: String) -> String { dir + "/\(name).sock" }

        func start(_ name: String, _ extra: [String]) throws {
            let p = Process()
            p.executableURL = URL(fileURLWithPath: bin + "/grid-eventd")
            p.arguments = ["--data-dir", dir + "/\(name)", "--socket", socket(name), "--metrics-interval", "3600", "--log-level", "warning", "--sync", sync] + extra
            let log = dir + "/\(name).log"
            FileManager.default.createFile(atPath: log, contents: nil)
            p.standardError = FileHandle(forWritingAtPath: log)
            p.standardOutput = FileHandle.nullDevice
            try p.run()
            processes.append(p)
            for _ in 0..<300 where !FileManager.default.fileExists(atPath: socket(name)) { usleep(20_000) }
        }

        /// Events the aggregator has stored from replication.
        var aggregated: Int {
            guard let url = URL(string: "http://127.0.0.1:\(aggPort)/api/stats"), let data = try? Data(contentsOf: url),
                let obj = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
                let agg = obj["aggregation"] as? [String: Any]
            else { return 0 }
            return agg["events"] as? Int ?? 0
        }

        /// True when every host has every frame acknowledged by JetStream.
        var hostsShipped: Bool {
            hostPorts.allSatisfy { port in
                guard let url = URL(string: "http://127.0.0.1:\(port)/api/stats"), let data = try? Data(contentsOf: url),
                    let obj = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
                    let r = obj["replication"] as? [String: Any]
                else { return false }
                return r["pending_frames"] as? Int == 0
            }
        }

        func waitAggregated(_ n: Int, timeout: Double) -> Bool {
            let deadline = Date().addingTimeInterval(timeout)
            while Date() < deadline {
                if aggregated >= n { return true }
                usleep(20_000)
            }
            return false
        }

        /// emit-load on each host (`count` events, `rate` per second each, 0 = as fast as possible).
        func produce(count: Int, rate: Int, tag: String) throws -> [Process] {
            try (1...3).map { i in
                let p = Process()
                p.executableURL = URL(fileURLWithPath: bin + "/emit-load")
                p.arguments = ["--storage", socket("h\(i)"), "--count", String(count), "--producer", "\(tag)\(i)", "--spool-dir", dir + "/spool",
                               "--rate", String(rate), "--flush-timeout", "300", "--seed", String(i)]
                p.standardOutput = FileHandle.nullDevice
                p.standardError = FileHandle.nullDevice
                try p.run()
                return p
            }
        }

        func stop() {
            for p in processes.reversed() where p.isRunning {
                p.terminate()
                p.waitUntilExit()
            }
            nats.killAll()
        }
    }

    func replicationRows() throws -> [Row] {
        guard NATSServerProcess.isInstalled else {
            print("(replication rows skipped: nats-server is not installed)")
            return []
        }
        var rows: [Row] = []
        let dir = work + "/replication"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let grid = try Grid(bin: bin, dir: dir, sync: replicationSync)
        defer { grid.stop() }
        // Let JetStream elect its leaders and the daemons set up the stream and consumer.
        let warm = try grid.produce(count: 100, rate: 0, tag: "warm")
        for p in warm { p.waitUntilExit() }
        guard grid.waitAggregated(300, timeout: 60) else { throw BenchError("replication did not start: see \(dir)/*.log") }
        var total = grid.aggregated

        // 1. Throughput: 3 x 100,000 events as fast as the producers go, until the aggregator has them all.
        let n = 100_000
        let t0 = monotonicNanos()
        let flood = try grid.produce(count: n, rate: 0, tag: "flood")
        for p in flood { p.waitUntilExit() }
        total += 3 * n
        guard grid.waitAggregated(total, timeout: 300) else { throw BenchError("aggregator stuck at \(grid.aggregated) of \(total)") }
        let seconds = Double(monotonicNanos() - t0) / 1e9
        rows.append(Row(name: "replication: events/s from 3 hosts into one aggregator (3 x 100k, until all aggregated)", unit: "events/s",
                        ours: [Double(3 * n) / seconds], sqlite: nil, higherIsBetter: true))
        print(rows.last!.name + " done")

        // 2. Lag at 10,000 events/s over three hosts for 20 s: emit time to arrival on the aggregator's live stream.
        let stream = try LiveStream(port: grid.aggPort)
        let perHost = 3_334 * 20
        let steady = try grid.produce(count: perHost, rate: 3_334, tag: "steady")
        var lags: [Double] = []
        let expected = 3 * perHost
        let deadline = Date().addingTimeInterval(90)
        while lags.count < expected, Date() < deadline {
            guard let ts = stream.nextTimestamp(timeout: 2) else { continue }
            lags.append(Double(StoreOptions.nowMicros() - ts) / 1000)
        }
        for p in steady { p.waitUntilExit() }
        stream.close()
        total += expected
        lags.sort()
        if lags.count < expected { print("(live stream delivered \(lags.count) of \(expected) events; the stream drops the oldest for a slow reader)") }
        func pct(_ p: Double) -> Double { lags.isEmpty ? 0 : lags[min(lags.count - 1, Int(Double(lags.count) * p))] }
        rows.append(Row(name: "replication lag p50 at 10,000 events/s over 3 hosts (emit to aggregator)", unit: "ms", ours: [pct(0.5)], sqlite: nil, higherIsBetter: false))
        rows.append(Row(name: "replication lag p99 at 10,000 events/s over 3 hosts (emit to aggregator)", unit: "ms", ours: [pct(0.99)], sqlite: nil, higherIsBetter: false))
        print("replication lag done (\(lags.count) events)")

        // 3. Catch-up: NATS down 60 s while the hosts take 10,000 events/s, then up again.
        _ = grid.waitAggregated(total, timeout: 60)
        grid.nats.killAll()
        let outage = try grid.produce(count: 3_334 * 60, rate: 3_334, tag: "outage")
        for p in outage { p.waitUntilExit() }
        let backlog = 3 * 3_334 * 60
        total += backlog
        let t1 = monotonicNanos()
        try grid.nats.start()
        var shippedAt: Double?
        let catchDeadline = Date().addingTimeInterval(600)
        while grid.aggregated < total, Date() < catchDeadline {
            if shippedAt == nil, grid.hostsShipped { shippedAt = Double(monotonicNanos() - t1) / 1e9 }
            usleep(20_000)
        }
        guard grid.aggregated >= total else { throw BenchError("catch-up stuck at \(grid.aggregated) of \(total)") }
        let catchUp = Double(monotonicNanos() - t1) / 1e9
        if let shippedAt {
            print(String(format: "catch-up: hosts had everything acknowledged by JetStream after %.1f s, the aggregator stored the last event after %.1f s", shippedAt, catchUp))
        }
        rows.append(Row(name: "replication catch-up after a 60 s NATS outage (\(backlog) events; NATS restart included)", unit: "events/s",
                        ours: [Double(backlog) / catchUp], sqlite: nil, higherIsBetter: true))
        print(rows.last!.name + " done (\(String(format: "%.1f", catchUp)) s)")
        return rows
    }
}

/// A reader of the aggregator's `/api/events/stream` (server-sent events) over a plain socket: the timestamp of
/// each event as it arrives.
final class LiveStream {
    private let fd: Int32
    private var buffer: [UInt8] = []

    init(port: Int) throws {
        fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = UInt16(port).bigEndian
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        let ok = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard ok == 0 else { throw BenchError("cannot connect to the aggregator's HTTP port \(port)") }
        let request = Array("GET /api/events/stream HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n\r\n".utf8)
        _ = request.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
    }

    /// The next event's timestamp (microseconds), nil after `timeout` seconds without one.
    func nextTimestamp(timeout: Double) -> Int64? {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            while let nl = buffer.firstIndex(of: 10) {
                let line = String(decoding: buffer[..<nl], as: UTF8.self)
                buffer.removeFirst(nl + 1)
                guard line.hasPrefix("data:"), let r = line.range(of: "\"timestamp\":\"") else { continue }
                let rest = line[r.upperBound...]
                guard let end = rest.firstIndex(of: "\"") else { continue }
                if let ts = TimeText.parse(String(rest[..<end])) { return ts }
            }
            var pfd = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            guard poll(&pfd, 1, 200) > 0 else { continue }
            var chunk = [UInt8](repeating: 0, count: 65536)
            let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n <= 0 { return nil }
            buffer += chunk[..<n]
        }
        return nil
    }

    func close() { Glibc.close(fd) }
}
