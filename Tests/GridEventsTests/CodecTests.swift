import Foundation
import Testing
import EventStore
import GridEvents

@Suite("Event catalogue and codecs")
struct CodecTests {
    @Test func jsonTimesAreTheOneTextForm() {
        // JSONWriter.time writes what TimeText.format makes, without the intermediate strings.
        var moments: [Int64] = [0, -1, 1, 999_999, 1_000_000, -1_000_000, -1_000_001, 951_782_400_000_000,
                                 4_102_444_799_999_999, 253_402_300_799_999_999, 253_402_300_800_000_000,
                                 -62_167_219_200_000_000, -62_167_219_200_000_001, Int64.max, -300_000_000_000_000_000]
        var x: UInt64 = 0x9E37_79B9_7F4A_7C15
        for _ in 0..<20_000 {
            x ^= x << 13
            x ^= x >> 7
            x ^= x << 17
            moments.append(Int64(bitPattern: x) % 300_000_000_000_000_000)
        }
        for t in moments {
            var w = JSONWriter()
            w.time(t)
            var want = JSONWriter()
            want.string(TimeText.format(t))
            #expect(w.text == want.text, "\(t)")
        }
    }

    @Test func catalogueCodesAndNamesAreStable() {
        let expected: [(String, UInt16)] = [
            ("agent_registered", 1), ("agent_heartbeat", 2), ("agent_degraded", 3), ("agent_offline", 4),
            ("agent_recovered", 5), ("agent_unregistered", 6), ("spawn_requested", 10), ("spawn_succeeded", 11),
            ("spawn_failed", 12), ("stop_requested", 20), ("stop_succeeded", 21), ("stop_failed", 22),
            ("node_crashed", 30), ("node_restarted", 31), ("cluster_healthy", 40), ("cluster_degraded", 41),
            ("cluster_critical", 42),
        ]
        for (name, code) in expected {
            #expect(EventType(name: name)?.rawValue == code, "\(name)")
            #expect(EventType(rawValue: code)?.name == name)
        }
    }

    @Test(arguments: SampleGrid.oneOfEach())
    func binaryRoundTrip(event: GridEvent) throws {
        let bytes = BinaryCodec.encode(event)
        let back = try BinaryCodec.decode(bytes)
        #expect(back == event)
        // The stored form (concept record payload) round-trips too.
        let fields = BinaryCodec.encodeFields(event.kind)
        #expect(try BinaryCodec.decodeFields(type: event.type, fields[...]) == event.kind)
    }

    @Test(arguments: SampleGrid.oneOfEach())
    func jsonRoundTrip(event: GridEvent) throws {
        let flat = try GridEvent.parseJSON(try JSONValue.parse(Array(event.flatJSON.utf8)))
        #expect(flat.id == event.id)
        #expect(flat.timestamp == event.timestamp)
        #expect(flat.kind == event.kind)
        let api = try GridEvent.parseJSON(try JSONValue.parse(Array(event.apiJSON.utf8)))
        #expect(api.kind == event.kind)
        #expect(api.id == event.id)
    }

    @Test func jsonHasTheDocumentedShape() throws {
        let e = GridEvent(id: "event-spawn_failed-00000000abcd-7", timestamp: 1_764_382_200_123_456,
                          kind: .spawnFailed(nodeId: "node-7", agentId: "agent-001", error: "disk full"))
        #expect(e.flatJSON == #"{"event_type":"spawn_failed","id":"event-spawn_failed-00000000abcd-7","timestamp":"2025-11-29T02:10:00.123456Z","node_id":"node-7","agent_id":"agent-001","error":"disk full"}"#)
        #expect(e.apiJSON == #"{"id":"event-spawn_failed-00000000abcd-7","event_type":"spawn_failed","timestamp":"2025-11-29T02:10:00.123456Z","entities":["node-7","agent-001"],"fields":{"node_id":"node-7","agent_id":"agent-001","error":"disk full"}}"#)
        let crash = GridEvent(id: "event-node_crashed-x-1", timestamp: 0, kind: .nodeCrashed(nodeId: "n", agentId: "a", exitCode: nil, signal: 9))
        #expect(crash.flatJSON.contains(#""exit_code":null,"signal":9"#))
    }

    @Test func htmlInFieldsIsEscapedInJSON() {
        let e = GridEvent(id: "event-spawn_failed-x-1", timestamp: 0, kind: .spawnFailed(nodeId: "n", agentId: "a", error: "<script>alert(1)</script>"))
        #expect(!e.apiJSON.contains("<script>"))
        #expect(e.apiJSON.contains(#"\u003cscript\u003e"#))
    }

