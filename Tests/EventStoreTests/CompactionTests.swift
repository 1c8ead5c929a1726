import Foundation
import StoreFixtures
import Synchronization
import Testing
@_spi(Testing) import EventStore

/// Everything the store answers, for comparing a store before and after compaction, index files and reopen.
struct StoreAnswers: Equatable {
    var byId: [StoredEvent?] = []
    var contains: [Bool] = []
    var timelines: [[StoredEvent]] = []
    var byType: [[StoredEvent]] = []
    var counts: [Int] = []
    var timestamps: [[Int64]] = []
    var typeCounts: [UInt16: Int] = [:]
    var prefixes: [[StoredEvent]] = []
    var timeRanges: [[StoredEvent]] = []
    var neighbors: [[Neighbor]] = []
    var all: [String] = []
    var events = 0
    var adjacency = 0
    var duplicates = 0

    init(_ store: EventStore, ids: [String], base: Int64) {
        let probe = ids + ["event-synthetic-nobody-0-0"]
        byId = probe.map { store.event(id: $0) }
        contains = probe.map { store.contains(id: $0) }
        for entity in ["agent-0", "agent-42", "node-7", "node-1999", "nobody"] {
            let first = store.timeline(entity: entity, limit: 30)
            timelines.append(first)
            if let last = first.last { timelines.append(store.timeline(entity: entity, limit: 30, before: last.position)) }
        }
        let wide = Int64.min..<Int64.max
        let narrow = (base + 3_000)..<(base + 40_000)
        for type: UInt16 in [1, 5, 17, 99] {
            for range in [wide, narrow] {
                for newestFirst in [true, false] {
                    let page = store.events(type: type, in: range, limit: 25, newestFirst: newestFirst)
                    byType.append(page)
                    if let last = page.last {
                        byType.append(store.events(type: type, in: range, limit: 25, newestFirst: newestFirst, after: last.position))
                    }
                }
                counts.append(store.count(type: type, in: range))
                var stamps: [Int64] = []
                store.readPositions([.type(type)], ReadBounds(range: range, newestFirst: false)) { p, _ in
                    stamps.append(p.timestamp)
                    return true
                }
                timestamps.append(stamps)
            }
        }
        typeCounts = store.typeCounts()
        for prefix in ["event-synthetic-", "event-synthetic-a-1", "event-synth*", "event-nothing"] {
            prefixes.append(store.events(idPrefix: prefix, limit: 40))
        }
        for range in [wide, narrow] {
            for newestFirst in [true, false] {
                let page = store.events(in: range, limit: 50, newestFirst: newestFirst)
                timeRanges.append(page)
                if let last = page.last {
                    timeRanges.append(store.events(in: range, limit: 50, newestFirst: newestFirst, after: last.position))
                }
            }
        }
        let bucket = TimeBucket.id(base + 5_000)
        for node in ["agent-3", "node-11", bucket] + Array(ids.prefix(3)) {
            neighbors.append(store.neighbors(of: node, limit: 40))
        }
        store.forEachEvent {
            all.append($0.id)
            return true
        }
        let st = store.stats
        events = st.events
        adjacency = st.adjacencyEntries
        duplicates = st.duplicatesIgnored
    }
}

/// Notices a store sent, collected across threads.
final class Notices: Sendable {
    private let list = Mutex<[String]>([])
    var all: [String] { list.withLock { $0 } }
    var sink: @Sendable (String) -> Void { { n in self.list.withLock { $0.append(n) } } }
}

/// Names of the files in `dir` that end with `suffix`, sorted.
func files(_ dir: TempDir, endingWith suffix: String) throws -> [String] {
    try FileManager.default.contentsOfDirectory(atPath: dir.path).filter { (name: String) -> Bool in name.hasSuffix(suffix) }.sorted()
}

/// A fixed, settable clock for retention tests.
final class TestClock: Sendable {
    let now: Atomic<Int64>
    init(_ t: Int64) { now = Atomic(t) }
    func set(_ t: Int64) { now.store(t, ordering: .relaxed) }
    var function: @Sendable () -> Int64 { { self.now.load(ordering: .relaxed) } }
}

@Suite("Compaction, index files, retention", .serialized)
struct CompactionTests {
    let base: Int64 = 1_764_000_000_000_000

