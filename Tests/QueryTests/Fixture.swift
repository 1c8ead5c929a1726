import EventRecords
import EventStore
import Foundation
import GridEvents
import GridFixtures
import QueryOracle
@testable import EventQuery

/// A store filled with generated grid events whose answers are computed independently from the same list.
final class Fixture {
    let dir: String
    let store: EventStore
    let engine: QueryEngine
    let events: [GridEvent]
    /// 2025-11-29T00:00:00Z, a Saturday; the fixture spans that day.
    static let dayStart: Int64 = 1_764_374_400_000_000

    init(count: Int = 6000, seed: UInt64 = 7) throws {
        dir = NSTemporaryDirectory() + "query-fixture-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        store = try EventStore.open(at: dir, options: StoreOptions(segmentCapacity: 256 << 10))
        engine = QueryEngine(store: store)
        var grid = SampleGrid(seed: seed, agents: 12, nodes: 60, start: Fixture.dayStart, span: 86_400_000_000)
        var list = grid.events(count)
        // Producers deliver out of time order: shuffle within windows of 40.
        var rng = SeededRandom(seed: seed)
        for start in stride(from: 0, to: list.count, by: 40) {
            let end = min(start + 40, list.count)
            for i in start..<end {
                let j = start + Int(rng.next() % UInt64(end - start))
                list.swapAt(i, j)
            }
        }
        events = list
        for chunk in stride(from: 0, to: list.count, by: 100) {
            try store.append(list[chunk..<min(chunk + 100, list.count)].flatMap { $0.records() })
        }
    }

    deinit {
        store.close()
        try? FileManager.default.removeItem(atPath: dir)
    }

    /// The brute-force answer: events matching, newest first by (timestamp, arrival).
    func expected(types: Set<EventType> = [], entity: String? = nil, range: Range<Int64>? = nil, prefix: String? = nil) -> [GridEvent] {
        events.filter { e in
            (types.isEmpty || types.contains(e.type)) && (entity == nil || e.entities.contains(entity!))
                && (range == nil || range!.contains(e.timestamp)) && (prefix == nil || e.id.hasPrefix(prefix!))
        }
        .sorted { $0.timestamp > $1.timestamp }
    }
}
