import Foundation
import StoreFixtures
import Testing
@_spi(Testing) @testable import EventStore

/// Reads on snapshots: a read that began before compaction replaced a segment's file, or before retention deleted
/// it, still reads every event it saw, from the mappings it holds; appends go on meanwhile.
@Suite("Snapshots: reads across compaction and retention", .serialized)
struct SnapshotTests {
    func fill(_ store: EventStore, batches: Int, run: String) throws -> [String] {
        var ids: [String] = []
        for b in 0..<batches {
            let batch = SyntheticEvents.batch(run: run, batch: b, events: 40)
            try store.append(batch)
            for case .concept(let c) in batch { ids.append(c.id) }
        }
        return ids
    }

    @Test func aReadHeldAcrossCompactionAndRetentionStillReadsEverything() throws {
        let dir = TempDir("snapshot")
        // Retention by age, on a clock the test moves: nothing is old until the read is under way.
        let clock = Clock(1_764_000_000_000_000)
        var o = StoreOptions(segmentCapacity: 65_536)
        o.backgroundMaintenance = false
        o.compression = .fast
        o.retainMicros = 86_400_000_000
        o.clock = { clock.now }
        let store = try EventStore.open(at: dir.path, options: o)
        defer { store.close() }
        let ids = try fill(store, batches: 60, run: "s")
        var setup = MaintenanceReport()
        let before = store.stats
        #expect(before.sealedSegments > 5, "fixture: several sealed segments")

        // A read takes its snapshot, then compaction and retention run in the middle of it.
        var seen: [String] = []
        var maintained = false
        var report = MaintenanceReport()
        store.read([.all], ReadBounds(newestFirst: false)) { e in
            seen.append(e.id)
            if !maintained {
                maintained = true
                do {
                    // Write index files and compact everything sealed, then let every sealed segment age past retention.
                    setup = try store.runMaintenance()
                    clock.now += 10 * 86_400_000_000
                    report = try store.runMaintenance()
                } catch {
                    Issue.record("maintenance failed: \(error)")
                }
                // Appends go on while the read holds its snapshot.
                _ = try? store.append(SyntheticEvents.batch(run: "during", batch: 0, events: 40))
            }
            return true
        }
        #expect(!setup.compacted.isEmpty, "segments were compacted under the read")
        #expect(!report.deleted.isEmpty, "segments were deleted under the read")
        #expect(seen == ids, "the read saw \(seen.count) of \(ids.count) events, in order, from its snapshot")
        // A read that starts now sees the store as it is: the deleted segments are gone, the new batch is there.
        var now: [String] = []
        store.read([.all], ReadBounds(newestFirst: false)) { e in
            now.append(e.id)
            return true
        }
        #expect(now.count == store.stats.events)
        #expect(now.contains { $0.contains("during") })
        #expect(now.count < ids.count)
    }

    @Test func readersOnOtherThreadsNeverSeeAHalfAppliedSwap() throws {
        let dir = TempDir("snapshot-threads")
        var o = StoreOptions(segmentCapacity: 65_536)
        o.backgroundMaintenance = false
        o.maxBytes = 600_000
        let store = try EventStore.open(at: dir.path, options: o)
        defer { store.close() }
        let stop = ManagedFlag()
        let failures = ManagedCounter()
        let reads = ManagedCounter()
        let reader = Thread {
            while !stop.isSet {
                // Every event a read returns decodes and is a whole synthetic event, in position order.
                var last: EventPosition?
                store.read([.all], ReadBounds(newestFirst: false)) { e in
                    if e.entities.isEmpty || !e.id.hasPrefix("event-") { failures.add() }
                    if let last, !(last < e.position) { failures.add() }
                    last = e.position
                    return true
                }
                reads.add()
            }
        }
        reader.start()
        var total = 0
        for b in 0..<150 {
            try store.append(SyntheticEvents.batch(run: "t", batch: b, events: 40))
            total += 40
            if b % 10 == 9 { _ = try store.runMaintenance() }
        }
        stop.set()
        while reader.isExecuting { usleep(1000) }
        #expect(failures.value == 0)
        #expect(reads.value > 3, "the reader ran while segments were swapped (\(reads.value) reads)")
        #expect(store.stats.retention.segments > 0, "retention deleted segments during the reads")
    }
}

final class Clock: @unchecked Sendable {
    private let lock = NSLock()
    private var value: Int64
    init(_ start: Int64) { value = start }
    var now: Int64 {
        get { lock.withLock { value } }
        set { lock.withLock { value = newValue } }
    }
}

final class ManagedFlag: @unchecked Sendable {
    private let lock = NSLock()
    private var flag = false
    var isSet: Bool { lock.withLock { flag } }
    func set() { lock.withLock { flag = true } }
}

final class ManagedCounter: @unchecked Sendable {
    private let lock = NSLock()
    private var n = 0
    var value: Int { lock.withLock { n } }
    func add() { lock.withLock { n += 1 } }
}
