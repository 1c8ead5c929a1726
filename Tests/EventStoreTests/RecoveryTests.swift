import Foundation
import StoreFixtures
import Testing
@_spi(Testing) import EventStore

/// Byte-level damage to segment files, and what recovery makes of it.
@Suite("Recovery from torn tails and corruption")
struct RecoveryTests {
    /// Writes `batches` synthetic batches of `events` events into one segment; returns the frame offsets.
    func writeStore(_ dir: TempDir, batches: Int, events: Int = 10) throws -> [UInt64] {
        let store = try open(dir, capacity: 1 << 20)
        var offsets: [UInt64] = []
        for b in 0..<batches {
            offsets.append(try store.append(SyntheticEvents.batch(run: "rec", batch: b, events: events)).offset)
        }
        store.close()
        return offsets
    }

    func segmentPath(_ dir: TempDir, _ id: Int = 1) -> String {
        dir.file("seg-" + String(repeating: "0", count: 10 - String(id).count) + String(id) + ".sgs")
    }

    func patch(_ path: String, at offset: UInt64, _ bytes: [UInt8]) throws {
        let h = try #require(FileHandle(forUpdatingAtPath: path))
        try h.seek(toOffset: offset)
        h.write(Data(bytes))
        try h.close()
    }

    func read(_ path: String, at offset: UInt64, count: Int) throws -> [UInt8] {
        let h = try #require(FileHandle(forReadingAtPath: path))
        try h.seek(toOffset: offset)
        let d = h.readData(ofLength: count)
        try h.close()
        return Array(d)
    }

    func idsOfBatch(_ b: Int, events: Int = 10) -> [String] {
        (0..<events).map { SyntheticEvents.id(run: "rec", batch: b, index: $0) }
    }

    @Test func tornTailMidFrameIsTruncatedAndAppendsContinue() throws {
        let dir = TempDir()
        let offsets = try writeStore(dir, batches: 5)
        // Tear the last frame: keep its header and half its payload, zero the rest (a partial write).
        let last = offsets[4]
        try patch(segmentPath(dir), at: last + 100, [UInt8](repeating: 0, count: 2000))
        let store = try open(dir, capacity: 1 << 20)
        #expect(store.recovery.truncated.count == 1)
        #expect(store.recovery.truncated.first?.offset == last)
        #expect(store.recovery.skipped.isEmpty)
        let (ids, problems) = allSyntheticIds(store)
        #expect(problems.isEmpty)
        #expect(ids == (0..<4).flatMap { idsOfBatch($0) })
        // The tail is gone from the file and new appends land where it was.
        let r = try store.append(SyntheticEvents.batch(run: "rec", batch: 9, events: 10))
        #expect(r.offset == last)
        store.close()
        let again = try open(dir, capacity: 1 << 20)
        #expect(again.recovery.truncated.isEmpty)
        #expect(allSyntheticIds(again).ids.count == 50)
    }

    @Test func garbageAfterLastFrameIsTruncated() throws {
        let dir = TempDir()
        let offsets = try writeStore(dir, batches: 3)
        let store0 = try open(dir, capacity: 1 << 20, readOnly: true)
        let end = UInt64(store0.stats.dataBytes)
        store0.close()
        try patch(segmentPath(dir), at: end + 16, Array("garbage that is not a frame".utf8))
        let store = try open(dir, capacity: 1 << 20)
        #expect(store.recovery.truncated.count == 1)
        #expect(store.recovery.truncated.first!.offset == end)
        #expect(allSyntheticIds(store).ids.count == 30)
        #expect(offsets.count == 3)
    }

    @Test func flippedBitInTheMiddleLosesOnlyThatFrame() throws {
        let dir = TempDir()
        let offsets = try writeStore(dir, batches: 6)
        let target = offsets[2] + 200
        let byte = try read(segmentPath(dir), at: target, count: 1)[0]
        try patch(segmentPath(dir), at: target, [byte ^ 0x10])
        let store = try open(dir, capacity: 1 << 20)
        #expect(store.recovery.truncated.isEmpty)
        #expect(store.recovery.skipped.count == 1)
        #expect(store.recovery.skipped.first?.offset == offsets[2])
        #expect(store.recovery.skipped.first?.length == offsets[3] - offsets[2])
        #expect(store.recovery.summary.contains("segment 1 offset \(offsets[2])"))
        let (ids, problems) = allSyntheticIds(store)
        #expect(problems.isEmpty)
        #expect(ids == [0, 1, 3, 4, 5].flatMap { idsOfBatch($0) })
        #expect(store.event(id: idsOfBatch(2)[0]) == nil)
        // Appends continue after the last good frame, not after the damage.
        try store.append(SyntheticEvents.batch(run: "rec", batch: 6, events: 10))
        #expect(store.event(id: idsOfBatch(6)[9]) != nil)
    }

    @Test func corruptFrameLengthDoesNotLoseLaterFrames() throws {
        let dir = TempDir()
        let offsets = try writeStore(dir, batches: 5)
        // A flipped bit in a length field points the reader far past the frame; resync finds the next frame.
        try patch(segmentPath(dir), at: offsets[1] + 4, [0xFF, 0xFF, 0x0F, 0x00])
        let store = try open(dir, capacity: 1 << 20)
        #expect(store.recovery.skipped.map(\.offset) == [offsets[1]])
        #expect(allSyntheticIds(store).ids == [0, 2, 3, 4].flatMap { idsOfBatch($0) })
    }

