import Foundation
import StoreFixtures
import Testing
@_spi(Testing) import EventStore

/// System-call failures injected through the store's system-call layer.
@Suite("Injected system-call failures")
struct FaultInjectionTests {
    @Test(arguments: [Durability.always, .batch])
    func fdatasyncFailureFailsClosed(mode: Durability) throws {
        let dir = TempDir()
        let faults = FaultInjector()
        let store = try open(dir, durability: mode, faults: faults)
        try store.append(SyntheticEvents.batch(run: "f", batch: 0, events: 5))
        faults.fail(.fdatasync, errno: EIO)
        expectStoreError(.syncFailed) { try store.append(SyntheticEvents.batch(run: "f", batch: 1, events: 5)) }
        // The failure is sticky even though fdatasync would work again: nothing more is acknowledged.
        faults.clear()
        expectStoreError(.failedClosed) { try store.append(SyntheticEvents.batch(run: "f", batch: 2, events: 5)) }
        let e = caughtStoreError { try store.append(SyntheticEvents.batch(run: "f", batch: 3, events: 5)) }
        #expect(e?.message.contains("failed closed") == true)
        #expect(e?.errno == EIO)
        store.close()
        // Reopening recovers; the acknowledged batch is there.
        let reopened = try open(dir)
        #expect(reopened.event(id: SyntheticEvents.id(run: "f", batch: 0, index: 4)) != nil)
        try reopened.append(SyntheticEvents.batch(run: "f", batch: 4, events: 5))
    }

    @Test func noSpaceWhenRollingIsRefusedThenRecovers() throws {
        let dir = TempDir()
        let faults = FaultInjector()
        let store = try open(dir, capacity: 64 << 10, faults: faults)
        var acked: [String] = []
        var refused = 0
        faults.fail(.preallocate, errno: ENOSPC, after: 0, times: 3)
        for b in 0..<12 {
            if let e = caughtStoreError({ try store.append(SyntheticEvents.batch(run: "n", batch: b, events: 25)) }) {
                #expect(e.code == .noSpace)
                #expect(e.message.contains("no space"))
                refused += 1
            } else {
                acked += (0..<25).map { SyntheticEvents.id(run: "n", batch: b, index: $0) }
            }
        }
        #expect(refused == 3)
        #expect(store.stats.segments >= 2)
        // No stray temporary file is left behind.
        let tmp = try FileManager.default.contentsOfDirectory(atPath: dir.path).filter { $0.hasSuffix(".tmp") }
        #expect(tmp.isEmpty)
        store.close()
        let reopened = try open(dir, capacity: 64 << 10)
        let (ids, problems) = allSyntheticIds(reopened)
        #expect(problems.isEmpty)
        #expect(ids == acked)
    }

    @Test func failedWriteIsNotAcknowledgedAndLeavesNoPartialFrame() throws {
        let dir = TempDir()
        let faults = FaultInjector()
        let store = try open(dir, faults: faults)
        try store.append(SyntheticEvents.batch(run: "w", batch: 0, events: 5))
        faults.fail(.write, errno: EIO)
        expectStoreError(.io) { try store.append(SyntheticEvents.batch(run: "w", batch: 1, events: 5)) }
        try store.append(SyntheticEvents.batch(run: "w", batch: 2, events: 5))
        store.close()
        let reopened = try open(dir)
        #expect(reopened.recovery.truncated.isEmpty && reopened.recovery.skipped.isEmpty)
        let ids = allSyntheticIds(reopened).ids
        #expect(ids.count == 10)
        #expect(!ids.contains(SyntheticEvents.id(run: "w", batch: 1, index: 0)))
    }

    @Test func shortWritesAreCompleted() throws {
        let dir = TempDir()
        let faults = FaultInjector()
        faults.shortWrites = true
        let store = try open(dir, capacity: 64 << 10, faults: faults)
        for b in 0..<10 { try store.append(SyntheticEvents.batch(run: "s", batch: b, events: 20)) }
        store.close()
        let reopened = try open(dir, capacity: 64 << 10)
        let (ids, problems) = allSyntheticIds(reopened)
        #expect(problems.isEmpty)
        #expect(ids.count == 200)
    }

    @Test func openFailureIsATypedErrorWithThePath() throws {
        let faults = FaultInjector()
        faults.fail(.open, errno: EACCES, times: 10)
        var options = StoreOptions()
        options.faults = faults
        let e = try #require(caughtStoreError { _ = try EventStore.open(at: "/tmp/sgev-never-\(getpid())", options: options) })
        #expect(e.code == .io)
        #expect(e.errno == EACCES)
        #expect(e.path?.hasPrefix("/tmp/sgev-never-") == true)
        #expect(e.description.contains("Permission denied"))
    }

    @Test func sideFileReadsTellAMissingFileFromAnUnreadableOne() throws {
        let dir = TempDir()
        let faults = FaultInjector()
        let store = try open(dir, faults: faults)
        let side = try store.sideDirectory("side")
        #expect(try store.readSideFile(side, "none") == nil)
        try store.writeSideFile(side, "f", [1, 2, 3])
        #expect(try store.readSideFile(side, "f") == [1, 2, 3])
        // An I/O error is an error, not "no file" (the caller must not take the file for damaged and delete it).
        faults.fail(.open, errno: EIO)
        let e = caughtStoreError { _ = try store.readSideFile(side, "f") }
        #expect(e?.code == .io && e?.errno == EIO, "\(String(describing: e))")
        // Larger than the caller accepts: refused before anything is read.
        expectStoreError(.invalidArgument) { _ = try store.readSideFile(side, "f", maxBytes: 2) }
        #expect(try store.readSideFile(side, "f", maxBytes: 3) == [1, 2, 3])
    }
}
