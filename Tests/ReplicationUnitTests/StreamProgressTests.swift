import EventReplication
import GridEvents
import Foundation
import Testing

/// What the aggregator processed of the stream (`StreamProgress`), and when a missing sequence has been missing too
/// long: the signal on which it makes its consumer again.
@Suite struct StreamProgressTests {
    let t0 = Date(timeIntervalSince1970: 1_000_000)

    @Test func inOrderSequencesMoveTheFloorAndLeaveNoHole() {
        var p = StreamProgress()
        for s in 1...100 { p.processed(UInt64(s), now: t0) }
        #expect(p.floor == 100)
        #expect(p.outOfOrder == 0)
        #expect(p.holeSince == nil)
        #expect(!p.holeOpen(longerThan: 0, now: t0 + 1000))
        // A redelivery of what is below the floor changes nothing.
        p.processed(7, now: t0 + 5)
        #expect(p.floor == 100 && p.holeSince == nil)
    }

    @Test func aHoleOpensWhenALaterSequenceComesAndClosesWhenTheMissingOneDoes() {
        var p = StreamProgress(floor: 10)
        p.processed(12, now: t0)
        p.processed(13, now: t0 + 1)
        #expect(p.floor == 10)
        #expect(p.outOfOrder == 2)
        #expect(p.holeSince == t0)
        #expect(!p.holeOpen(longerThan: 12, now: t0 + 12))
        #expect(p.holeOpen(longerThan: 12, now: t0 + 12.5))
        // The missing one comes (a redelivery after the ack wait): the floor jumps over what was held above it.
        p.processed(11, now: t0 + 6)
        #expect(p.floor == 13)
        #expect(p.outOfOrder == 0)
        #expect(!p.holeOpen(longerThan: 0, now: t0 + 100))
    }

    @Test func aSecondHoleStartsItsOwnClock() {
        var p = StreamProgress()
        p.processed(2, now: t0)
        p.processed(5, now: t0 + 1)
        p.processed(1, now: t0 + 10)  // fills the first hole; 3 is now missing, since t0 + 10
        #expect(p.floor == 2)
        #expect(p.holeSince == t0 + 10)
        #expect(!p.holeOpen(longerThan: 12, now: t0 + 20))
        #expect(p.holeOpen(longerThan: 12, now: t0 + 23))
    }

    @Test func aHeldBackMessageIsNotAHoleButAnUndeliveredOneIs() {
        // 21 and 22 delivered and held back (their host waits for an earlier frame): 21 is there, no hole.
        var held = StreamProgress(floor: 20)
        held.delivered(22, now: t0)
        held.delivered(21, now: t0 + 0.1)
        #expect(held.holeSince == nil)
        #expect(!held.holeOpen(longerThan: 0, now: t0 + 100))
        // The consumer skipped 21-25: later ones are delivered (and held back), 21 never is.
        var skipped = StreamProgress(floor: 20)
        for (i, s) in (26...30).enumerated() { skipped.delivered(UInt64(s), now: t0 + Double(i)) }
        #expect(skipped.holeSince == t0)
        #expect(!skipped.holeOpen(longerThan: 12, now: t0 + 11))
        #expect(skipped.holeOpen(longerThan: 12, now: t0 + 13))
        #expect(skipped.floor == 20)
    }

    @Test func whatLeftTheStreamIsNotWaitedFor() {
        var p = StreamProgress(floor: 3)
        p.processed(9, now: t0)
        p.processed(11, now: t0)
        // Sequences 4-8 left the stream by its limits: it now starts at 9.
        p.streamStarts(at: 9, now: t0 + 1)
        #expect(p.floor == 9)
        #expect(p.outOfOrder == 1)  // 11; 10 is still missing, since the stream moved
        #expect(p.holeSince == t0 + 1)
        p.streamStarts(at: 12, now: t0 + 2)
        #expect(p.floor == 11 && p.outOfOrder == 0 && p.holeSince == nil)
        // A stream starting below the floor changes nothing.
        p.streamStarts(at: 1, now: t0 + 3)
        #expect(p.floor == 11)
    }

    @Test func restartForgetsWhatWasSeenAboveTheNewFloor() {
        var p = StreamProgress(floor: 5)
        p.processed(8, now: t0)
        p.restart(floor: 5)
        #expect(p.floor == 5 && p.outOfOrder == 0 && p.holeSince == nil)
        // Read again from 6: everything comes in order.
        for s in 6...8 { p.processed(UInt64(s), now: t0 + 1) }
        #expect(p.floor == 8 && p.holeSince == nil)
    }

    /// A consumer that loses what a killed run received (the nats-server 2.9 failure): with the hole rule, reading
    /// again from the floor brings back every sequence; without it, they stay missing.
    @Test func readingAgainFromTheFloorRecoversWhatTheConsumerLost() {
        let stream = Array(UInt64(1)...200)
        let lost = Set(UInt64(50)...80)  // delivered to a killed run, never redelivered
        var p = StreamProgress()
        var now = t0
        var remade = 0
        var seen = Set<UInt64>()
        var cursor = 0
        var consumer = stream.filter { !lost.contains($0) }
        while cursor < consumer.count || p.floor < 200 {
            now += 0.1
            if cursor < consumer.count {
                let s = consumer[cursor]
                cursor += 1
                seen.insert(s)
                p.processed(s, now: now)
            }
            if p.holeOpen(longerThan: 12, now: now) {
                // Made again from the first sequence not processed: the new consumer delivers the rest in order.
                remade += 1
                let start = p.floor + 1
                p.restart(floor: start - 1)
                consumer = stream.filter { $0 >= start }
                cursor = 0
            }
            if now > t0 + 600 { break }
        }
        #expect(remade == 1)
        #expect(p.floor == 200)
        #expect(seen == Set(stream))
    }
}

/// The aggregator's counters as `/api/stats` writes them (the HTTP answers' one encoder): hosts in key order, every
/// run the same bytes, and read back by a plain decoder.
@Suite struct AggregatorStatsEncodingTests {
    @Test func hostsAreWrittenInKeyOrderAndReadBack() throws {
        var s = AggregatorStats()
        s.stream = "GRID_EVENTS"
        for h in ["h3", "h10", "a", "h1", "zz", "h2"] {
            var stats = HostReplicationStats()
            stats.lastSequence = UInt64(h.count)
            s.hosts[h] = stats
        }
        s.consumerState = ConsumerState(
            exists: true, deliveredStreamSequence: 9, ackFloorStreamSequence: 7, numPending: 0, numAckPending: 2,
            numRedelivered: 0, streamFirstSequence: 1, streamLastSequence: 9, processedFloor: 7, idleSeconds: 2.5, at: 1)
        let text = try JSONStreamEncoder().encode(s)
        let positions = ["a", "h1", "h10", "h2", "h3", "zz"].map { try! #require(text.range(of: "\"\($0)\":{")).lowerBound }
        #expect(positions == positions.sorted(), "hosts in key order: \(text)")
        #expect(try JSONStreamEncoder().encode(s) == text)
        let back = try JSONDecoder().decode(AggregatorStats.self, from: Data(text.utf8))
        #expect(back.hosts == s.hosts)
        #expect(back.consumerState == s.consumerState)
    }
}