    @Test func eachEventMapsToConceptAndAdjacency() throws {
        let e = GridEvent(id: "event-spawn_failed-x-1", timestamp: 1_764_382_200_123_456,
                          kind: .spawnFailed(nodeId: "node-7", agentId: "agent-001", error: "boom"))
        let records = e.records()
        guard case .concept(let c) = records[0] else { Issue.record("first record is not the concept"); return }
        #expect(c.id == e.id)
        #expect(c.typeCode == 12)
        #expect(c.entities == ["node-7", "agent-001"])
        let edges = records.dropFirst().compactMap { r -> AdjacencyEntry? in if case .adjacency(let a) = r { return a } else { return nil } }
        #expect(edges.count == 3)
        #expect(edges[0] == AdjacencyEntry(source: Hash.id("node-7"), target: Hash.id(e.id), edgeType: 12, timestamp: e.timestamp))
        #expect(edges[1].source == Hash.id("agent-001"))
        #expect(edges[2] == AdjacencyEntry(source: Hash.id(e.id), target: Hash.id(GridEvent.timeBucketId(e.timestamp)), edgeType: 999, timestamp: e.timestamp))
        #expect(GridEvent.timeBucketId(e.timestamp) == "time-\(e.timestamp / 60_000_000)")
        let cluster = GridEvent(id: "event-cluster_healthy-x-1", timestamp: 0, kind: .clusterHealthy(totalAgents: 1, healthyAgents: 1, totalNodes: 0, runningNodes: 0))
        #expect(cluster.entities == ["cluster"])
    }

    @Test func storedEventsDecodeBack() throws {
        let dir = NSTemporaryDirectory() + "gridevents-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let store = try EventStore.open(at: dir)
        let events = SampleGrid.oneOfEach()
        try store.append(events.flatMap { $0.records() })
        for e in events {
            let stored = try #require(store.event(id: e.id))
            #expect(try GridEvent(stored: stored) == e)
        }
        #expect(store.timeline(entity: "node-7", limit: 100).count == 7)
    }

    @Test func badJSONGetsClearErrors() throws {
        func error(_ text: String) -> String {
            do {
                _ = try GridEvent.parseJSON(try JSONValue.parse(Array(text.utf8)))
                return "no error"
            } catch {
                return error.message
            }
        }
        #expect(error(#"{"node_id": "n"}"#).contains("event_type"))
        #expect(error(#"{"event_type": "spawn_failed", "node_id": "n", "agent_id": "a"}"#).contains("needs field \"error\""))
        #expect(error(#"{"event_type": "spawn_succeeded", "node_id": "n", "agent_id": "a", "pid": "x", "port": 1}"#).contains("must be int"))
        #expect(error(#"{"event_type": "spawn_failed", "node_id": "n", "agent_id": "a", "error": "e", "bogus": 1}"#).contains("no field \"bogus\""))
        #expect(error(#"{"event_type": "stop_requested", "node_id": "n", "agent_id": "a", "timestamp": "yesterday"}"#).contains("RFC 3339"))
        #expect(error(#"{"event_type": "Not A Name"}"#).contains("invalid custom event name"))
        #expect(error(#"{"event_type": "stop_requested", "node_id": "has space", "agent_id": "a"}"#) == "no error")
        #expect(error(#"{"event_type": "x", "entities": [1]}"#).contains("entities"))
        #expect(error("{not json").contains("malformed JSON"))
        #expect(error("[1]").contains("object"))
    }

    @Test func validationCatchesBadIdsAndSizes() {
        let bad = GridEvent(id: "event-stop_requested-x-1", timestamp: 0, kind: .stopRequested(nodeId: "has space", agentId: "a"))
        #expect(throws: EventError.self) { try bad.validate() }
        let wrongPrefix = GridEvent(id: "event-other-x-1", timestamp: 0, kind: .stopRequested(nodeId: "n", agentId: "a"))
        #expect(throws: EventError.self) { try wrongPrefix.validate() }
        let big = GridEvent(id: "event-spawn_failed-x-1", timestamp: 0, kind: .spawnFailed(nodeId: "n", agentId: "a", error: String(repeating: "e", count: 5000)))
        #expect(throws: EventError.self) { try big.validate() }
        let customCatalogue = GridEvent(id: "event-spawn_failed-x-1", timestamp: 0, kind: .custom(name: "spawn_failed", fields: [:], entities: []))
        #expect(throws: EventError.self) { try customCatalogue.validate() }
    }

    @Test func garbageBytesNeverDecodeSilently() {
        var rng = SystemRandomNumberGenerator()
        let good = BinaryCodec.encode(SampleGrid.oneOfEach()[8])
        for _ in 0..<2000 {
            var bytes = good
            let n = Int.random(in: 1...3, using: &rng)
            for _ in 0..<n { bytes[Int.random(in: 0..<bytes.count, using: &rng)] = UInt8.random(in: 0...255, using: &rng) }
            if Bool.random(using: &rng) { bytes.removeLast(Int.random(in: 0..<bytes.count, using: &rng)) }
            // Either a clear error or a valid event; never a trap.
            if let e = try? BinaryCodec.decode(bytes) { #expect((try? e.validate()) != nil) }
        }
    }

    @Test func sampleGridHasEveryTypeInProportion() {
        var grid = SampleGrid()
        let events = grid.events(20_000)
        let counts = Dictionary(grouping: events, by: \.type).mapValues(\.count)
        #expect(counts.keys.count == 17)
        #expect(counts[.agentHeartbeat]! > counts[.spawnFailed]! * 20)
        #expect(Set(events.map(\.id)).count == events.count)
        #expect(events.map(\.timestamp) == events.map(\.timestamp).sorted())
    }
}