    func options(_ compression: Compression = .fast, notices: Notices? = nil) -> StoreOptions {
        var o = StoreOptions(durability: .batch, segmentCapacity: 64 << 10)
        o.compression = compression
        o.backgroundMaintenance = false
        if let notices { o.onNotice = notices.sink }
        return o
    }

    /// Fills a store across several segments: two runs whose batches interleave in time, and resends of earlier
    /// batches (duplicates) after segments rolled. Returns the ids stored.
    func fill(_ store: EventStore, batches: Int = 24) throws -> [String] {
        var ids: [String] = []
        for b in 0..<batches {
            for run in ["a", "b"] {
                let events = 30
                try store.append(SyntheticEvents.batch(run: run, batch: b, events: events, base: base))
                ids += (0..<events).map { SyntheticEvents.id(run: run, batch: b, index: $0) }
            }
            if b % 7 == 6 { try store.append(SyntheticEvents.batch(run: "a", batch: b - 5, events: 30, base: base)) }
        }
        return ids
    }

    @Test(arguments: [Compression.fast, .high])
    func everyQueryAnswersTheSameAfterCompactionAndReopen(_ compression: Compression) throws {
        let dir = TempDir("compact")
        var store: EventStore? = try EventStore.open(at: dir.path, options: options(compression))
        let ids = try fill(store!)
        let before = StoreAnswers(store!, ids: ids, base: base)
        #expect(before.all.count == ids.count)
        #expect(before.duplicates > 0, "the fixture resends batches")
        let statsBefore = store!.stats
        #expect(statsBefore.sealedSegments >= 4)

        let report = try store!.runMaintenance()
        #expect(report.indexesWritten.count == statsBefore.sealedSegments)
        #expect(report.compacted.count == statsBefore.sealedSegments)
        #expect(report.bytesAfterCompaction * 5 < report.bytesBeforeCompaction * 4, "LZ4 shrinks even random synthetic payloads (the records around them compress)")
        #expect(StoreAnswers(store!, ids: ids, base: base) == before)
        let after = store!.stats
        #expect(after.compactedSegments == statsBefore.sealedSegments)
        #expect(after.indexFiles == statsBefore.sealedSegments)
        // Only the active segment is still a .sgs file; every sealed one is .sgc plus .sgi.
        #expect(try files(dir, endingWith: ".sgs").count == 1)
        #expect(try files(dir, endingWith: ".sgc").count == statsBefore.sealedSegments)
        #expect(try files(dir, endingWith: ".sgi").count == statsBefore.sealedSegments)
        #expect(try store!.runMaintenance().didWork == false, "a second pass has nothing to do")

        store!.close()
        store = nil
        let notices = Notices()
        let reopened = try EventStore.open(at: dir.path, options: options(compression, notices: notices))
        #expect(reopened.recovery.notices.isEmpty, "\(reopened.recovery.notices)")
        #expect(reopened.recovery.skipped.isEmpty)
        #expect(StoreAnswers(reopened, ids: ids, base: base) == before)
        // Appends continue, and a resend of an event stored in a compacted segment is still recognised.
        try reopened.append(SyntheticEvents.batch(run: "a", batch: 0, events: 30, base: base))
        try reopened.append(SyntheticEvents.batch(run: "c", batch: 0, events: 30, base: base))
        #expect(reopened.stats.events == ids.count + 30)
        let verify = try runProduct("segdump", [dir.path, "--verify"])
        #expect(verify.status == 0, "\(verify.stdout)\(verify.stderr)")
    }

