import ArgumentParser
import EventQuery
import EventStore
import Foundation
import GridEvents
import GridFixtures
import GridVersion

/// One command that measures the engine and SQLite on the same generated grid events and prints one table
/// (median and spread over repeated runs), also written as JSON.
@main
struct GridBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "grid-bench", abstract: "Benchmarks against SQLite on the same work.", version: GridVersion.current)

    @Option(help: "Events per store.") var events = 1_000_000
    @Option(help: "Repetitions of each measurement (median and spread are reported).") var runs = 3
    @Option(help: "Where to write the JSON results.") var json = "../.build/bench-results.json"
    @Option(help: "Directory for the stores (removed afterwards).") var work = NSTemporaryDirectory() + "grid-bench"
    @Option(help: "The root package's release binaries (grid-eventd, emit-load, grid-cli) for the end-to-end and ingest rows.") var bin = "../.build/release"
    @Flag(help: "Also measure open time and memory at 10M events (takes minutes).") var tenMillion = false
    @Flag(help: "Only the grid-state rows (500 agents, 10,000 nodes; at 1M events, and 10M with --ten-million).")
    var gridStateOnly = false
    @Flag(help: "Only the ingest rows (JSON import against SQLite, largest burst absorbed).") var onlyIngest = false
    @Flag(help: "Only the text search rows (word index against SQLite FTS5 on the same events).") var textOnly = false
    @Flag(help: "Only the replication rows.") var replicationOnly = false
    @Option(help: "--sync of the hosts and the aggregator in the replication rows (batch, always, none).") var replicationSync = "batch"
    @Flag(help: "Skip the replication rows (3 NATS servers, 3 hosts, an aggregator; about 3 minutes).") var skipReplication = false
    @Flag(help: "Only the interop rows (JSON over HTTP against the socket, OTLP from the Python SDK, the swift-log handler).") var interopOnly = false
    @Flag(help: "Skip the interop rows.") var skipInterop = false

    struct Row {
        var name: String
        var unit: String
        var ours: [Double]
        var sqlite: [Double]?
        /// True when larger is better (throughput); false for latency and sizes.
        var higherIsBetter: Bool
    }

    func run() throws {
        try? FileManager.default.removeItem(atPath: work)
        try FileManager.default.createDirectory(atPath: work, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: work) }
        if gridStateOnly {
            var rows: [Row] = []
            try gridStateRows(events: events, into: &rows)
            if tenMillion { try gridStateRows(events: 10_000_000, into: &rows) }
            report(rows)
            return
        }
        if textOnly {
            var rows: [Row] = []
            try textSearchRows(events: events, into: &rows)
            report(rows)
            return
        }
        if replicationOnly {
            report(try replicationRows())
            return
        }
        print("generating \(events) grid events (17 types, 100 agents, 2,000 nodes, one day)...")
        var grid = SampleGrid(seed: 5)
        let all = grid.events(events)
        let batches = stride(from: 0, to: all.count, by: 1000).map { Array(all[$0..<min($0 + 1000, all.count)]) }
        var rows: [Row] = []
        let ingestTools = ["grid-eventd", "grid-cli", "emit-load"].allSatisfy { FileManager.default.isExecutableFile(atPath: bin + "/" + $0) }
        if interopOnly {
            guard ["grid-eventd", "grid-cli"].allSatisfy({ FileManager.default.isExecutableFile(atPath: bin + "/" + $0) }) else { throw BenchError("the interop rows need grid-eventd and grid-cli in \(bin): make release") }
            report(try interopRows(all))
            return
        }
        if onlyIngest {
            guard ingestTools else { throw BenchError("the ingest rows need grid-eventd, grid-cli and emit-load in \(bin): make release") }
            rows += try ingestRows(all)
            rows.append(try burstRow())
            report(rows)
            return
        }

        // In-process append, batches of 1,000 events.
        for mode in [Durability.always, .batch, .none] {
            var ours: [Double] = []
            var lite: [Double] = []
            for r in 0..<runs {
                let dir = work + "/append-\(mode)-\(r)"
                let store = try EventStore.open(at: dir, options: StoreOptions(durability: mode))
                let prepared = batches.map { $0.flatMap { $0.records() } }
                let t0 = monotonicNanos()
                for b in prepared { try store.append(b) }
                ours.append(Double(all.count) / (Double(monotonicNanos() - t0) / 1e9))
                store.close()
                try? FileManager.default.removeItem(atPath: dir)
                let sqlite = try SQLiteBaseline(path: work + "/append-\(r).sqlite", synchronous: mode == .none ? "OFF" : (mode == .always ? "FULL" : "NORMAL"))
                let t1 = monotonicNanos()
                for b in batches { try sqlite.insert(b) }
                lite.append(Double(all.count) / (Double(monotonicNanos() - t1) / 1e9))
            }
            let sqliteMode = mode == .none ? "OFF" : (mode == .always ? "FULL" : "NORMAL")
            rows.append(Row(name: "append in process, \(mode.rawValue) (SQLite synchronous=\(sqliteMode))", unit: "events/s", ours: ours, sqlite: lite, higherIsBetter: true))
            print(rows.last!.name + " done")
        }

        // One store of each for queries, size and open.
        let storeDir = work + "/store"
        var storeOptions = StoreOptions(durability: .none)
        storeOptions.backgroundMaintenance = false  // compaction is measured on its own below
        let store = try EventStore.open(at: storeDir, options: storeOptions)
        for b in batches { try store.append(b.flatMap { $0.records() }) }
        let sqlite = try SQLiteBaseline(path: work + "/store.sqlite")
        for b in batches { try sqlite.insert(b) }
        sqlite.checkpoint()
        let engine = QueryEngine(store: store)
        var rng = SystemRandomNumberGenerator()
        let span = all.first!.timestamp...all.last!.timestamp
        func latency(_ body: () -> Void) -> [Double] {
            (0..<runs).map { _ in
                var samples: [UInt64] = []
                for _ in 0..<2000 {
                    let t0 = monotonicNanos()
                    body()
                    samples.append(monotonicNanos() - t0)
                }
                samples.sort()
                return Double(samples[samples.count / 2]) / 1000
            }
        }
        let entities = (0..<2000).map { grid.nodeId($0) } + (0..<100).map { grid.agentId($0) }
        rows.append(Row(name: "entity's last 50 events (p50)", unit: "µs",
                        ours: latency { _ = store.timeline(entity: entities.randomElement(using: &rng)!, limit: 50) },
                        sqlite: latency { _ = sqlite.lastFifty(entity: entities.randomElement(using: &rng)!) }, higherIsBetter: false))
        var from = Int64.random(in: span, using: &rng)
        rows.append(Row(name: "type count in a 1-hour window (p50)", unit: "µs",
                        ours: latency { from = Int64.random(in: span, using: &rng); _ = store.count(type: 12, in: from..<(from + 3_600_000_000)) },
                        sqlite: latency { from = Int64.random(in: span, using: &rng); _ = sqlite.count(type: 12, from: from, to: from + 3_600_000_000) },
                        higherIsBetter: false))
        rows.append(Row(name: "id lookup (p50)", unit: "µs",
                        ours: latency { _ = store.event(id: all.randomElement(using: &rng)!.id) },
                        sqlite: latency { _ = sqlite.lookup(id: all.randomElement(using: &rng)!.id) }, higherIsBetter: false))
        rows.append(Row(name: "2-hop traversal from a node (p50)", unit: "µs",
                        ours: latency { _ = try? engine.neighbors(of: grid.nodeId(Int.random(in: 0..<2000, using: &rng)), depth: 2, limit: 200) },
                        sqlite: nil, higherIsBetter: false))
        let now = all.last!.timestamp
        let translator = Translator(now: { now })
        rows.append(Row(name: "plain-English question, in process (p50)", unit: "µs",
                        ours: latency { _ = try? engine.ask("count spawn failures in the last hour", translator: translator) },
                        sqlite: nil, higherIsBetter: false))
        let sqliteBytesPerEvent = Double(sqlite.bytesOnDisk) / Double(all.count)
        rows.append(Row(name: "bytes per event on disk (uncompacted)", unit: "bytes",
                        ours: [Double(store.stats.dataBytes) / Double(all.count)], sqlite: [sqliteBytesPerEvent], higherIsBetter: false))

        // Compaction of the sealed segments: LZ4 fast on this store, LZ4 HC on a second store of the same events.
        for compression in [Compression.fast, .high] {
            var target = store
            if compression == .high {
                var o = StoreOptions(durability: .none)
                o.compression = .high
                o.backgroundMaintenance = false
                target = try EventStore.open(at: work + "/store-high", options: o)
                for b in batches { try target.append(b.flatMap { $0.records() }) }
            }
            let m = try target.runMaintenance()
            let st = target.stats
            let name = compression == .fast ? "LZ4 fast" : "LZ4 HC level 9"
            guard st.compactedEvents > 0 else {
                // Nothing sealed: these events fit in the active segment, so there is nothing to compact or measure.
                print("(compaction rows, \(name): skipped: \(all.count) events fill no segment; more events seal segments)")
                continue
            }
            rows.append(Row(name: "compaction throughput, \(name) (MB of segment per s)", unit: "MB/s",
                            ours: [Double(m.bytesBeforeCompaction) / max(m.compactionSeconds, 1e-9) / 1e6], sqlite: nil, higherIsBetter: true))
            rows.append(Row(name: "bytes per event, compacted segments, \(name)", unit: "bytes",
                            ours: [Double(st.compactedBytes) / Double(max(1, st.compactedEvents))], sqlite: [sqliteBytesPerEvent], higherIsBetter: false))
            if compression == .fast {
                rows.append(Row(name: "index file bytes per event (sealed segments)", unit: "bytes",
                                ours: [Double(st.indexBytes) / Double(max(1, st.compactedEvents))], sqlite: nil, higherIsBetter: false))
                let whole = st.compactedBytes + st.uncompactedDataBytes + st.indexBytes
                rows.append(Row(name: "whole store per event: data + index files (active segment uncompacted)", unit: "bytes",
                                ours: [Double(whole) / Double(all.count)], sqlite: [sqliteBytesPerEvent], higherIsBetter: false))
            } else {
                target.close()
                try? FileManager.default.removeItem(atPath: work + "/store-high")
            }
        }
        rows.append(Row(name: "entity's last 50 events after compaction (p50)", unit: "µs",
                        ours: latency { _ = store.timeline(entity: entities.randomElement(using: &rng)!, limit: 50) },
                        sqlite: nil, higherIsBetter: false))
        rows.append(Row(name: "id lookup after compaction (p50)", unit: "µs",
                        ours: latency { _ = store.event(id: all.randomElement(using: &rng)!.id) },
                        sqlite: nil, higherIsBetter: false))

        // Appends while another thread reads nonstop (an entity's last 50, a type's newest 50, an id in a compacted
        // segment), against the same appends with nobody reading: reads take the store's lock only to pick up
        // their snapshot, so appends should barely notice them. `--sync none` so that fdatasync does not hide it.
        let (idle, busy, readsDone) = try appendLatencyUnderReads(store, all: all, entities: entities)
        rows.append(Row(name: "append p99 latency, 1,000-event batches, nobody reading", unit: "µs", ours: idle, sqlite: nil, higherIsBetter: false))
        rows.append(Row(name: "append p99 latency while a thread queries nonstop (entity, type, compacted id)", unit: "µs",
                        ours: busy, sqlite: nil, higherIsBetter: false))
        print("  (the reading thread answered \(readsDone) queries during the measured appends)")
        store.close()

        // Open time and resident memory, each in a fresh process (store-stress open-stats) so the memory that
        // built the store does not blur the figure.
        var openTargets = [("\(events)", storeDir, Optional(work + "/store.sqlite"))]
        if tenMillion {
            let dir = work + "/store-10m"
            print("building a 10,000,000-event store (takes a few minutes)...")
            var o = StoreOptions(durability: .none)
            o.backgroundMaintenance = false
            let big = try EventStore.open(at: dir, options: o)
            var g = SampleGrid(seed: 11)
            let total = 10_000_000
            var t = 0
            while t < total {
                let chunk = (t..<min(total, t + 1000)).map { g.event(index: $0, count: total) }
                try big.append(chunk.flatMap { $0.records() })
                t += chunk.count
                if t % 1_000_000 == 0 { print("  \(t) events") }
            }
            let m = try big.runMaintenance()
            let st = big.stats
            rows.append(Row(name: "10M store: bytes per event, compacted segments (LZ4 fast)", unit: "bytes",
                            ours: [Double(st.compactedBytes) / Double(max(1, st.compactedEvents))], sqlite: nil, higherIsBetter: false))
            rows.append(Row(name: "10M store: compaction throughput (MB of segment per s)", unit: "MB/s",
                            ours: [Double(m.bytesBeforeCompaction) / max(m.compactionSeconds, 1e-9) / 1e6], sqlite: nil, higherIsBetter: true))
            big.close()
            openTargets.append(("10000000", dir, nil))
        }
        if FileManager.default.isExecutableFile(atPath: bin + "/store-stress") {
            for (label, dir, sqlitePath) in openTargets {
                var ours: [Double] = []
                var lite: [Double] = []
                var rss: [Double] = []
                for _ in 0..<runs {
                    let stats = try openStats(dir)
                    ours.append(stats["open_seconds"] as? Double ?? -1)
                    rss.append(stats["rss_after_mib"] as? Double ?? -1)
                    if let sqlitePath {
                        let t1 = monotonicNanos()
                        let l = try SQLiteBaseline(existing: sqlitePath)
                        _ = l.count(type: 12, from: 0, to: 1)
                        lite.append(Double(monotonicNanos() - t1) / 1e9)
                    }
                }
                rows.append(Row(name: "open a store of \(label) events (fresh process)", unit: "s", ours: ours,
                                sqlite: lite.isEmpty ? nil : lite, higherIsBetter: false))
                rows.append(Row(name: "resident memory of that process after open (\(label) events)", unit: "MiB", ours: rss, sqlite: nil, higherIsBetter: false))
            }
        } else {
            print("(open-time rows skipped: build the root package in release first: make release)")
        }

        // End to end through the socket, and emit() latency, with the root package's binaries.
        if FileManager.default.isExecutableFile(atPath: bin + "/grid-eventd"), FileManager.default.isExecutableFile(atPath: bin + "/emit-load") {
            for sync in ["batch", "none"] {
                for producers in [1, 4] {
                    var rates: [Double] = []
                    var p50: [Double] = []
                    var p99: [Double] = []
                    var p999: [Double] = []
                    for r in 0..<runs {
                        let (rate, latencies) = try endToEnd(sync: sync, producers: producers, run: r)
                        rates.append(rate)
                        p50.append(latencies.p50)
                        p99.append(latencies.p99)
                        p999.append(latencies.p999)
                    }
                    rows.append(Row(name: "end to end, \(producers) producer(s), --sync \(sync)", unit: "events/s", ours: rates, sqlite: nil, higherIsBetter: true))
                    if sync == "batch", producers == 4 {
                        rows.append(Row(name: "emit() latency p50 (worst of 4 producers)", unit: "ns", ours: p50, sqlite: nil, higherIsBetter: false))
                        rows.append(Row(name: "emit() latency p99 (worst of 4 producers)", unit: "ns", ours: p99, sqlite: nil, higherIsBetter: false))
                        rows.append(Row(name: "emit() latency p999 (worst of 4 producers)", unit: "ns", ours: p999, sqlite: nil, higherIsBetter: false))
                    }
                }
            }
        } else {
            print("(end-to-end rows skipped: build the root package in release first: make release)")
        }
        // Ingest: JSON import through grid-cli against SQLite, and the largest burst the emitter absorbs.
        if ingestTools {
            rows += try ingestRows(all)
            rows.append(try burstRow())
        } else {
            print("(ingest rows skipped: build the root package in release first: make release)")
        }
        if !skipInterop, ingestTools {
            do {
                rows += try interopRows(all)
            } catch {
                print("interop rows failed: \(error)")
            }
        }
        if !skipReplication, FileManager.default.isExecutableFile(atPath: bin + "/grid-eventd") {
            do {
                rows += try replicationRows()
            } catch {
                print("replication rows failed: \(error)")
            }
        }
        try gridStateRows(events: events, into: &rows)
        if tenMillion { try gridStateRows(events: 10_000_000, into: &rows) }
        try textSearchRows(events: events, into: &rows)
        report(rows)
    }

    /// Append p99 (µs) per run with nobody reading, then with a thread querying nonstop; and how many queries the
    /// thread answered.
    func appendLatencyUnderReads(_ store: EventStore, all: [GridEvent], entities: [String]) throws -> ([Double], [Double], Int) {
        let start = all.last!.timestamp + 1_000_000
        var idle: [Double] = []
        var busy: [Double] = []
        var queries = 0
        for r in 0..<(2 * runs) {
            let reading = r % 2 == 1
            let stop = StopFlag()
            let answered = Counter()
            var reader: Thread?
            if reading {
                let oldIds = all.prefix(all.count / 2).map(\.id)
                reader = Thread {
                    var rng = SystemRandomNumberGenerator()
                    while !stop.isSet {
                        _ = store.timeline(entity: entities.randomElement(using: &rng)!, limit: 50)
                        _ = store.events(type: UInt16.random(in: 10...17, using: &rng), limit: 50)
                        _ = store.event(id: oldIds.randomElement(using: &rng)!)
                        answered.add(3)
                    }
                }
                reader!.start()
                usleep(100_000)
            }
            var samples: [UInt64] = []
            for b in 0..<300 {
                // A producer tag per batch: fresh ids (a repeated id would be a duplicate, skipped).
                let tag = String(format: "%06x%06x", r, b)
                var g = SampleGrid(seed: UInt64(b + 1), start: start + Int64(r * 300 + b) * 1_000_000, span: 1_000_000)
                let batch = g.events(1000, producerTag: tag).flatMap { $0.records() }
                let t0 = monotonicNanos()
                try store.append(batch)
                samples.append(monotonicNanos() - t0)
            }
            stop.set()
            while reader?.isFinished == false { usleep(1000) }
            samples.sort()
            let p99 = Double(samples[samples.count * 99 / 100]) / 1000
            if reading {
                busy.append(p99)
                queries += answered.value
            } else {
                idle.append(p99)
            }
        }
        return (idle, busy, queries)
    }

    /// Runs `store-stress open-stats` on a store and returns its JSON.
    func openStats(_ dir: String) throws -> [String: Any] {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: bin + "/store-stress")
        p.arguments = ["open-stats", "--data-dir", dir]
        let out = Pipe()
        p.standardOutput = out
        try p.run()
        let data = out.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return (try? JSONSerialization.jsonObject(with: data) as? [String: Any]) ?? [:]
    }

    /// Starts grid-eventd and `producers` emit-load processes; returns events/s and the worst producer's emit()
    /// latency percentiles (ns).
    func endToEnd(sync: String, producers: Int, run: Int) throws -> (Double, (p50: Double, p99: Double, p999: Double)) {
        let dir = work + "/e2e-\(sync)-\(producers)-\(run)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let daemon = Process()
        daemon.executableURL = URL(fileURLWithPath: bin + "/grid-eventd")
        daemon.arguments = ["--data-dir", dir + "/data", "--socket", dir + "/s.sock", "--sync", sync, "--http", "127.0.0.1:0", "--log-level", "warning"]
        try daemon.run()
        defer { daemon.terminate(); daemon.waitUntilExit() }
        for _ in 0..<200 where !FileManager.default.fileExists(atPath: dir + "/s.sock") { usleep(20_000) }
        let perProducer = 75_000
        var children: [(Process, Pipe)] = []
        for i in 0..<producers {
            let p = Process()
            p.executableURL = URL(fileURLWithPath: bin + "/emit-load")
            p.arguments = ["--storage", dir + "/s.sock", "--count", String(perProducer), "--producer", "bench\(i)", "--spool-dir", dir + "/spool", "--seed", String(i + 1)]
            let out = Pipe()
            p.standardOutput = out
            p.standardError = FileHandle.nullDevice
            children.append((p, out))
        }
        for (p, _) in children { try p.run() }
        var slowest = 0.0
        var worst = (p50: 0.0, p99: 0.0, p999: 0.0)
        for (p, out) in children {
            let data = out.fileHandleForReading.readDataToEndOfFile()
            p.waitUntilExit()
            let line = String(decoding: data, as: UTF8.self).split(separator: "\n").last.map(String.init) ?? "{}"
            let obj = (try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any]) ?? [:]
            slowest = max(slowest, obj["total_seconds"] as? Double ?? 0)
            worst.p50 = max(worst.p50, obj["emit_p50_ns"] as? Double ?? 0)
            worst.p99 = max(worst.p99, obj["emit_p99_ns"] as? Double ?? 0)
            worst.p999 = max(worst.p999, obj["emit_p999_ns"] as? Double ?? 0)
        }
        return (Double(perProducer * producers) / max(slowest, 1e-9), worst)
    }

    func report(_ rows: [Row]) {
        func median(_ v: [Double]) -> Double { let s = v.sorted(); return s[s.count / 2] }
        func spread(_ v: [Double]) -> String { v.count < 2 ? "" : String(format: " ±%.0f%%", 100 * (v.max()! - v.min()!) / max(median(v), 1e-12) / 2) }
        func fmt(_ x: Double) -> String { x >= 1000 ? String(format: "%.0f", x) : (x >= 10 ? String(format: "%.1f", x) : String(format: "%.3f", x)) }
        var table: [[String]] = [["measurement", "unit", "grid-events", "SQLite", "ratio"]]
        var json: [[String: Any]] = []
        for r in rows {
            let o = median(r.ours)
            var entry: [String: Any] = ["name": r.name, "unit": r.unit, "ours": r.ours, "ours_median": o]
            var cells = [r.name, r.unit, fmt(o) + spread(r.ours)]
            if let s = r.sqlite {
                let m = median(s)
                let ratio = r.higherIsBetter ? o / max(m, 1e-12) : m / max(o, 1e-12)
                cells += [fmt(m) + spread(s), String(format: "%.1fx", ratio)]
                entry["sqlite"] = s
                entry["sqlite_median"] = m
                entry["ratio_in_our_favour"] = ratio
            } else {
                cells += ["-", "-"]
            }
            table.append(cells)
            json.append(entry)
        }
        let widths = (0..<5).map { c in table.map { $0[c].count }.max() ?? 0 }
        print("")
        for row in table { print(row.enumerated().map { $1.padding(toLength: widths[$0], withPad: " ", startingAt: 0) }.joined(separator: "  ")) }
        print("\nratio: how many times better grid-events is (higher throughput, or lower latency/size); below 1.0x SQLite wins.")
        let doc: [String: Any] = ["date": TimeFormat.rfc3339(micros: StoreOptions.nowMicros()), "events": events, "runs": runs, "rows": json]
        if let data = try? JSONSerialization.data(withJSONObject: doc, options: [.prettyPrinted, .sortedKeys]) {
            try? data.write(to: URL(fileURLWithPath: self.json))
            print("written to \(self.json)")
        }
    }
}

func residentBytes() -> Int {
    guard let text = try? String(contentsOfFile: "/proc/self/statm", encoding: .utf8) else { return 0 }
    let fields = text.split(separator: " ")
    return fields.count > 1 ? (Int(fields[1]) ?? 0) * Int(sysconf(Int32(_SC_PAGESIZE))) : 0
}

final class StopFlag: @unchecked Sendable {
    private let lock = NSLock()
    private var value = false
    var isSet: Bool { lock.withLock { value } }
    func set() { lock.withLock { value = true } }
}

final class Counter: @unchecked Sendable {
    private let lock = NSLock()
    private var n = 0
    var value: Int { lock.withLock { n } }
    func add(_ k: Int) { lock.withLock { n += k } }
}
