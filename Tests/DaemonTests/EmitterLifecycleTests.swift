@_spi(Testing) import EmitterSpool
@_spi(Testing) import EventEmitter
import EventStore
import Foundation
import GridEvents
import GridFixtures
import Testing

/// The emitter as a library: honest counts, a spool that checks its fdatasync and resyncs after damage without a
/// system call per byte. (That a dropped emitter is freed and its threads end: Tests/EventEmitterTests.)
@Suite("Emitter lifecycle, counts and spool", .serialized, .timeLimit(.minutes(3)))
struct EmitterLifecycleTests {
    func options(_ name: String, spool: String?, notices: NoticeLog? = nil) -> EmitterOptions {
        var o = EmitterOptions(producerName: name)
        o.spoolDirectory = spool
        o.notice = { m in notices?.add(m) }
        return o
    }

    /// Appends `records` to the spool `name` in `directory` (creating it) and closes it.
    func writeSpool(_ directory: String, _ name: String, _ records: [SpoolRecord]) {
        let spool = Spool(directory: directory, name: name, limit: 1 << 30, notice: { _ in })
        #expect(spool?.append(records) == records.count)
        spool?.closeFile()
    }

    func heartbeat(_ i: Int) -> GridEventKind { .agentHeartbeat(agentId: "agent-\(i % 100)", storageNodeCount: i % 32) }

    /// Waits until `condition` holds, at most `seconds`.
    func eventually(_ seconds: Double, _ condition: () -> Bool) -> Bool {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            if condition() { return true }
            usleep(10_000)
        }
        return condition()
    }

    @Test func aFailedSpoolFdatasyncIsNotCountedAsSpooled() throws {
        let dir = TempDir("fsyncspool")
        let notices = NoticeLog()
        var o = options("syncfail", spool: dir.file("spool"), notices: notices)
        let faults = SpoolFaults()
        faults.failFdatasync(EIO)
        o.spoolFaults = faults
        let daemon = DaemonProcess(dataDir: dir.file("data"), socket: dir.file("s.sock"))
        let emitter = EventEmitter(storage: daemon.socket, options: o)
        for i in 0..<10 { emitter.emit(heartbeat(i)) }
        // The daemon is not there: the emitter tries to spool, and the spool's fdatasync fails.
        #expect(eventually(5) { faults.fdatasyncs > 0 })
        usleep(200_000)
        #expect(emitter.stats.spooled == 0, "events were counted as spooled although their fdatasync failed")
        #expect(notices.all.contains { $0.contains("fdatasync") }, "\(notices.all)")
        // Nothing is lost: once the daemon is there, every event arrives.
        try daemon.start()
        #expect(emitter.flush(timeout: 20))
        #expect(emitter.stats.acked == 10)
        emitter.close()
        daemon.stop()
        try withStore(daemon.dataDir) { store in #expect(store.stats.events == 10) }
    }

    @Test func resyncAfterDamageReadsInLargeChunks() throws {
        let dir = TempDir("resync")
        let events = SampleGrid(seed: 5).eventsArray(200)
        writeSpool(dir.path, "r", events.prefix(100).enumerated().map { SpoolRecord(producer: "p-1", sequence: UInt64($0 + 1), event: $1) })
        // 100 KiB of damage between the two halves.
        var rng = SystemRandomNumberGenerator()
        let garbage = (0..<(100 << 10)).map { _ in UInt8.random(in: 0...255, using: &rng) }
        let handle = try #require(FileHandle(forWritingAtPath: dir.file("r.spool")))
        handle.seekToEndOfFile()
        handle.write(Data(garbage))
        try handle.close()
        writeSpool(dir.path, "r", events.suffix(100).enumerated().map { SpoolRecord(producer: "p-1", sequence: UInt64($0 + 101), event: $1) })
        let faults = SpoolFaults()
        let spool = try #require(Spool(directory: dir.path, name: "r", limit: Int.max, faults: faults, notice: { _ in }))
        let records = spool.read(maxEvents: 100_000, maxBytes: 1 << 26).records
        #expect(records.count == 200)
        #expect(records.map(\.sequence) == Array(1...200))
        #expect(spool.corruptions.count == 1)
        #expect(spool.corruptions.first?.bytes == UInt64(100 << 10))
        #expect(faults.preads < 100, "\(faults.preads) preads to read a 130 KiB spool")
    }

    @Test func acknowledgedCountsOnlyThisEmittersOwnEvents() throws {
        let dir = TempDir("owncount")
        let daemon = DaemonProcess(dataDir: dir.file("data"), socket: dir.file("s.sock"))
        // A first run spools 300 events (no daemon) and stops.
        let first = EventEmitter(storage: daemon.socket, options: options("counted", spool: dir.file("spool")))
        for i in 0..<300 { first.emit(heartbeat(i)) }
        first.close(timeout: 0.5)
        try daemon.start()
        // The next run replays them, and emits its own 1,000.
        let second = EventEmitter(storage: daemon.socket, options: options("counted", spool: dir.file("spool")))
        for i in 0..<1000 { second.emit(heartbeat(i)) }
        #expect(second.flush(timeout: 30))
        #expect(second.stats.acked == 1000, "acked counts the replayed events of the run before")
        second.close()
        daemon.stop()
        try withStore(daemon.dataDir) { store in #expect(store.stats.events == 1300) }
    }

    @Test func flushSaysFalseAfterDropsAndTheDropReportIsNotCounted() throws {
        let dir = TempDir("dropcount")
        let daemon = DaemonProcess(dataDir: dir.file("data"), socket: dir.file("s.sock"))
        var o = options("dropper", spool: nil)
        o.queueCapacity = 100
        let emitter = EventEmitter(storage: daemon.socket, options: o)
        for i in 0..<250 { emitter.emit(heartbeat(i)) }
        #expect(emitter.stats.dropped == 150)
        try daemon.start()
        #expect(!emitter.flush(timeout: 20), "flush said everything was delivered after 150 drops")
        #expect(emitter.stats.acked == 100, "acked counts the events_dropped report")
        emitter.close()
        daemon.stop()
        try withStore(daemon.dataDir) { store in #expect(store.stats.events == 101) }
    }
}

extension SampleGrid {
    /// `count` events of a fresh generator (tests).
    func eventsArray(_ count: Int) -> [GridEvent] {
        var g = self
        return g.events(count)
    }
}
