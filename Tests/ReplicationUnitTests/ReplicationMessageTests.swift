import EventRecords
import EventReplication
import EventStore
import Foundation
import GridEvents
import GridFixtures
import Testing

/// The replication message format, the cursor file and the aggregator's records, without NATS.
@Suite struct ReplicationMessageTests {
    /// A frame as the store hands it out: `n` sample events appended to a real store, read back.
    func sampleFrame(_ n: Int = 20) -> (CommittedFrame, [GridEvent]) {
        let dir = NSTemporaryDirectory() + "sgev-msg-\(UInt32.random(in: 0...UInt32.max))"
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var grid = SampleGrid(seed: 7)
        let events = (0..<n).map { grid.event(index: $0, count: n) }
        let store = try! EventStore.open(at: dir, options: StoreOptions(durability: .none))
        defer { store.close() }
        try! store.append(events.flatMap { $0.records() })
        return (try! store.committedFrames(after: 0)[0], events)
    }

    @Test func roundTripAndEventsDecode() throws {
        let (frame, originals) = sampleFrame()
        let msgs = ReplicationMessage.messages(hostId: "h1", frame: frame, previous: 0, maxBytes: 1 << 20)
        #expect(msgs.count == 1)
        #expect(msgs[0].messageId == "h1-\(frame.sequence)")
        let decoded = try ReplicationMessage.decode(msgs[0].encoded())
        #expect(decoded == msgs[0])
        // The stored form re-encoded without decoding is exactly the producer's binary form.
        #expect(decoded.events == originals.map { BinaryCodec.encode($0) })
        #expect(try decoded.events.map { try BinaryCodec.decode($0) } == originals)
    }

    @Test func everyFlippedByteAndEveryCutIsDetected() throws {
        let bytes = ReplicationMessage.messages(hostId: "h1", frame: sampleFrame(5).0, previous: 0, maxBytes: 1 << 20)[0].encoded()
        for i in 0..<bytes.count {
            var bad = bytes
            bad[i] ^= 0x5A
            #expect(throws: ReplicationMessageError.self, "byte \(i) flipped") { try ReplicationMessage.decode(bad) }
        }
        for cut in 0..<bytes.count {
            #expect(throws: ReplicationMessageError.self, "cut at \(cut)") { try ReplicationMessage.decode(Array(bytes[..<cut])) }
        }
    }

    @Test func largeFramesAreSplitInParts() throws {
        let frame = sampleFrame(200).0
        let msgs = ReplicationMessage.messages(hostId: "h2", frame: frame, previous: 1, maxBytes: 4096)
        #expect(msgs.count > 1)
        #expect(msgs.allSatisfy { $0.encoded().count <= 4096 })
        #expect(msgs.map(\.part) == Array(0..<msgs.count))
        #expect(Set(msgs.map(\.messageId)).count == msgs.count, "each part has its own Nats-Msg-Id")
        #expect(msgs.flatMap(\.events).count == 200)
    }

    @Test func consecutiveFramesArePackedInOrder() throws {
        let dir = NSTemporaryDirectory() + "sgev-pack-\(UInt32.random(in: 0...UInt32.max))"
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var grid = SampleGrid(seed: 9)
        let store = try EventStore.open(at: dir, options: StoreOptions(durability: .none))
        defer { store.close() }
        var all: [GridEvent] = []
        for _ in 0..<30 {
            let events = (0..<10).map { grid.event(index: $0, count: 10) }
            all += events
            try store.append(events.flatMap { $0.records() })
        }
        let frames = try store.committedFrames(after: 0, maxBytes: 1 << 30, maxFrames: 1000)
        #expect(frames.count == 30)
        let units = ReplicationMessage.pack(hostId: "h", frames: frames, previous: 0, maxBytes: 8192)
        #expect(units.count > 1 && units.count < 30, "several frames per message, more than one message")
        var previous: UInt64 = 0
        var events: [[UInt8]] = []
        for u in units {
            #expect(u.messages.count == 1)
            let m = try ReplicationMessage.decode(u.messages[0].encoded())
            #expect(m.encoded().count <= 8192)
            #expect(m.previous == previous, "each message names the last frame of the one before")
            #expect(m.sequence == u.last && m.firstSequence > previous)
            previous = m.sequence
            events += m.events
        }
        #expect(previous == frames.last!.sequence)
        #expect(events == all.map { BinaryCodec.encode($0) }, "every event once, in order")
        // Grouped differently (after a rewind), the same frames get other ids: none is taken for a duplicate.
        let single = ReplicationMessage.pack(hostId: "h", frames: Array(frames.prefix(3)), previous: 0, maxBytes: 1 << 20)
        let oneByOne = frames.prefix(3).map { ReplicationMessage.pack(hostId: "h", frames: [$0], previous: 0, maxBytes: 1 << 20)[0] }
        #expect(Set(single.flatMap { $0.messages.map(\.messageId) }).isDisjoint(with: oneByOne.flatMap { $0.messages.map(\.messageId) }))
    }

    @Test func cursorFileIsAtomicAndChecked() throws {
        let dir = NSTemporaryDirectory() + "sgev-cursor-\(UInt32.random(in: 0...UInt32.max))"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let f = CursorFile(directory: dir)
        #expect(try f.read(stream: "S") == nil)
        try f.write(stream: "S", sequence: 12345)
        #expect(try f.read(stream: "S") == 12345)
        #expect(!FileManager.default.fileExists(atPath: f.path + ".tmp"))
        #expect(throws: CursorError.self) { try f.read(stream: "OTHER") }
        var text = try String(contentsOfFile: f.path, encoding: .utf8)
        text = text.replacingOccurrences(of: "12345", with: "99999")
        try text.write(toFile: f.path, atomically: false, encoding: .utf8)
        #expect(throws: CursorError.self, "a changed sequence fails the checksum") { try f.read(stream: "S") }
    }

    @Test func aggregatedEventsGainTheHostEntity() throws {
        var grid = SampleGrid(seed: 3)
        let e = grid.event(index: 0, count: 1)
        let records = Aggregator.tagged(e, hostEntity: "host-h1").records()
        guard case .concept(let c) = records[0] else { Issue.record("no concept record first"); return }
        #expect(c.entities.last == "host-h1")
        #expect(c.id == e.id, "the id is kept, so the store dedups redeliveries")
        #expect(records.contains(.adjacency(AdjacencyEntry(source: Hash.id("host-h1"), target: c.idHash, edgeType: e.type.rawValue, timestamp: e.timestamp))))
        #expect(records.count == e.records().count + 1)
    }
}
