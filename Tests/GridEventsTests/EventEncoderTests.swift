import GridEvents
import GridFixtures
import Testing

/// The emitter's direct encoder writes exactly `BinaryCodec`'s bytes, stays within its size bound, and its
/// validation says what `validate()` says.
@Suite("Event encoder and validation for the emitter")
struct EventEncoderTests {
    static var events: [GridEvent] {
        var grid = SampleGrid(seed: 23)
        var long = SampleGrid.oneOfEach()
        long.append(GridEvent(id: "event-spawn_failed-x-1", timestamp: -5, kind: .spawnFailed(nodeId: "n", agentId: "a", error: String(repeating: "é", count: 300))))
        // Log events (the fixtures make none): fixed fields, entities, metadata in name order.
        long.append(GridEvent(id: "event-log-x-1", timestamp: 7, kind: .log(LogEntry(
            level: "warning", label: "svc", message: "disk é full " + String(repeating: "x", count: 200), source: "svc", file: "a.swift",
            line: 12, metadata: ["b": .int(2), "a": .string("x"), "c": .double(1.5), "d": .bool(true)], entities: ["node-1", "agent-2"]))))
        long.append(GridEvent(id: "event-log-x-2", timestamp: 8, kind: .log(LogEntry(level: "info", label: "l", message: ""))))
        return long + grid.events(3000)
    }

    @Test func bytesAreBinaryCodecsWithGivenAndMadeIds() throws {
        for e in Self.events {
            var out: [UInt8] = [7]
            EventEncoder.append(kind: e.kind, timestamp: e.timestamp, id: e.id, producerTag: "", sequence: 0, to: &out)
            #expect(Array(out.dropFirst()) == BinaryCodec.encode(e))
            #expect(out.count - 1 <= EventEncoder.sizeBound(kind: e.kind, id: e.id, producerTag: ""))
            // Without an id: the one GridEvent.makeId gives.
            for seq: UInt64 in [1, 9, 10, 12345, UInt64.max] {
                var made: [UInt8] = []
                EventEncoder.append(kind: e.kind, timestamp: e.timestamp, id: nil, producerTag: "00000000abcd", sequence: seq, to: &made)
                let id = GridEvent.makeId(typeName: e.typeName, producerTag: "00000000abcd", sequence: seq)
                #expect(made == BinaryCodec.encode(GridEvent(id: id, timestamp: e.timestamp, kind: e.kind)))
                #expect(made.count <= EventEncoder.sizeBound(kind: e.kind, id: nil, producerTag: "00000000abcd"))
            }
        }
    }

    @Test func validationAgreesWithValidate() {
        var cases = Self.events
        cases.append(GridEvent(id: "event-spawn_failed-x-1", timestamp: 0, kind: .spawnFailed(nodeId: "bad id", agentId: "a", error: "e")))
        cases.append(GridEvent(id: "event-spawn_failed-x-1", timestamp: 0, kind: .spawnFailed(nodeId: "n", agentId: "a", error: String(repeating: "x", count: 5000))))
        cases.append(GridEvent(id: "event-stop_failed-x-1", timestamp: 0, kind: .spawnFailed(nodeId: "n", agentId: "a", error: "e")))
        cases.append(GridEvent(id: "event-agent_degraded-x-1", timestamp: 0, kind: .agentDegraded(agentId: "a", secondsSinceHeartbeat: .infinity)))
        cases.append(GridEvent(id: "event-deploy-x-1", timestamp: 0, kind: .custom(name: "deploy", fields: ["Bad": .int(1)], entities: [])))
        cases.append(GridEvent(id: "event-deploy-x-1", timestamp: 0, kind: .custom(name: "deploy", fields: [:], entities: Array(repeating: "e", count: 33))))
        cases.append(GridEvent(id: "event-deploy-x-1", timestamp: 0, kind: .custom(name: "deploy", fields: ["x": .double(.nan)], entities: ["ok"])))
        cases.append(GridEvent(id: "event-node_crashed-x-1", timestamp: 0, kind: .nodeCrashed(nodeId: "", agentId: "a", exitCode: nil, signal: 9)))
        for e in cases {
            let a: String? = { do throws(EventError) { try e.validate(); return nil } catch { return error.message } }()
            let b: String? = { do throws(EventError) { try GridEvent.validate(kind: e.kind, id: e.id); return nil } catch { return error.message } }()
            #expect(a == b, "\(e)")
        }
    }
}
