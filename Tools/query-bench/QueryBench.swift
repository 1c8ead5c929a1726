import ArgumentParser
import EventQuery
import EventStore
import Foundation
import GridEvents
import GridFixtures
import GridVersion

/// Fills a store with generated grid events (or reuses one) and measures query latency in process:
/// an entity's last 50 events, a type count in a one-hour window, an id lookup, a 2-hop traversal, and the
/// plain-English translation plus answer. Prints p50/p99 in microseconds.
@main
struct QueryBench: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "query-bench", abstract: "Measure query latency on a generated store.",
        version: GridVersion.current)

    @Option(name: .customLong("data-dir"), help: "Store directory (filled when empty).")
    var dataDir: String

    @Option(help: "Events to generate when the store is empty.")
    var events = 1_000_000

    @Option(help: "Repetitions per query kind.")
    var repeats = 2000

    @Option(help: "Target uncompressed size of compacted blocks in bytes (4096-65536).")
    var compactionBlock = 16384

    @Flag(help: "Drop the block cache's effect: a 1 MiB cache, so reads of compacted events mostly decompress.")
    var coldCache = false

    func run() throws {
        var options = StoreOptions(durability: .none)
        options.compactionBlockBytes = compactionBlock
        if coldCache { options.blockCacheBytes = 1 << 20 }
        let store = try EventStore.open(at: dataDir, options: options)
        if store.stats.events == 0 {
            var grid = SampleGrid(seed: 11)
            let start = monotonicNanos()
            var i = 0
            while i < events {
                let n = min(1000, events - i)
                var batch: [Record] = []
                for k in 0..<n { batch += grid.event(index: i + k, count: events).records() }
                try store.append(batch)
                i += n
            }
            print(String(format: "generated %d events in %.1f s", events, Double(monotonicNanos() - start) / 1e9))
        }
        _ = try store.runMaintenance()
        let stats = store.stats
        print("store: \(stats.events) events, \(stats.segments) segments, \(stats.dataBytes) bytes")
        let indexed = max(1, stats.compactedEvents)
        print(String(format: "index files %.1f bytes/event (%d files), compacted data %.1f bytes/event, on disk %d bytes",
                     Double(stats.indexBytes) / Double(indexed), stats.indexFiles,
                     Double(stats.compactedBytes) / Double(indexed), stats.diskBytes))
        let engine = QueryEngine(store: store)
        let grid = SampleGrid(seed: 11)
        let span = (stats.minTimestamp ?? 0)...(stats.maxTimestamp ?? 1)
        var rng = SystemRandomNumberGenerator()
        func measure(_ name: String, _ body: () throws -> Void) rethrows {
            var samples: [UInt64] = []
            for _ in 0..<repeats {
                let t0 = monotonicNanos()
                try body()
                samples.append(monotonicNanos() - t0)
            }
            samples.sort()
            print(String(format: "%-34@ p50 %8.1f us   p99 %8.1f us", name as NSString,
                         Double(samples[samples.count / 2]) / 1000, Double(samples[samples.count * 99 / 100]) / 1000))
        }
        measure("entity last 50 (store)") {
            _ = store.timeline(entity: grid.agentId(Int.random(in: 0..<100, using: &rng)), limit: 50)
        }
        measure("entity last 50 (query engine)") {
            _ = try? engine.find(EventQuery(entity: grid.nodeId(Int.random(in: 0..<2000, using: &rng)), limit: 50))
        }
        measure("type count, 1-hour window") {
            let from = Int64.random(in: span, using: &rng)
            _ = store.count(type: EventType.spawnFailed.rawValue, in: from..<(from + 3_600_000_000))
        }
        var ids: [String] = []
        store.forEachEvent { e in
            if ids.count < 5000 { ids.append(e.id) }
            return ids.count < 5000
        }
        measure("id lookup") { _ = store.event(id: ids.randomElement(using: &rng)!) }
        // Reads of old events: ids spread over the sealed (compacted) segments, and entity pages ending before the
        // newest 40% of the time span (the active segment holds the newest quarter or so).
        var old: [String] = []
        let active = stats.segments
        var n = 0
        store.forEachEvent { e in
            n += 1
            if e.position.location >> 32 < UInt64(active), n % 97 == 0 { old.append(e.id) }
            return true
        }
        if !old.isEmpty {
            measure("id lookup, compacted segments") { _ = store.event(id: old.randomElement(using: &rng)!) }
        }
        let cut = EventPosition(timestamp: span.lowerBound + (span.upperBound - span.lowerBound) * 6 / 10, location: 0)
        measure("entity last 50, compacted segments") {
            _ = store.timeline(entity: grid.nodeId(Int.random(in: 0..<2000, using: &rng)), limit: 50, before: cut)
        }
        measure("2-hop traversal from a node") {
            _ = try? engine.neighbors(of: grid.nodeId(Int.random(in: 0..<2000, using: &rng)), depth: 2, limit: 200)
        }
        let now = stats.maxTimestamp ?? 0
        let translator = Translator(now: { now })
        measure("plain English, in process") {
            _ = try? engine.ask("count spawn failures in the last hour", translator: translator)
        }
        store.close()
    }
}
