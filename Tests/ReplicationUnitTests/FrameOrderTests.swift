import EventReplication
import EventStore
import Foundation
import Testing

/// The aggregator's per-host order (`FrameOrder`) and its saved positions (`PositionsFile`), without NATS: a
/// consumer that delivers, redelivers what was held back, and returns what a killed aggregator never acknowledged
/// only after the ack wait.
@Suite struct FrameOrderTests {
    func frame(_ host: String, _ seq: UInt64, part: Int = 0, parts: Int = 1) -> ReplicationMessage {
        ReplicationMessage(hostId: host, sequence: seq, previous: seq - 1, part: part, parts: parts, events: [])
    }

    func withStore(_ body: (EventStore) throws -> Void) throws {
        let dir = NSTemporaryDirectory() + "sgev-order-\(UInt32.random(in: 0...UInt32.max))"
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let store = try EventStore.open(at: dir, options: StoreOptions(durability: .none))
        defer { store.close() }
        try body(store)
    }

    /// Delivers `queue` to `order` as a pull consumer would: a held message goes to the back of the queue (nak),
    /// `arriving` joins the queue once `now` passes its time (the ack wait of an earlier run). Returns what was
    /// stored, in order, per host (parts as sequence * 100 + part).
    func drive(_ order: inout FrameOrder, _ queue: [ReplicationMessage], arriving: (at: Date, messages: [ReplicationMessage])? = nil,
               start: Date, step: TimeInterval = 0.1, limit: Int = 10_000) -> (stored: [String: [UInt64]], admissions: [FrameOrder.Admission]) {
        var queue = queue
        var late = arriving
        var now = start
        var stored: [String: [UInt64]] = [:]
        var admissions: [FrameOrder.Admission] = []
        var rounds = 0
        while !queue.isEmpty || late != nil, rounds < limit {
            rounds += 1
            if let l = late, now >= l.at {
                queue += l.messages
                late = nil
            }
            guard !queue.isEmpty else {
                now += step
                continue
            }
            let m = queue.removeFirst()
            let a = order.admit(m, now: now)
            admissions.append(a)
            if a == .hold {
                queue.append(m)
                now += step / 10
            } else {
                stored[m.hostId, default: []].append(m.sequence * 100 + UInt64(m.part))
            }
        }
        return (stored, admissions)
    }

    @Test func restartHoldsLaterFramesUntilUnacknowledgedOnesComeBack() throws {
        try withStore { store in
            let file = PositionsFile(store: store)
            let t0 = Date()
            // Run 1 stores frames 1-10 of two hosts and saves the positions; it receives 11-15 of each and is
            // killed before storing them (so never acks them).
            var first = FrameOrder(patience: 10)
            let run1 = drive(&first, (1...10).flatMap { [frame("a", $0), frame("b", $0)] }, start: t0)
            #expect(run1.stored["a"] == (1...10).map { $0 * 100 })
            try file.write(stream: "S", first.positions)

            // Run 2: the consumer hands out 16-30 at once; 11-15 come back after the ack wait (5 s later).
            let saved = try #require(try file.read(stream: "S"))
            #expect(saved == ["a": .init(applied: 10), "b": .init(applied: 10)])
            var second = FrameOrder(patience: 10, positions: saved, strictNewHosts: true)
            let later = (16...30).flatMap { [frame("a", $0), frame("b", $0)] }
            let outstanding = (11...15).flatMap { [frame("a", $0), frame("b", $0)] }
            let run2 = drive(&second, later, arriving: (t0 + 5, outstanding), start: t0)
            for h in ["a", "b"] {
                #expect(run2.stored[h] == (11...30).map { $0 * 100 }, "host \(h) in order, nothing lost or twice: \(run2.stored[h] ?? [])")
            }
            #expect(!run2.admissions.contains { if case .gapAccepted = $0 { true } else { false } })
            #expect(run2.admissions.contains(.hold))
        }
    }

    /// What happened before positions were saved: the restarted aggregator's first message of a host started its
    /// chain, and the frames a killed run had received were stored after later ones.
    @Test func withoutSavedPositionsTheFirstMessageStartsTheChain() {
        var order = FrameOrder(patience: 10)
        let run = drive(&order, (16...20).map { frame("a", $0) }, arriving: (Date() + 5, (11...15).map { frame("a", $0) }), start: Date())
        #expect(run.stored["a"] == ((16...20).map { $0 * 100 } + (11...15).map { $0 * 100 }))
    }