    /// Every system call of a compaction pass failing in turn (each is where a crash could stop it): the pass
    /// reports the error, nothing is lost, the next open finds the old state or the new, and a later pass
    /// finishes the job.
    @Test func failureAtEveryStepOfCompactionLeavesOldOrNewState() throws {
        let base = TempDir("compact-base")
        var o = options(.none)
        var store: EventStore? = try EventStore.open(at: base.path, options: o)
        let ids = try fill(store!)
        try store!.runMaintenance()  // index files only
        let before = StoreAnswers(store!, ids: ids, base: self.base)
        store!.close()
        store = nil
        var failedPasses = 0
        for call in [FaultInjector.Call.open, .write, .fdatasync, .rename, .mmap, .unlink] {
            for after in 0..<8 {
                let dir = TempDir("compact-fault")
                try FileManager.default.removeItem(atPath: dir.path)
                try FileManager.default.copyItem(atPath: base.path, toPath: dir.path)
                let faults = FaultInjector()
                o = options(.fast)
                o.faults = faults
                var faulty: EventStore? = try EventStore.open(at: dir.path, options: o)
                faults.fail(call, errno: EIO, after: after)
                let err = caughtStoreError { try faulty!.runMaintenance() }
                faults.clear()
                if err != nil {
                    failedPasses += 1
                    // The store keeps serving while its maintenance failed.
                    #expect(faulty!.event(id: ids[0]) == before.byId[0], "\(call) after \(after)")
                }
                faulty!.close()
                faulty = nil
                let reopened = try EventStore.open(at: dir.path, options: options(.fast))
                #expect(reopened.recovery.skipped.isEmpty && reopened.recovery.unreadableSegments.isEmpty, "\(call) after \(after): \(reopened.recovery.summary)")
                #expect(StoreAnswers(reopened, ids: ids, base: self.base) == before, "\(call) after \(after)")
                try reopened.runMaintenance()
                #expect(reopened.stats.compactedSegments == reopened.stats.sealedSegments, "\(call) after \(after)")
                #expect(StoreAnswers(reopened, ids: ids, base: self.base) == before, "\(call) after \(after)")
                reopened.close()
                let verify = try runProduct("segdump", [dir.path, "--verify"])
                #expect(verify.status == 0, "\(call) after \(after): \(verify.stdout.suffix(400))")
            }
        }
        #expect(failedPasses >= 30, "only \(failedPasses) injected failures hit a compaction pass")
    }

    @Test func damagedOrMissingIndexFilesAreRebuiltNeverTrusted() throws {
        let dir = TempDir("index")
        var store: EventStore? = try EventStore.open(at: dir.path, options: options())
        let ids = try fill(store!)
        try store!.runMaintenance()
        let before = StoreAnswers(store!, ids: ids, base: base)
        store!.close()
        store = nil
        let indexFiles = try files(dir, endingWith: ".sgi")
        #expect(indexFiles.count >= 4)
        // 1: a flipped byte deep inside a section (the header still checks out), 2: a damaged header,
        // 3: a truncated file, 4: a missing file.
        func flip(_ name: String, at fraction: Double) throws {
            let h = try FileHandle(forUpdating: URL(fileURLWithPath: dir.file(name)))
            let size = try h.seekToEnd()
            let at = UInt64(Double(size) * fraction)
            try h.seek(toOffset: at)
            let b = try h.read(upToCount: 1)!
            try h.seek(toOffset: at)
            try h.write(contentsOf: Data([b[0] ^ 0x40]))
            try h.close()
        }
        try flip(indexFiles[0], at: 0.6)
        try flip(indexFiles[1], at: 0.0001)
        try FileManager.default.removeItem(atPath: dir.file(indexFiles[3]))
        let h = try FileHandle(forUpdating: URL(fileURLWithPath: dir.file(indexFiles[2])))
        try h.truncate(atOffset: 1000)
        try h.close()

        let notices = Notices()
        let reopened = try EventStore.open(at: dir.path, options: options(notices: notices))
        // Header damage, truncation and absence are found on open; section damage on first use.
        #expect(reopened.recovery.notices.count == 3, "\(reopened.recovery.notices)")
        #expect(StoreAnswers(reopened, ids: ids, base: base) == before)
        #expect(notices.all.contains { $0.contains("failed its checksum") }, "\(notices.all)")
        // Maintenance writes fresh index files, and the next open trusts them.
        let report = try reopened.runMaintenance()
        #expect(report.indexesWritten.count == 4)
        reopened.close()
        let again = try EventStore.open(at: dir.path, options: options())
        #expect(again.recovery.notices.isEmpty, "\(again.recovery.notices)")
        #expect(StoreAnswers(again, ids: ids, base: base) == before)
    }

