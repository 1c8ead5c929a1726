import EventQuery
import EventStore
import Foundation
import GridEvents
import GridFixtures
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// CPU time of the calling thread, nanoseconds (what a measurement costs, whatever else the machine runs).
func threadCPUNanos() -> UInt64 {
    var ts = timespec()
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts)
    return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
}

extension GridBench {
    /// The grid state behind `/api/grid/agents` on a store of `events` realistic events from 500 agents and 10,000
    /// nodes over one day: the state kept as events are appended (as grid-eventd's writer does, checkpoints
    /// written in the background), read per request; time travel at random moments; checkpoint bytes; the open
    /// time it adds; the route over HTTP from grid-eventd on that store; and, at 1M, today's replay per request.
    func gridStateRows(events count: Int, into rows: inout [Row]) throws {
        let label = count >= 1_000_000 ? "\(count / 1_000_000)M" : "\(count)"
        let dir = work + "/gridstate-\(label)"
        print("grid state: building a \(label)-event store (500 agents, 10,000 nodes), folding as it appends...")
        var o = StoreOptions(durability: .none)
        o.backgroundMaintenance = false
        var store = try EventStore.open(at: dir, options: o)
        var keeper = try GridStateKeeper.open(store)
        var grid = SampleGrid(seed: 21, agents: 500, nodes: 10_000)
        var appended = 0
        var foldNanos: UInt64 = 0
        var foldCPU: UInt64 = 0
        var checkCPU: UInt64 = 0
        var first = Int64.max
        var last = Int64.min
        while appended < count {
            let chunk = (appended..<min(count, appended + 1000)).map { grid.event(index: $0, count: count) }
            // The daemon's writer checks a group's grid events against the store before folding them.
            let gridEvents = chunk.filter { GridFold.folds($0.type) }
            let d0 = threadCPUNanos()
            _ = store.contains(ids: gridEvents.map(\.id), timestamps: gridEvents.map(\.timestamp))
            checkCPU += threadCPUNanos() - d0
            try store.append(chunk.flatMap { $0.records() })
            let t0 = monotonicNanos()
            let c0 = threadCPUNanos()
            keeper.observe(chunk)
            foldCPU += threadCPUNanos() - c0
            foldNanos += monotonicNanos() - t0
            first = min(first, chunk.first!.timestamp)
            last = max(last, chunk.last!.timestamp)
            appended += chunk.count
            if appended % 1_000_000 == 0 { print("  \(appended) events") }
        }
        keeper.checkpointNow()
        rows.append(Row(name: "grid state (\(label)): fold cost while appending, per event (wall)", unit: "ns",
                        ours: [Double(foldNanos) / Double(count)], sqlite: nil, higherIsBetter: false))
        rows.append(Row(name: "grid state (\(label)): fold cost while appending, CPU time of the folding thread, per event", unit: "ns",
                        ours: [Double(foldCPU) / Double(count)], sqlite: nil, higherIsBetter: false))
        rows.append(Row(name: "grid state (\(label)): writer's duplicate check before handing events over, CPU time, per event", unit: "ns",
                        ours: [Double(checkCPU) / Double(count)], sqlite: nil, higherIsBetter: false))
        print("  compacting...")
        _ = try store.runMaintenance()

        func percentile(_ samples: [UInt64], _ p: Double) -> Double {
            let s = samples.sorted()
            return Double(s[min(s.count - 1, Int(Double(s.count) * p))]) / 1000
        }
        // The state read per request (sorted agents and nodes); cached between writes, so measured uncached too.
        var reads: [UInt64] = []
        for _ in 0..<200 {
            let t0 = monotonicNanos()
            let s = keeper.states()
            reads.append(monotonicNanos() - t0)
            precondition(s.agents.count > 0)
        }
        var fresh: [UInt64] = []
        var freshCPU: [UInt64] = []
        let fold = keeper.currentFold
        for _ in 0..<20 {
            let t0 = monotonicNanos()
            let c0 = threadCPUNanos()
            _ = fold.states()
            freshCPU.append(threadCPUNanos() - c0)
            fresh.append(monotonicNanos() - t0)
        }
        rows.append(Row(name: "grid state (\(label)): state read per request, after a write, CPU time (p50)", unit: "µs",
                        ours: [percentile(freshCPU, 0.5)], sqlite: nil, higherIsBetter: false))
        rows.append(Row(name: "grid state (\(label)): state read per request, cached (p50)", unit: "µs",
                        ours: [percentile(reads, 0.5)], sqlite: nil, higherIsBetter: false))
        rows.append(Row(name: "grid state (\(label)): state read per request, after a write (p50)", unit: "µs",
                        ours: [percentile(fresh, 0.5)], sqlite: nil, higherIsBetter: false))
        // Time travel at random moments of the day.
        var rng = SystemRandomNumberGenerator()
        var travel: [UInt64] = []
        var travelCPU: [UInt64] = []
        for _ in 0..<200 {
            let t = Int64.random(in: first...last, using: &rng)
            let t0 = monotonicNanos()
            let c0 = threadCPUNanos()
            _ = try keeper.states(at: t)
            travelCPU.append(threadCPUNanos() - c0)
            travel.append(monotonicNanos() - t0)
        }
        rows.append(Row(name: "grid state (\(label)): time travel at a random moment, CPU time p50", unit: "ms",
                        ours: [percentile(travelCPU, 0.5) / 1000], sqlite: nil, higherIsBetter: false))
        rows.append(Row(name: "grid state (\(label)): time travel at a random moment, CPU time p99", unit: "ms",
                        ours: [percentile(travelCPU, 0.99) / 1000], sqlite: nil, higherIsBetter: false))
        rows.append(Row(name: "grid state (\(label)): time travel at a random moment, CPU time max of 200", unit: "ms",
                        ours: [percentile(travelCPU, 1.0) / 1000], sqlite: nil, higherIsBetter: false))
        rows.append(Row(name: "grid state (\(label)): time travel at a random moment, p50", unit: "ms",
                        ours: [percentile(travel, 0.5) / 1000], sqlite: nil, higherIsBetter: false))
        rows.append(Row(name: "grid state (\(label)): time travel at a random moment, p99", unit: "ms",
                        ours: [percentile(travel, 0.99) / 1000], sqlite: nil, higherIsBetter: false))
        rows.append(Row(name: "grid state (\(label)): time travel at a random moment, max of 200", unit: "ms",
                        ours: [percentile(travel, 1.0) / 1000], sqlite: nil, higherIsBetter: false))
        // Where time travel spends its time: reading and decoding one checkpoint, and folding the events after it.
        if let newestCheckpoint = keeper.checkpoints.last {
            var decode: [UInt64] = []
            for _ in 0..<10 {
                let t0 = monotonicNanos()
                let bytes = try! store.readSideFile(keeper.directory, newestCheckpoint.name)!
                _ = try? GridCheckpoint.decode(bytes)
                decode.append(monotonicNanos() - t0)
            }
            rows.append(Row(name: "grid state (\(label)): read and decode one checkpoint (p50)", unit: "ms",
                            ours: [percentile(decode, 0.5) / 1000], sqlite: nil, higherIsBetter: false))
        }
        do {
            let types = GridFold.typeCodes
            let from = first + (last - first) / 3
            var f = GridFold()
            var n = 0
            let t0 = monotonicNanos()
            store.read(types.sorted().map { ReadSource.type($0) }, ReadBounds(range: from..<last, newestFirst: false), types: types) { stored in
                if let e = try? GridEvent(stored: stored) { f.apply(e) }
                n += 1
                return n < 20_000
            }
            rows.append(Row(name: "grid state (\(label)): read, decode and fold 20,000 grid events in time order, per event", unit: "µs",
                            ours: [Double(monotonicNanos() - t0) / 1000 / Double(max(n, 1))], sqlite: nil, higherIsBetter: false))
        }
        let cps = keeper.checkpoints
        let bytes = cps.reduce(0) { $0 + $1.bytes }
        rows.append(Row(name: "grid state (\(label)): checkpoints on disk (count)", unit: "files",
                        ours: [Double(cps.count)], sqlite: nil, higherIsBetter: false))
        rows.append(Row(name: "grid state (\(label)): checkpoint bytes on disk, all", unit: "MiB",
                        ours: [Double(bytes) / 1_048_576], sqlite: nil, higherIsBetter: false))
        rows.append(Row(name: "grid state (\(label)): checkpoint bytes on disk, the newest", unit: "KiB",
                        ours: [Double(cps.last?.bytes ?? 0) / 1024], sqlite: nil, higherIsBetter: false))
        let storeBytes = store.stats.diskBytes
        rows.append(Row(name: "grid state (\(label)): checkpoints / store bytes on disk", unit: "%",
                        ours: [100 * Double(bytes) / Double(max(1, storeBytes))], sqlite: nil, higherIsBetter: false))
        if count <= 1_000_000 {
            let engine = QueryEngine(store: store)
            let t0 = monotonicNanos()
            _ = (engine.agentStates(), engine.nodeStates())
            rows.append(Row(name: "grid state (\(label)): before, replay per request (QueryEngine)", unit: "ms",
                            ours: [Double(monotonicNanos() - t0) / 1e6], sqlite: nil, higherIsBetter: false))
        }
        // Open time added: from the shutdown checkpoint (empty tail), with a 20,000-event tail (a crash just
        // before the next checkpoint), and the one-time full replay of a store without checkpoints.
        keeper.close()
        var opens: [Double] = []
        for _ in 0..<3 {
            let t0 = monotonicNanos()
            keeper = try GridStateKeeper.open(store)
            opens.append(Double(monotonicNanos() - t0) / 1e9)
        }
        let tailStart = count
        var tailGrid = SampleGrid(seed: 22, agents: 500, nodes: 10_000, start: last, span: 60_000_000)
        var tail: [GridEvent] = []
        for i in 0..<19_000 { tail.append(tailGrid.event(index: i, count: 19_000, producerTag: "7a3c9e0d7b21")) }
        for k in stride(from: 0, to: tail.count, by: 1000) { try store.append(tail[k..<min(tail.count, k + 1000)].flatMap { $0.records() }) }
        _ = tailStart
        let t1 = monotonicNanos()
        keeper = try GridStateKeeper.open(store)
        let tailOpen = Double(monotonicNanos() - t1) / 1e9
        let tailRead = keeper.openReport.eventsRead
        store.close()
        try? FileManager.default.removeItem(atPath: dir + "/" + GridStateKeeper.directoryName)
        store = try EventStore.open(at: dir, options: o)
        let t2 = monotonicNanos()
        keeper = try GridStateKeeper.open(store)
        let replayOpen = Double(monotonicNanos() - t2) / 1e9
        keeper.close()
        rows.append(Row(name: "grid state (\(label)): open time added, from the shutdown checkpoint", unit: "s",
                        ours: opens, sqlite: nil, higherIsBetter: false))
        rows.append(Row(name: "grid state (\(label)): open time added, checkpoint + \(tailRead)-event tail", unit: "s",
                        ours: [tailOpen], sqlite: nil, higherIsBetter: false))
        rows.append(Row(name: "grid state (\(label)): open time added, first open (full replay, writes checkpoints)", unit: "s",
                        ours: [replayOpen], sqlite: nil, higherIsBetter: false))
        store.close()
        try routeOverHTTP(dir: dir, label: label, into: &rows)
        try? FileManager.default.removeItem(atPath: dir)
    }

