import EmitterSpool
@testable import EventEmitter
import Foundation
import Testing

/// The emitter's queue policy and its threads' lifetime, with no daemon: the socket path names nothing, so the
/// worker never connects (it spills what is queued to the spool and backs off).
@Suite(.timeLimit(.minutes(1)))
struct EmitterCoreTests {
    /// A fresh directory under the system's temporary directory, removed by `remove()`.
    struct Scratch {
        let path: String
        init(_ name: String) {
            path = NSTemporaryDirectory() + "emitter-core-\(name)-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
            try? FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        }
        func remove() { try? FileManager.default.removeItem(atPath: path) }
    }

    func options(_ name: String, capacity: Int, spool: String?) -> EmitterOptions {
        var o = EmitterOptions(producerName: name)
        o.queueCapacity = capacity
        o.spoolDirectory = spool
        o.notice = { _ in }
        return o
    }

    func heartbeat(_ i: Int) -> GridEventKind { .agentHeartbeat(agentId: "agent-\(i)", storageNodeCount: 1) }

    func eventually(_ seconds: Double, _ condition: () -> Bool) -> Bool {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            if condition() { return true }
            usleep(5_000)
        }
        return condition()
    }

    /// Queued sequence numbers, oldest first (a copy of the queue taken under the core's lock).
    func queued(_ emitter: EventEmitter) -> [UInt64] {
        let core = emitter.core!
        var copy = core.lock.withLock { core.queue }
        return copy.removeFirst(max: copy.count).map(\.sequence)
    }

    @Test func aFullQueueWithoutASpoolDropsTheOldest() {
        let dir = Scratch("drop")
        defer { dir.remove() }
        let emitter = EventEmitter(storage: dir.path + "/absent.sock", options: options("drop", capacity: 10, spool: nil))
        for i in 1...25 { emitter.emit(heartbeat(i)) }
        #expect(emitter.stats.dropped == 15)
        #expect(queued(emitter) == Array(16...25))
        #expect(!emitter.flush(timeout: 0))
        emitter.close(timeout: 0)
    }

    @Test func aFullQueueWithASpoolMovesTheOldestThereAndDropsNothing() {
        let dir = Scratch("spill")
        defer { dir.remove() }
        let emitter = EventEmitter(storage: dir.path + "/absent.sock", options: options("spill", capacity: 10, spool: dir.path + "/spool"))
        for i in 1...500 { emitter.emit(heartbeat(i)) }
        #expect(emitter.stats.dropped == 0)
        #expect(eventually(10) { emitter.stats.spooled == 500 }, "\(emitter.stats)")
        emitter.close(timeout: 0)
        // Everything is in the spool, in order.
        let spool = Spool(directory: dir.path + "/spool", name: "spill", limit: Int.max, notice: { _ in })
        let records = spool?.read(maxEvents: 1000, maxBytes: 1 << 26).records ?? []
        #expect(records.map(\.sequence) == (1...500).map(UInt64.init))
    }

    @Test func waitingForRoomGivesUpAfterItsTime() {
        let dir = Scratch("wait")
        defer { dir.remove() }
        var o = options("wait", capacity: 5, spool: nil)
        o.whenFull = .wait(seconds: 0.05)
        let emitter = EventEmitter(storage: dir.path + "/absent.sock", options: o)
        let sequences = (1...6).map { emitter.emit(heartbeat($0)) }
        #expect(sequences == [1, 2, 3, 4, 5, 0])
        #expect(emitter.stats.timedOut == 1 && emitter.stats.dropped == 0)
        #expect(queued(emitter) == [1, 2, 3, 4, 5])
        emitter.close(timeout: 0)
    }

    /// Dropped without `close()`, the emitter is freed at once (its `deinit` closes it without waiting), and so is
    /// its core: the core is only freed once both of its threads (worker and spool writer) have returned and
    /// released it. A thread that held the
    /// emitter, or that did not end, keeps one of the two alive and fails this.
    @Test func anEmitterDroppedWithoutCloseIsFreedAndItsThreadsEnd() {
        let dir = Scratch("free")
        defer { dir.remove() }
        weak var weakEmitter: EventEmitter?
        weak var weakCore: EmitterCore?
        do {
            let emitter = EventEmitter(storage: dir.path + "/absent.sock", options: options("freed", capacity: 100, spool: dir.path + "/spool"))
            weakEmitter = emitter
            weakCore = emitter.core
            for i in 1...3 { emitter.emit(heartbeat(i)) }
            // Both threads at work: the worker failed to connect and the writer spooled the queue.
            #expect(eventually(10) { emitter.stats.spooled == 3 })
        }
        #expect(weakEmitter == nil, "the worker thread keeps an emitter nobody holds")
        #expect(eventually(5) { weakCore == nil }, "the emitter's threads did not end")
        // It released the spool's lock and kept its events there: a reader of the same name gets the same file.
        let spool = Spool(directory: dir.path + "/spool", name: "freed", limit: Int.max, notice: { _ in })
        #expect(spool?.path == dir.path + "/spool/freed.spool")
        #expect(spool?.read(maxEvents: 10, maxBytes: 1 << 20).records.count == 3)
    }
}