    @Test func zeroedFrameInTheMiddleIsSkippedNotMistakenForTheEnd() throws {
        let dir = TempDir()
        let offsets = try writeStore(dir, batches: 4)
        let length = Int(offsets[2] - offsets[1])
        try patch(segmentPath(dir), at: offsets[1], [UInt8](repeating: 0, count: length))
        let store = try open(dir, capacity: 1 << 20)
        #expect(store.recovery.truncated.isEmpty)
        #expect(store.recovery.skipped.map(\.offset) == [offsets[1]])
        #expect(allSyntheticIds(store).ids == [0, 2, 3].flatMap { idsOfBatch($0) })
    }

    @Test func truncatedFileIsRecovered() throws {
        let dir = TempDir()
        let offsets = try writeStore(dir, batches: 4)
        // Cut the file itself in the middle of the last frame (as a crash before preallocation could leave it).
        try #require(truncate(segmentPath(dir), off_t(offsets[3] + 50)) == 0)
        let store = try open(dir, capacity: 1 << 20)
        #expect(store.recovery.truncated.first?.offset == offsets[3])
        #expect(allSyntheticIds(store).ids == (0..<3).flatMap { idsOfBatch($0) })
        try store.append(SyntheticEvents.batch(run: "rec", batch: 7, events: 10))
        #expect(store.stats.events == 40)
    }

    @Test func corruptSegmentHeaderIsReportedAndTheRestServed() throws {
        let dir = TempDir()
        do {
            let store = try open(dir, capacity: 64 << 10)
            for b in 0..<40 { try store.append(SyntheticEvents.batch(run: "rec", batch: b, events: 10)) }
            #expect(store.stats.segments >= 2)
            store.close()
        }
        try patch(segmentPath(dir, 1), at: 20, [0xAB])
        let store = try open(dir, capacity: 64 << 10)
        #expect(store.recovery.unreadableSegments.map(\.segment) == [1])
        let (ids, problems) = allSyntheticIds(store)
        #expect(problems.isEmpty)
        #expect(!ids.isEmpty && !ids.contains(idsOfBatch(0)[0]))
        #expect(ids.contains(idsOfBatch(39)[9]))
    }

    @Test func sealedSegmentCutShortIsReported() throws {
        let dir = TempDir()
        let store = try open(dir, capacity: 64 << 10)
        for b in 0..<80 { try store.append(SyntheticEvents.batch(run: "cut", batch: b, events: 10)) }
        #expect(store.stats.sealedSegments >= 2)
        store.close()
        let path = segmentPath(dir, 1)
        let batches = try SegmentInspector.inspect(path: path).frames.filter { $0.kind == .batch }
        let cut = batches[batches.count / 2]
        // Cut inside a frame header: a torn tail in a sealed segment, reported where the frame starts.
        #expect(truncate(path, off_t(cut.offset + 20)) == 0)
        let first = try open(dir, capacity: 64 << 10)
        #expect(first.recovery.skipped.contains { $0.segment == 1 && $0.offset == cut.offset }, "\(first.recovery.skipped)")
        #expect(first.recovery.truncated.isEmpty)
        first.close()
        // Cut exactly at a frame boundary: no torn bytes, but the seal is missing.
        #expect(truncate(path, off_t(cut.offset)) == 0)
        let second = try open(dir, capacity: 64 << 10)
        #expect(second.recovery.skipped.contains { $0.segment == 1 && $0.offset == cut.offset && $0.reason.contains("no seal") })
        #expect(second.contains(id: SyntheticEvents.id(run: "cut", batch: 0, index: 0)))
        second.close()
        let verify = try runProduct("segdump", [dir.path, "--verify"])
        #expect(verify.status == 1)
        #expect((verify.stdout + verify.stderr).contains("offset \(cut.offset): no seal frame"), "\(verify.stdout)")
    }

    @Test func leftoverTemporarySegmentIsRemoved() throws {
        let dir = TempDir()
        _ = try writeStore(dir, batches: 1)
        FileManager.default.createFile(atPath: dir.file("seg-0000000002.sgs.tmp"), contents: Data([1, 2, 3]))
        let store = try open(dir, capacity: 1 << 20)
        #expect(!FileManager.default.fileExists(atPath: dir.file("seg-0000000002.sgs.tmp")))
        #expect(store.stats.events == 10)
    }

    @Test func randomDamageNeverCrashesOrServesGarbage() throws {
        var rng = SystemRandomNumberGenerator()
        for round in 0..<25 {
            let dir = TempDir()
            let offsets = try writeStore(dir, batches: 6)
            let end = offsets[5] + 3000
            // Flip a few random bytes anywhere in the written area (header included sometimes).
            for _ in 0..<Int.random(in: 1...4, using: &rng) {
                let at = UInt64.random(in: 0..<end, using: &rng)
                let b = try read(segmentPath(dir), at: at, count: 1)[0]
                try patch(segmentPath(dir), at: at, [b ^ UInt8.random(in: 1...255, using: &rng)])
            }
            let store = try open(dir, capacity: 1 << 20)
            let (ids, problems) = allSyntheticIds(store)
            #expect(problems.isEmpty, "round \(round): \(problems.prefix(3))")
            #expect(Set(ids).count == ids.count)
            // Whatever is served is whole batches: every batch is all there or absent.
            let batches = Dictionary(grouping: ids) { $0.split(separator: "-")[3] }
            #expect(batches.values.allSatisfy { $0.count == 10 }, "round \(round)")
            // The store stays writable.
            if store.recovery.unreadableSegments.isEmpty {
                try store.append(SyntheticEvents.batch(run: "rec", batch: 100, events: 2))
            }
        }
    }
}
