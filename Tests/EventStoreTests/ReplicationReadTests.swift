import Foundation
import StoreFixtures
import Synchronization
import Testing
@_spi(Testing) import EventStore

/// The store's replication read API (`committedFrames`) and the retention floor.
@Suite struct ReplicationReadTests {
    let base: Int64 = 1_764_000_000_000_000

    func options() -> StoreOptions {
        var o = StoreOptions(durability: .batch, segmentCapacity: 64 << 10)
        o.backgroundMaintenance = false
        return o
    }

    /// 24 x 2 batches of 30 events over several 64 KiB segments; returns each batch's sequence and ids.
    func fill(_ store: EventStore, batches: Int = 24) throws -> [(UInt64, [String])] {
        var out: [(UInt64, [String])] = []
        for b in 0..<batches {
            for run in ["a", "b"] {
                let r = try store.append(SyntheticEvents.batch(run: run, batch: b, events: 30, base: base))
                out.append((r.sequence, (0..<30).map { SyntheticEvents.id(run: run, batch: b, index: $0) }))
            }
        }
        return out
    }

    /// Reads every frame after `after` in pages; the concatenation must be exactly the expected frames.
    func readAll(_ store: EventStore, after: UInt64, maxFrames: Int, maxBytes: Int) throws -> [CommittedFrame] {
        var out: [CommittedFrame] = []
        var cursor = after
        while true {
            let page = try store.committedFrames(after: cursor, maxBytes: maxBytes, maxFrames: maxFrames)
            if page.isEmpty { return out }
            #expect(page.count <= maxFrames)
            out += page
            cursor = page.last!.sequence
        }
    }

    @Test func framesAfterACursorInRawAndCompactedSegments() throws {
        let dir = TempDir("repl-read")
        let store = try EventStore.open(at: dir.path, options: options())
        let written = try fill(store)
        #expect(store.stats.segments > 3, "the test needs several segments")
        func check(_ label: String, _ store: EventStore) throws {
            for after in [0, 1, 17, 30, written.last!.0 - 1, written.last!.0] {
                let frames = try readAll(store, after: UInt64(after), maxFrames: 7, maxBytes: 1 << 20)
                let expected = written.filter { $0.0 > UInt64(after) }
                #expect(frames.map(\.sequence) == expected.map(\.0), "\(label) after \(after)")
                #expect(frames.map { $0.events.map(\.id) } == expected.map(\.1), "\(label) after \(after): events in frame order")
            }
            // A byte budget smaller than one frame still returns one frame (progress is always made).
            let one = try store.committedFrames(after: 0, maxBytes: 1, maxFrames: 100)
            #expect(one.count == 1)
        }
        try check("raw", store)
        try store.runMaintenance()  // index files and LZ4 compaction of sealed segments
        #expect(store.stats.compactedSegments > 0)
        try check("compacted", store)
        store.close()
        let reopened = try EventStore.open(at: dir.path, options: options())
        try check("reopened", reopened)
        reopened.close()
    }

    @Test func retentionKeepsWhatIsNotReplicatedUnlessMaxBytesForcesIt() throws {
        let dir = TempDir("repl-floor")
        let floor = FloorState()
        let clock = TestClock(base)
        var o = options()
        o.clock = clock.function
        o.retainMicros = 20_000
        o.replicationFloor = { floor.floor.load(ordering: .relaxed) }
        o.onReplicationLoss = { l in floor.losses.withLock { $0.append(l) } }
        var store: EventStore? = try EventStore.open(at: dir.path, options: o)
        let written = try fill(store!)
        clock.set(base + 1_000_000_000)  // everything is old enough by age
        // Nothing replicated: age retention deletes nothing.
        #expect(try store!.runMaintenance().deleted.isEmpty)
        // Half replicated: only segments wholly at or below the floor may go.
        let half = written[written.count / 2].0
        floor.floor.store(half, ordering: .relaxed)
        let report = try store!.runMaintenance()
        #expect(!report.deleted.isEmpty)
        let firstLeft = try store!.committedFrames(after: 0, maxBytes: 1 << 20, maxFrames: 1).first!.sequence
        #expect(firstLeft <= half + 1, "no frame above the floor was deleted")
        #expect(floor.losses.withLock { $0.isEmpty })
        store!.close()
        store = nil
        // max_bytes forces deletion of unreplicated segments: reported as a loss.
        var o2 = o
        o2.retainMicros = nil
        o2.maxBytes = 70 << 10
        let small = try EventStore.open(at: dir.path, options: o2)
        try small.runMaintenance()
        let lost = floor.losses.withLock { $0 }
        #expect(lost.count == 1)
        #expect(lost.first?.cursor == half)
        #expect((lost.first?.lastDeletedSequence ?? 0) > half)
        #expect((lost.first?.events ?? 0) > 0)
        small.close()
    }
}

final class FloorState: Sendable {
    let floor = Atomic<UInt64>(0)
    let losses = Mutex<[ReplicationLoss]>([])
}