    @Test(arguments: [1, 2]) func indexFilesOfAnOlderLayoutAreRebuiltNeverMisread(version: Int) throws {
        let dir = TempDir("index-v\(version)")
        var store: EventStore? = try EventStore.open(at: dir.path, options: options())
        let ids = try fill(store!)
        try store!.runMaintenance()
        let before = StoreAnswers(store!, ids: ids, base: base)
        store!.close()
        store = nil
        // Make every index file claim an older layout (magic SGEVIDX1 or SGEVIDX2, that version), with a header
        // checksum that holds, as a file written by an earlier release would.
        let indexFiles = try files(dir, endingWith: ".sgi")
        #expect(!indexFiles.isEmpty)
        for name in indexFiles {
            var bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: dir.file(name))))
            bytes[7] = UInt8(ascii: "0") + UInt8(version)
            bytes[8] = UInt8(version)
            let sumAt = 328  // IndexFile.headerChecksumOffset of version 3 (docs/FORMAT.md)
            let sum = bytes[0..<sumAt].withUnsafeBytes { Hash.bytes($0) }
            withUnsafeBytes(of: sum.littleEndian) { for i in 0..<8 { bytes[sumAt + i] = $0[i] } }
            try Data(bytes).write(to: URL(fileURLWithPath: dir.file(name)))
        }
        let reopened = try EventStore.open(at: dir.path, options: options())
        #expect(reopened.recovery.notices.count == indexFiles.count, "\(reopened.recovery.notices)")
        #expect(reopened.recovery.notices.allSatisfy { $0.contains("version \(version)") }, "\(reopened.recovery.notices)")
        #expect(StoreAnswers(reopened, ids: ids, base: base) == before)
        let report = try reopened.runMaintenance()
        #expect(report.indexesWritten.count == indexFiles.count, "maintenance writes them again in the current layout")
        reopened.close()
        let again = try EventStore.open(at: dir.path, options: options())
        #expect(again.recovery.notices.isEmpty, "\(again.recovery.notices)")
        #expect(StoreAnswers(again, ids: ids, base: base) == before)
    }

    @Test func damagedCompressedBlockLosesOnlyItsEvents() throws {
        let dir = TempDir("block")
        var store: EventStore? = try EventStore.open(at: dir.path, options: options())
        let ids = try fill(store!)
        try store!.runMaintenance()
        store!.close()
        store = nil
        let compacted = try files(dir, endingWith: ".sgc")
        let h = try FileHandle(forUpdating: URL(fileURLWithPath: dir.file(compacted[1])))
        try h.seek(toOffset: 200)  // inside the first block's compressed bytes
        try h.write(contentsOf: Data([0xFF, 0x00, 0xFF]))
        try h.close()
        let reopened = try EventStore.open(at: dir.path, options: options())
        let (present, problems) = allSyntheticIds(reopened)
        #expect(problems.isEmpty, "\(problems.prefix(3))")
        let lost = Set(ids).subtracting(present)
        #expect(!lost.isEmpty && lost.count < 400, "only the damaged block's events are lost (lost \(lost.count))")
        #expect(reopened.stats.readDamage.count == 1, "\(reopened.stats.readDamage)")
        #expect(reopened.stats.readDamage.first?.reason.contains("block 0") == true)
        let verify = try runProduct("segdump", [dir.path, "--verify"])
        #expect(verify.status != 0)
        #expect(verify.stdout.contains("block 0"), "\(verify.stdout)")
    }

    @Test func bitFlipInAnIndexedUncompactedSegmentLosesOnlyItsFrame() throws {
        let dir = TempDir("rawsealed")
        var store: EventStore? = try EventStore.open(at: dir.path, options: options(.none))
        let ids = try fill(store!)
        let report = try store!.runMaintenance()
        #expect(report.compacted.isEmpty && !report.indexesWritten.isEmpty)
        store!.close()
        store = nil
        // Flip a byte in the middle of segment 2's data: opening trusts the index file and does not scan it,
        // so the frame's checksum is checked when a read first touches it.
        let h = try #require(FileHandle(forUpdatingAtPath: dir.file("seg-0000000002.sgs")))
        try h.seek(toOffset: 30_000)
        let b = h.readData(ofLength: 1)[0]
        try h.seek(toOffset: 30_000)
        h.write(Data([b ^ 0x10]))
        try h.close()
        let reopened = try EventStore.open(at: dir.path, options: options(.none))
        #expect(reopened.recovery.skipped.isEmpty, "sealed, indexed segments are not scanned on open")
        let (present, problems) = allSyntheticIds(reopened)
        #expect(problems.isEmpty, "\(problems.prefix(3))")
        let lost = Set(ids).subtracting(present)
        #expect(lost.count == 30, "exactly the damaged frame's 30 events are withheld (lost \(lost.count))")
        #expect(reopened.stats.readDamage.count == 1)
        #expect(reopened.stats.readDamage.first?.segment == 2)
        #expect(reopened.stats.readDamage.first?.reason == "frame fails its checksum")
        for id in lost { #expect(reopened.event(id: id) == nil) }
    }

    @Test func retentionByAgeDeletesWholeOldSegmentsAndSurvivesReopen() throws {
        let dir = TempDir("retain")
        let clock = TestClock(base)
        var o = options()
        o.clock = clock.function
        o.retainMicros = 20_000  // 20 ms of synthetic time
        var store: EventStore? = try EventStore.open(at: dir.path, options: o)
        let ids = try fill(store!)
        // At `base` nothing is old enough.
        #expect(try store!.runMaintenance().deleted.isEmpty)
        let segmentsBefore = store!.stats.segments
        // Move the clock: segments whose newest event is older than now - 20 ms go, oldest first, whole.
        clock.set(base + 24_000 + 20_000 - 10_000)
        let report = try store!.runMaintenance()
        #expect(!report.deleted.isEmpty)
        let st = store!.stats
        #expect(st.segments == segmentsBefore - report.deleted.count)
        #expect(st.retention.segments == report.deleted.count)
        #expect(st.retention.events == report.deletedEvents)
        #expect(st.retention.lastDeletion == clock.now.load(ordering: .relaxed))
        let cutoff = clock.now.load(ordering: .relaxed) - 20_000
        let (present, problems) = allSyntheticIds(store!)
        #expect(problems.isEmpty)
        #expect(present.count == st.events)
        #expect(present.count == ids.count - report.deletedEvents)
        // Every event newer than the cutoff is still there (older ones may remain when they share a segment
        // with newer ones: retention deletes whole segments).
        for id in ids {
            let p = id.split(separator: "-")
            let ts = SyntheticEvents.timestamp(base: base, batch: Int(p[3])!, index: Int(p[4])!)
            if ts >= cutoff { #expect(store!.contains(id: id), "\(id) is newer than the cutoff") }
        }
        let remaining = try files(dir, endingWith: "")
        for id in report.deleted {
            let stem = "seg-" + String(repeating: "0", count: 10 - String(id).count) + String(id)
            #expect(!remaining.contains { (name: String) -> Bool in name.hasPrefix(stem) }, "files of deleted segment \(id) remain")
        }
        store!.close()
        store = nil
        let reopened = try EventStore.open(at: dir.path, options: o)
        #expect(reopened.stats.retention == st.retention)
        #expect(allSyntheticIds(reopened).ids.count == present.count)
    }

    @Test func retentionBySizeKeepsTheStoreUnderTheLimit() throws {
        let dir = TempDir("maxbytes")
        var o = options()
        var store = try EventStore.open(at: dir.path, options: o)
        _ = try fill(store, batches: 40)
        try store.runMaintenance()
        let total = store.stats.diskBytes
        store.close()
        o.maxBytes = total / 2
        store = try EventStore.open(at: dir.path, options: o)
        let report = try store.runMaintenance()
        #expect(!report.deleted.isEmpty)
        #expect(report.deleted == report.deleted.sorted(), "oldest first")
        #expect(store.stats.diskBytes <= total / 2)
        #expect(store.stats.diskBytes > total / 2 - 160 << 10, "no more than needed is deleted")
        #expect(report.deleted.first == 1)
        // The active segment is never deleted, whatever the limit.
        store.close()
        o.maxBytes = 1
        store = try EventStore.open(at: dir.path, options: o)
        try store.runMaintenance()
        #expect(store.stats.segments == 1)
        try store.append(SyntheticEvents.batch(run: "z", batch: 0, events: 10, base: base))
        #expect(store.contains(id: SyntheticEvents.id(run: "z", batch: 0, index: 9)))
    }

    @Test func backgroundMaintenanceCompactsWithoutBeingAsked() throws {
        let dir = TempDir("background")
        var o = options()
        o.backgroundMaintenance = true
        let store = try EventStore.open(at: dir.path, options: o)
        let ids = try fill(store)
        #expect(store.stats.sealedSegments >= 4, "the fixture seals segments for the background thread to compact")
        let deadline = Date().addingTimeInterval(20)
        while Date() < deadline, store.stats.compactedSegments < store.stats.sealedSegments {
            usleep(20_000)
        }
        #expect(store.stats.compactedSegments == store.stats.sealedSegments)
        #expect(allSyntheticIds(store).ids.count == ids.count)
    }
}