    /// `/api/grid/agents` over HTTP from grid-eventd serving the store (current state, and `?at=` random moments).
    func routeOverHTTP(dir: String, label: String, into rows: inout [Row]) throws {
        guard FileManager.default.isExecutableFile(atPath: bin + "/grid-eventd") else {
            print("(grid-state HTTP rows skipped: build the root package in release first: make release)")
            return
        }
        let port = 17_780 + Int.random(in: 0..<200)
        let daemon = Process()
        daemon.executableURL = URL(fileURLWithPath: bin + "/grid-eventd")
        daemon.arguments = ["--data-dir", dir, "--socket", dir + ".sock", "--http", "127.0.0.1:\(port)", "--log-level", "warning",
                            "--metrics-interval", "3600"]
        try daemon.run()
        defer { daemon.terminate(); daemon.waitUntilExit() }
        final class Box: @unchecked Sendable { var value: (Int, Data)? }
        func get(_ path: String) -> (Int, Data)? {
            let sem = DispatchSemaphore(value: 0)
            let out = Box()
            URLSession.shared.dataTask(with: URL(string: "http://127.0.0.1:\(port)" + path)!) { data, response, _ in
                if let r = response as? HTTPURLResponse, let data { out.value = (r.statusCode, data) }
                sem.signal()
            }.resume()
            sem.wait()
            return out.value
        }
        let deadline = Date().addingTimeInterval(300)
        while get("/api/stats") == nil, Date() < deadline { usleep(100_000) }
        var samples: [Double] = []
        var size = 0
        for _ in 0..<50 {
            let t0 = monotonicNanos()
            guard let (status, body) = get("/api/grid/agents"), status == 200 else { continue }
            samples.append(Double(monotonicNanos() - t0) / 1e6)
            size = body.count
        }
        guard !samples.isEmpty else { return }
        samples.sort()
        rows.append(Row(name: "grid state (\(label)): GET /api/grid/agents over HTTP, p50 (\(size / 1024) KiB answer)", unit: "ms",
                        ours: [samples[samples.count / 2]], sqlite: nil, higherIsBetter: false))
        guard let (_, statsBody) = get("/api/stats"),
            let stats = try? JSONSerialization.jsonObject(with: statsBody) as? [String: Any],
            let oldest = (stats["oldest"] as? String).flatMap(TimeText.parse),
            let newest = (stats["newest"] as? String).flatMap(TimeText.parse)
        else { return }
        var travel: [Double] = []
        for _ in 0..<50 {
            let t = Int64.random(in: oldest...newest)
            let t0 = monotonicNanos()
            guard let (status, _) = get("/api/grid/agents?at=" + TimeText.format(t)), status == 200 else { continue }
            travel.append(Double(monotonicNanos() - t0) / 1e6)
        }
        travel.sort()
        if !travel.isEmpty {
            rows.append(Row(name: "grid state (\(label)): GET /api/grid/agents?at=<random moment> over HTTP, p50", unit: "ms",
                            ours: [travel[travel.count / 2]], sqlite: nil, higherIsBetter: false))
            rows.append(Row(name: "grid state (\(label)): GET /api/grid/agents?at=<random moment> over HTTP, max of \(travel.count)", unit: "ms",
                            ours: [travel.last!], sqlite: nil, higherIsBetter: false))
        }
    }
}
