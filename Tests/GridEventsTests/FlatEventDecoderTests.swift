import Foundation
import GridEvents
import GridFixtures
import Testing

/// The byte-level decoder against the Foundation-based one (`JSONValue.parse` + `GridEvent.parseJSON`): both must
/// accept and refuse the same lines, decode to the same draft, and give the same message for every refusal after
/// the JSON syntax. One deliberate difference: a trailing comma, which Foundation accepts and JSON does not allow.
@Suite("Flat JSON decoder against the Foundation one")
struct FlatEventDecoderTests {
    enum Outcome: Equatable {
        case accepted(GridEvent.Draft)
        case refused(String)
    }

    static func old(_ bytes: [UInt8]) -> Outcome {
        do throws(EventError) {
            return .accepted(try GridEvent.parseJSON(try JSONValue.parse(bytes)))
        } catch {
            return .refused(error.message)
        }
    }

    static func new(_ bytes: [UInt8]) -> Outcome {
        do throws(EventError) {
            return .accepted(try FlatEventDecoder.decode(bytes))
        } catch {
            return .refused(error.message)
        }
    }

    /// The byte decoder's refusals of what only Foundation accepts: a trailing comma, a malformed value of a
    /// repeated key, UTF-16 or UTF-32 text.
    static func deliberate(_ message: String) -> Bool {
        message.contains("a trailing comma") || message.contains("repeated key") || message.contains("only UTF-8 is read")
    }

    /// Nil when the decoders agree, else what differs.
    static func disagreement(_ bytes: [UInt8]) -> String? {
        let (a, b) = (old(bytes), new(bytes))
        switch (a, b) {
        case (.accepted(let x), .accepted(let y)):
            return x == y ? nil : "different drafts: \(x) / \(y)"
        case (.refused(let x), .refused(let y)):
            // Foundation accepts these, and may refuse what follows.
            if Self.deliberate(y) { return nil }
            if x.hasPrefix("malformed JSON") { return y.hasPrefix("malformed JSON") ? nil : "syntax error vs \(y)" }
            return x == y ? nil : "different messages: \(x) / \(y)"
        case (.accepted, .refused(let y)) where Self.deliberate(y):
            return nil
        default:
            return "old \(a), new \(b)"
        }
    }