    @Test func aStrictNewHostStartsAtItsFirstFrameAndWaitsForIt() {
        var order = FrameOrder(patience: 10, strictNewHosts: true)
        let t0 = Date()
        #expect(order.admit(frame("n", 2), now: t0) == .hold)
        #expect(order.admit(frame("n", 1), now: t0 + 1) == .apply)
        #expect(order.admit(frame("n", 2), now: t0 + 1.1) == .apply)
        #expect(order.position("n") == .init(applied: 2))
    }

    @Test func aGapThatNeverFillsIsAcceptedAfterThePatience() {
        var order = FrameOrder(patience: 10, positions: ["a": .init(applied: 10)], strictNewHosts: true)
        let t0 = Date()
        #expect(order.admit(frame("a", 13), now: t0) == .hold)
        #expect(order.admit(frame("a", 13), now: t0 + 9.9) == .hold)
        #expect(order.admit(frame("a", 13), now: t0 + 10.1) == .gapAccepted(from: 10))
        #expect(order.admit(frame("a", 14), now: t0 + 10.2) == .apply)
        // The strict new-host rule gives up the same way: a host whose first frames left the stream.
        #expect(order.admit(frame("late", 500), now: t0) == .hold)
        #expect(order.admit(frame("late", 500), now: t0 + 10.5) == .gapAccepted(from: 0))
    }

    @Test func aFrameInPartsResumesAtItsNextPart() throws {
        try withStore { store in
            let file = PositionsFile(store: store)
            var first = FrameOrder(patience: 10)
            #expect(first.admit(frame("a", 1), now: Date()) == .apply)
            #expect(first.admit(frame("a", 2, part: 0, parts: 3), now: Date()) == .apply)
            try file.write(stream: "S", first.positions)
            let saved = try #require(try file.read(stream: "S"))
            #expect(saved["a"] == .init(applied: 1, partial: .init(sequence: 2, nextPart: 1)))
            var second = FrameOrder(patience: 10, positions: saved, strictNewHosts: true)
            let run = drive(&second, [frame("a", 3), frame("a", 2, part: 2, parts: 3)],
                            arriving: (Date() + 5, [frame("a", 2, part: 1, parts: 3)]), start: Date())
            #expect(run.stored["a"] == [201, 202, 300])
        }
    }

    @Test func positionsFileRefusesDamageAndAnotherStream() throws {
        try withStore { store in
            let file = PositionsFile(store: store)
            #expect(try file.read(stream: "S") == nil)
            try file.write(stream: "S", ["h1": .init(applied: 7), "h-2_x": .init(applied: 0, partial: .init(sequence: 1, nextPart: 4))])
            #expect(try file.read(stream: "S") == ["h1": .init(applied: 7), "h-2_x": .init(applied: 0, partial: .init(sequence: 1, nextPart: 4))])
            #expect(throws: PositionsError.self) { try file.read(stream: "OTHER") }
            var bytes = try #require(FileManager.default.contents(atPath: file.path))
            let text = String(decoding: bytes, as: UTF8.self)
            #expect(text.hasPrefix("sutra-grid-events aggregation positions 1\nstream S\nhost h-2_x 0 1 4\nhost h1 7\nchecksum "))
            bytes[bytes.count / 2] ^= 0x01
            try bytes.write(to: URL(fileURLWithPath: file.path))
            #expect(throws: PositionsError.self) { try file.read(stream: "S") }
            try Data("sutra-grid-events aggregation positions 1\nstream S\nhost h1 7\n".utf8).write(to: URL(fileURLWithPath: file.path))
            #expect(throws: PositionsError.self) { try file.read(stream: "S") }
        }
    }

    @Test func positionsFileKeepsTheProcessedFloor() throws {
        try withStore { store in
            let file = PositionsFile(store: store)
            try file.write(stream: "S", ["h1": .init(applied: 7)], processed: 52017)
            let text = String(decoding: try #require(FileManager.default.contents(atPath: file.path)), as: UTF8.self)
            #expect(text.hasPrefix("sutra-grid-events aggregation positions 1\nstream S\nprocessed 52017\nhost h1 7\nchecksum "))
            let loaded = try #require(try file.load(stream: "S"))
            #expect(loaded.positions == ["h1": .init(applied: 7)] && loaded.processed == 52017)
            // A file written before the floor was kept has none.
            try file.write(stream: "S", ["h1": .init(applied: 7)])
            #expect(try file.load(stream: "S")?.processed == nil)
        }
    }
}
