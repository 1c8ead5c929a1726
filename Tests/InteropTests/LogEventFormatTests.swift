import EventStore
@testable import GridEvents
import Testing

@Suite("The log event type: binary and JSON forms")
struct LogEventFormatTests {
    static let event = GridEvent(
        id: "event-log-0123456789ab-7", timestamp: 1_764_382_200_123_456,
        kind: .log(LogEntry(level: "warning", label: "payments", message: "retrying \"x\" ünïcode", source: "App", file: "a.swift", line: 42,
                            metadata: ["node_id": .string("node-7"), "attempt": .int(3), "ratio": .double(0.5), "ok": .bool(true), "gone": .null],
                            entities: ["node-7", "service-checkout"])))

    @Test func binaryFormsRoundTripAndAgree() throws {
        let bytes = BinaryCodec.encode(Self.event)
        #expect(try BinaryCodec.decode(bytes) == Self.event)
        var fast: [UInt8] = []
        EventEncoder.append(kind: Self.event.kind, timestamp: Self.event.timestamp, id: Self.event.id, producerTag: "x", sequence: 1, to: &fast)
        #expect(fast == bytes, "the emitter's encoder writes the codec's bytes")
        #expect(EventEncoder.sizeBound(kind: Self.event.kind, id: Self.event.id, producerTag: "x") >= bytes.count)
        let noOptional = GridEvent(id: "event-log-0123456789ab-8", timestamp: 1, kind: .log(LogEntry(level: "info", label: "l", message: "")))
        #expect(try BinaryCodec.decode(BinaryCodec.encode(noOptional)) == noOptional)
        let stored = try #require(Self.event.records().first.flatMap { r -> ConceptRecord? in if case .concept(let c) = r { c } else { nil } })
        #expect(stored.entities == ["node-7", "service-checkout"])
        #expect(stored.typeCode == 60)
    }

    @Test func jsonFormsRoundTripThroughBothDecoders() throws {
        let line = Self.event.flatJSON
        let fast = try FlatEventDecoder.decode(Array(line.utf8))
        let slow = try GridEvent.parseJSON(try JSONValue.parse(Array(line.utf8)))
        #expect(fast == slow)
        #expect(fast.kind == Self.event.kind && fast.id == Self.event.id && fast.timestamp == Self.event.timestamp)
        let api = try FlatEventDecoder.decode(Array(Self.event.apiJSON.utf8))
        #expect(api.kind == Self.event.kind)
    }

    @Test func jsonLinesAreCheckedAndGetEntitiesFromTheirIds() throws {
        let d = try FlatEventDecoder.decode(Array(#"{"event_type":"log","level":"error","label":"l","message":"m","agent_id":"agent-1","node_id":"node-2","x":1}"#.utf8))
        #expect(d.kind.entities == ["agent-1", "node-2"])
        func refused(_ line: String) -> String? {
            do {
                _ = try FlatEventDecoder.decode(Array(line.utf8))
                return nil
            } catch {
                let slow = (try? GridEvent.parseJSON(try JSONValue.parse(Array(line.utf8)))) == nil
                #expect(slow, "both decoders refuse \(line)")
                return error.message
            }
        }
        #expect(refused(#"{"event_type":"log","level":"loud","label":"l","message":"m"}"#)?.contains("not one of") == true)
        #expect(refused(#"{"event_type":"log","label":"l","message":"m"}"#)?.contains("level") == true)
        #expect(refused(#"{"event_type":"log","level":"info","label":"l","message":"m","Bad-Name":1}"#) != nil)
        #expect(refused(#"{"event_type":"log","level":"info","label":"l","message":"m","line":"x"}"#) != nil)
        #expect(refused(#"{"event_type":"log","level":"info","label":"l","message":"m","entities":["bad id"]}"#) != nil)
        #expect(refused(#"{"event_type":"log","level":"info","label":"l","message":"m","entities":[]}"#) == nil)
    }

    @Test func fieldNamesFromKeys() {
        #expect(LogEntry.fieldName(for: "service.name") == "service_name")
        #expect(LogEntry.fieldName(for: "Request-ID") == "request_id")
        #expect(LogEntry.fieldName(for: "..x..") == "x")
        #expect(LogEntry.fieldName(for: "level") == "m_level")
        #expect(LogEntry.fieldName(for: "id") == "m_id")
        #expect(LogEntry.fieldName(for: "7up") == "m_7up")
        #expect(LogEntry.fieldName(for: "") == "m")
        #expect(LogEntry.fieldName(for: String(repeating: "a", count: 100)).count == 64)
        #expect(LogEntry.truncated(String(repeating: "€", count: 2000)).utf8.count == 4095)
        #expect(LogEntry.fieldName(for: "node_id") == "node_id")
        #expect(LogEntry.fieldName(for: "a__b") == "a_b")
        #expect(LogEntry.fieldName(for: "a_") == "a")
        #expect(LogEntry.fieldName(for: "fields") == "m_fields")
        #expect(LogEntry.fieldName(for: "timestamp") == "m_timestamp")
    }

    /// The shortcut for keys that are already field names gives what the general rule gives, on random keys.
    @Test func plainKeysTakeTheShortcutWithTheSameResult() {
        var rng = SystemRandomNumberGenerator()
        let alphabet = Array("abcz09_-.AZ é".unicodeScalars)
        var plain = 0
        for _ in 0..<20_000 {
            let n = Int.random(in: 0...70, using: &rng)
            let key = String(String.UnicodeScalarView((0..<n).map { _ in alphabet.randomElement(using: &rng)! }))
            let name = LogEntry.fieldName(for: key)
            if LogEntry.isPlainFieldName(key) {
                plain += 1
                #expect(name == key)
            }
            #expect(name == LogEntry.generalFieldName(for: key), "\(key)")
            #expect((try? GridEvent.validateCustomName(name, what: "field name")) != nil, "\(name) from \(key)")
        }
        for key in ["level", "id", "fields", "entities", "event_type", "node_id", "a1_b2"] {
            #expect(LogEntry.fieldName(for: key) == LogEntry.generalFieldName(for: key))
        }
        #expect(plain > 0)
    }
}