    static let handPicked: [String] = [
        #"{"event_type":"spawn_failed","node_id":"node-7","agent_id":"agent-001","error":"disk full"}"#,
        "  {\"event_type\" : \"spawn_failed\" ,\"node_id\":\"node-7\",\t\"agent_id\":\"agent-001\",\"error\":\"disk full\"}  ",
        "\r\n{\"event_type\":\"stop_requested\",\n\"node_id\":\"n\",\r\"agent_id\":\"a\"}\r",
        "\u{FEFF}{\"event_type\":\"stop_requested\",\"node_id\":\"n\",\"agent_id\":\"a\"}",
        #"{"event_type":"spawn_failed","node_id":"node-7","agent_id":"agent-001","error":"caf\u00e9 \ud83d\ude00 \u0041\/\b\f\n\r\t\"\\"}"#,
        #"{"event_type":"spawn_failed","node_id":"node-7","agent_id":"agent-001","error":"\ud83d"}"#,
        #"{"event_type":"spawn_failed","node_id":"node-7","agent_id":"agent-001","error":"\ude00x"}"#,
        #"{"event_type":"spawn_failed","node_id":"node-7","agent_id":"agent-001","error":"\ud83d\u0041"}"#,
        #"{"event_type":"spawn_failed","node_id":"node-7","agent_id":"agent-001","error":"a\u0000b"}"#,
        #"{"event_type":"spawn_failed","node_id":"node-7","agent_id":"agent-001","error":"\x"}"#,
        "{\"event_type\":\"spawn_failed\",\"node_id\":\"n\",\"agent_id\":\"a\",\"error\":\"tab\there\"}",
        #"{"event_type":"spawn_failed","node_id":"node-7","agent_id":"agent-001","error":"e","error":"second"}"#,
        #"{"event_type":"spawn_failed","event_type":"stop_failed","node_id":"n","agent_id":"a","error":"e"}"#,
        #"{"event_type":"agent_heartbeat","agent_id":"agent-001","storage_node_count":9223372036854775807}"#,
        #"{"event_type":"agent_heartbeat","agent_id":"agent-001","storage_node_count":9223372036854775808}"#,
        #"{"event_type":"agent_heartbeat","agent_id":"agent-001","storage_node_count":-9223372036854775808}"#,
        #"{"event_type":"agent_heartbeat","agent_id":"agent-001","storage_node_count":-9223372036854775809}"#,
        #"{"event_type":"agent_heartbeat","agent_id":"agent-001","storage_node_count":3.0}"#,
        #"{"event_type":"agent_heartbeat","agent_id":"agent-001","storage_node_count":3.5}"#,
        #"{"event_type":"agent_heartbeat","agent_id":"agent-001","storage_node_count":1e2}"#,
        #"{"event_type":"agent_heartbeat","agent_id":"agent-001","storage_node_count":1E+2}"#,
        #"{"event_type":"agent_heartbeat","agent_id":"agent-001","storage_node_count":-0}"#,
        #"{"event_type":"agent_heartbeat","agent_id":"agent-001","storage_node_count":-0.0}"#,
        #"{"event_type":"agent_heartbeat","agent_id":"agent-001","storage_node_count":1e400}"#,
        #"{"event_type":"agent_heartbeat","agent_id":"agent-001","storage_node_count":1e-400}"#,
        #"{"event_type":"agent_heartbeat","agent_id":"agent-001","storage_node_count":01}"#,
        #"{"event_type":"agent_heartbeat","agent_id":"agent-001","storage_node_count":1.}"#,
        #"{"event_type":"agent_heartbeat","agent_id":"agent-001","storage_node_count":.5}"#,
        #"{"event_type":"agent_heartbeat","agent_id":"agent-001","storage_node_count":+1}"#,
        #"{"event_type":"agent_heartbeat","agent_id":"agent-001","storage_node_count":"3"}"#,
        #"{"event_type":"agent_heartbeat","agent_id":"agent-001","storage_node_count":true}"#,
        #"{"event_type":"agent_degraded","agent_id":"agent-001","seconds_since_heartbeat":16}"#,
        #"{"event_type":"agent_degraded","agent_id":"agent-001","seconds_since_heartbeat":1.7976931348623157e308}"#,
        #"{"event_type":"agent_degraded","agent_id":"agent-001","seconds_since_heartbeat":4.9e-324}"#,
        #"{"event_type":"agent_degraded","agent_id":"agent-001","seconds_since_heartbeat":123456789012345678901234567890}"#,
        #"{"event_type":"agent_offline","agent_id":"agent-001","last_seen":"2026-11-29T02:10:00.123456Z"}"#,
        #"{"event_type":"agent_offline","agent_id":"agent-001","last_seen":1764382200123456}"#,
        #"{"event_type":"agent_offline","agent_id":"agent-001","last_seen":"yesterday"}"#,
        #"{"event_type":"node_crashed","node_id":"n","agent_id":"a","exit_code":null,"signal":9}"#,
        #"{"event_type":"node_crashed","node_id":"n","agent_id":"a"}"#,
        #"{"event_type":"node_crashed","node_id":"n"}"#,
        #"{"event_type":"node_crashed","node_id":"n","agent_id":"a","zeta":1,"alpha":2}"#,
        #"{"event_type":"node_crashed","node_id":"n","agent_id":"a","zeta":[1],"alpha":{"x":1}}"#,
        #"{"event_type":"spawn_failed","id":"event-spawn_failed-abc-1","timestamp":"2026-11-29T02:10:00Z","node_id":"n","agent_id":"a","error":"e"}"#,
        #"{"event_type":"spawn_failed","id":"event-stop_failed-abc-1","node_id":"n","agent_id":"a","error":"e"}"#,
        #"{"event_type":"spawn_failed","id":"bad id!","node_id":"n","agent_id":"a","error":"e"}"#,
        #"{"event_type":"spawn_failed","id":7,"node_id":"n","agent_id":"a","error":"e"}"#,
        #"{"event_type":"spawn_failed","timestamp":"2026-11-29T02:10:00.1234567891Z","node_id":"n","agent_id":"a","error":"e"}"#,
        #"{"event_type":"spawn_failed","timestamp":17,"node_id":"n","agent_id":"a","error":"e"}"#,
        #"{"event_type":"spawn_failed","node_id":"n","agent_id":"a","error":"e","entities":["x"]}"#,
        #"{"event_type":"deploy_finished","entities":["svc-1","agent-001"],"version":"1.2.3","ok":true,"n":1.5e3,"x":null}"#,
        #"{"event_type":"deploy_finished","entities":"svc-1"}"#,
        #"{"event_type":"deploy_finished","entities":[1]}"#,
        #"{"event_type":"deploy_finished","entities":["bad id"]}"#,
        #"{"event_type":"Deploy"}"#,
        #"{"event_type":"custom"}"#,
        #"{"event_type":"deploy","fields":{"a":1,"b":"x"},"entities":["e"]}"#,
        #"{"event_type":"deploy","fields":{"a":[1]}}"#,
        #"{"event_type":"deploy","fields":7}"#,
        #"{"id":"event-spawn_failed-x-1","event_type":"spawn_failed","timestamp":"2026-11-29T02:10:00.123456Z","entities":["n","a"],"fields":{"node_id":"n","agent_id":"a","error":"e"}}"#,
        #"{"event_type":"deploy","nested":{"a":{"b":{"c":[[[[null]]]]}}}}"#,
        #"{"event_type":17}"#,
        #"{"node_id":"n"}"#,
        #"[1,2]"#, #""text""#, "42", "null", "", "   ", "{", "}", "{}", #"{"a"}"#, #"{"a":}"#, #"{"a" 1}"#, #"{1:2}"#,
        #"{"event_type":"deploy"} x"#, #"{"event_type":"deploy"}{}"#, "\u{0C}{\"event_type\":\"deploy\"}",
        #"{"event_type":"deploy",}"#, #"{"event_type":"deploy","entities":["a",]}"#, #"{"event_type":"deploy","x":tru}"#,
        #"{"event_type":"deploy","x":nul}"#, #"{"event_type":"deploy","x":falsey}"#,
    ]

