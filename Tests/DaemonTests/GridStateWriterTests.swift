@testable import EventDaemon
import EventQuery
import EventStore
import GridEvents
import GridFixtures
import Logging
import Foundation
import Testing

/// The daemon's writer hands the grid state exactly the events the store keeps: a batch resent while its first
/// copy still waits in the writer's queue (a producer reconnecting), and an event repeated inside one group, are
/// stored once and folded once, even where a second fold of the older copy would flip a tie.
@Suite("grid-eventd: the writer folds what it stores, once")
struct GridStateWriterTests {
    /// Grid events with coarse timestamps (ten per second of a few seconds), so many share one and ties decide.
    static func events(_ count: Int, seed: UInt64, tag: String) -> [GridEvent] {
        var grid = SampleGrid(seed: seed, agents: 6, nodes: 30, start: 1_795_392_000_000_000, span: 4_000_000)
        return (0..<count).map { i in
            var e = grid.event(index: i, count: count, producerTag: tag)
            e.timestamp = e.timestamp / 500_000 * 500_000
            return e
        }
    }

    @Test func resendsRacingTheWriterAreFoldedOnce() throws {
        let dir = TempDir("gridwriter")
        let store = try EventStore.open(at: dir.path, options: StoreOptions(durability: .none))
        defer { store.close() }
        var options = GridStateKeeper.Options(interval: 150)
        options.writeInBackground = false
        let keeper = try GridStateKeeper.open(store, options: options)
        var logger = Logger(label: "test")
        logger.logLevel = .warning
        let writer = BatchWriter(store: store, logger: logger, gridState: keeper)
        let first = Self.events(400, seed: 3, tag: "aaaaaaaaaaaa")
        let second = Self.events(400, seed: 4, tag: "bbbbbbbbbbbb")
        func job(_ events: [GridEvent]) -> BatchWriter.Job {
            BatchWriter.Job(producer: "p", firstSequence: 1, events: events, receivedAt: monotonicNanos(), completion: { _ in })
        }
        let a = job(first)
        let resendOfA = job(Array(first.reversed().prefix(250)))  // the same events again, some other order
        let b = job(second + Array(second.prefix(60)))  // repeated inside one batch
        let resendOfB = job(Array(second[100..<300]))
        writer.start()
        writer.submit(a)
        while writer.pending > 0 { usleep(1000) }
        // A's resend now meets A's copies in the store (an earlier group); B and its resend share one group, so
        // the writer's duplicate check (made on its thread before the group is written) passes both.
        writer.submit(resendOfA)
        writer.submit(b)
        writer.submit(resendOfB)
        writer.stop()

        #expect(store.stats.events == 800, "stored once each: \(store.stats.events)")
        #expect(store.stats.duplicatesIgnored > 0, "fixture: the store met duplicates (\(store.stats.duplicatesIgnored))")
        let replay = GridFold.replay(store)
        #expect(keeper.currentFold == replay, "the kept state is the replay of what the store holds")
        #expect(keeper.states().agents == replay.states().agents)
        #expect(keeper.states().nodes == replay.states().nodes)
        // Folding every submitted event as it came (duplicates included) gives another answer on this fixture:
        // the check above is not vacuous.
        var naive = GridFold()
        for e in first + first.reversed().prefix(250) + second + second.prefix(60) + second[100..<300] { naive.apply(e) }
        #expect(naive != replay, "fixture: folding the duplicates would be wrong")
        #expect(!keeper.checkpoints.isEmpty, "checkpoints were written while folding")
    }

    /// The duplicate check runs on the writer thread as the job's group is written, not when the job is made: a
    /// resend made before its first copy was stored (a reconnect racing the ack) is found stored and dropped
    /// before the store sees it, and its completion reports no new event.
    @Test func theWriterChecksDuplicatesWhenItWrites() throws {
        let dir = TempDir("writerdup")
        let store = try EventStore.open(at: dir.path, options: StoreOptions(durability: .none))
        defer { store.close() }
        var logger = Logger(label: "test")
        logger.logLevel = .warning
        let writer = BatchWriter(store: store, logger: logger)
        let events = Self.events(50, seed: 7, tag: "cccccccccccc")
        let results = Results()
        let first = BatchWriter.Job(producer: "p", firstSequence: 1, events: events, receivedAt: monotonicNanos()) { results.add($0) }
        let resend = BatchWriter.Job(producer: "p", firstSequence: 1, events: events, receivedAt: monotonicNanos()) { results.add($0) }
        writer.start()
        writer.submit(first)
        #expect(writer.waitDrained(seconds: 30))
        writer.submit(resend)
        writer.stop()
        #expect(results.all == ["50 through 50", "0 through 50"])
        #expect(store.stats.events == 50)
        #expect(store.stats.duplicatesIgnored == 0, "the resend never reached the store: \(store.stats.duplicatesIgnored)")
    }

    final class Results: @unchecked Sendable {
        private let lock = NSLock()
        private var texts: [String] = []
        func add(_ r: Result<BatchWriter.Done, StoreError>) {
            let text = (try? r.get()).map { "\($0.stored) through \($0.through)" } ?? "failed"
            lock.withLock { texts.append(text) }
        }
        var all: [String] { lock.withLock { texts } }
    }
}