    @Test(arguments: handPicked)
    func handPickedLinesAgree(line: String) {
        #expect(Self.disagreement(Array(line.utf8)) == nil, "\(line)")
    }

    @Test func trailingCommasAreTheOneDeliberateDifference() {
        for line in [#"{"event_type":"deploy",}"#, #"{"event_type":"deploy","entities":["a",]}"#] {
            guard case .accepted = Self.old(Array(line.utf8)) else { Issue.record("Foundation refused \(line)"); continue }
            guard case .refused(let m) = Self.new(Array(line.utf8)) else { Issue.record("accepted \(line)"); continue }
            #expect(m.contains("a trailing comma"), "\(m)")
        }
    }

    /// Found by fuzzing: Foundation drops a repeated key's value without reading it, so a malformed number, string
    /// escape or UTF-8 there passes. The byte decoder refuses it and says where.
    @Test func aMalformedValueOfARepeatedKeyIsTheOtherDeliberateDifference() {
        let prefix = Array(#"{"event_type":"stop_requested","node_id":"n","agent_id":"a","node_id":"#.utf8)
        for bad in [Array("01".utf8), Array("1.".utf8), Array(#""\ud83d""#.utf8), [0x22, 0xFF, 0x22]] {
            let line = prefix + bad + Array("}".utf8)
            guard case .accepted = Self.old(line) else { Issue.record("Foundation refused \(bad)"); continue }
            guard case .refused(let m) = Self.new(line) else { Issue.record("accepted \(bad)"); continue }
            #expect(m.contains("repeated key \"node_id\""), "\(m)")
        }
    }

    /// Found by fuzzing: Foundation reads "\u{0}0" as UTF-16 (the number 0). The byte decoder reads UTF-8 only.
    @Test func utf16TextIsTheThirdDeliberateDifference() {
        let utf16: [UInt8] = #"{"event_type":"deploy"}"#.utf16.flatMap { [UInt8($0 >> 8), UInt8($0 & 0xFF)] }
        let samples: [[UInt8]] = [[0x00, 0x30], utf16, [0xFF, 0xFE, 0x7B, 0x00, 0x7D, 0x00]]
        for text in samples {
            guard case .refused(let m) = Self.new(text) else { Issue.record("accepted \(text)"); continue }
            #expect(m.contains("only UTF-8 is read"), "\(m)")
        }
    }

    @Test func invalidUTF8AndNestingLimitsAgree() {
        let prefix = Array(#"{"event_type":"deploy","s":""#.utf8)
        for bad in [[0xFF], [0xC3, 0x28], [0xED, 0xA0, 0x80], [0xF4, 0x90, 0x80, 0x80], [0xC0, 0xAF], [0xE2, 0x82]] as [[UInt8]] {
            let line = prefix + bad + Array(#""}"#.utf8)
            #expect(Self.disagreement(line) == nil, "\(bad)")
        }
        #expect(Self.disagreement(Array(#"{"event_type":"deploy"}"#.utf8) + [0]) == nil)
        for depth in [10, 510, 511, 512, 513, 2000] {
            let line = #"{"event_type":"deploy","x":"# + String(repeating: "[", count: depth) + String(repeating: "]", count: depth) + "}"
            #expect(Self.disagreement(Array(line.utf8)) == nil, "depth \(depth)")
        }
    }

    @Test func everyEventOfTheCatalogueAgreesInBothForms() {
        var grid = SampleGrid(seed: 9)
        for e in SampleGrid.oneOfEach() + grid.events(2000) {
            for text in [e.flatJSON, e.apiJSON] {
                let bytes = Array(text.utf8)
                #expect(Self.disagreement(bytes) == nil, "\(text)")
                guard case .accepted(let d) = Self.new(bytes) else { Issue.record("refused \(text)"); continue }
                #expect(d.kind == e.kind && d.id == e.id && d.timestamp == e.timestamp)
            }
        }
    }

    /// Realistic lines with random edits: bytes replaced, inserted or removed, JSON punctuation, escapes, digits.
    @Test func randomlyDamagedLinesAgree() {
        var grid = SampleGrid(seed: 17)
        var rng = SplitMix(seed: 20261129)
        let pieces: [[UInt8]] = [",", ":", "{", "}", "[", "]", "\"", "\\", "\\u", "\\ud83d", "\\ude00", "0", "-", ".", "e", "1e999",
                                 " ", "\t", "\n", "null", "true", "1.0", "é", "😀", "\u{0}", "\"x\":1", "\"event_type\"", "\"id\"",
                                 "\"timestamp\"", "\"entities\"", "\"fields\""].map { Array($0.utf8) }
        var disagreements: [String] = []
        var accepted = 0
        for n in 0..<20_000 {
            var e = grid.event(index: n, count: 20_000)
            if n % 7 == 0 { e = SampleGrid.oneOfEach()[n % 20] }
            var bytes = Array((n % 3 == 0 ? e.apiJSON : e.flatJSON).utf8)
            for _ in 0..<(1 + Int(rng.next() % 3)) {
                let at = Int(rng.next() % UInt64(bytes.count + 1))
                switch rng.next() % 4 {
                case 0 where at < bytes.count: bytes.remove(at: at)
                case 1 where at < bytes.count: bytes[at] = UInt8(truncatingIfNeeded: rng.next())
                default: bytes.insert(contentsOf: pieces[Int(rng.next() % UInt64(pieces.count))], at: at)
                }
            }
            if case .accepted = Self.new(bytes) { accepted += 1 }
            if let d = Self.disagreement(bytes), disagreements.count < 10 {
                disagreements.append("\(String(decoding: bytes, as: UTF8.self)): \(d)")
            }
        }
        #expect(disagreements.isEmpty, "\(disagreements.joined(separator: "\n"))")
        #expect(accepted > 1000, "the edits leave enough lines valid to compare drafts (\(accepted))")
    }
}

struct SplitMix {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
