@testable import GridEvents
import GridFixtures
import Testing

/// The fast path of `FlatEventDecoder` (flat catalogue lines without escapes) is taken for realistic lines and
/// gives exactly what the general path gives; it declines whatever it does not handle.
@Suite("Fast path for common JSON lines")
struct FastFlatLineTests {
    static func general(_ bytes: [UInt8]) -> GridEvent.Draft? {
        bytes.withUnsafeBytes { b in
            var p = JSONByteParser(base: b.baseAddress!.assumingMemoryBound(to: UInt8.self), count: b.count)
            return (try? p.topLevel()).flatMap { try? FlatEventDecoder.draft($0) }
        }
    }

    static func fast(_ bytes: [UInt8]) -> GridEvent.Draft? {
        bytes.withUnsafeBytes { FastFlatLine.decode($0.baseAddress!.assumingMemoryBound(to: UInt8.self), $0.count) }
    }

    @Test func realisticLinesTakeTheFastPathAndAgree() {
        var grid = SampleGrid(seed: 31)
        for e in grid.events(5000) + SampleGrid.oneOfEach().filter({ $0.type != .custom }) {
            for text in [e.flatJSON, e.flatJSON.replacingOccurrences(of: ",\"id\":\"\(e.id)\"", with: "")] {
                let bytes = Array(text.utf8)
                let f = Self.fast(bytes)
                let g = Self.general(bytes)
                if text.contains("\\") {
                    #expect(f == nil, "escapes go to the general path: \(text)")
                } else {
                    #expect(f != nil, "\(text)")
                }
                if let f { #expect(f == g, "\(text)") }
            }
        }
    }

    @Test func unusualLinesAreLeftToTheGeneralPath() {
        let lines = [
            #"{"event_type":"deploy","x":1}"#,  // custom
            #"{"event_type":"stop_requested","node_id":"n","agent_id":"a","agent_id":"b"}"#,  // duplicate
            #"{"event_type":"stop_requested","node_id":"n\u0041","agent_id":"a"}"#,  // escape
            #"{"event_type":"stop_requested","node_id":"nœ","agent_id":"a"}"#,  // not ASCII
            #"{"event_type":"stop_requested","node_id":"n","agent_id":"a","entities":["x"]}"#,  // nested
            #"{"event_type":"stop_requested","node_id":"n","agent_id":"a","zzz":1}"#,  // unknown field
            #"{"event_type":"stop_requested","node_id":"n"}"#,  // missing field
            #"{"event_type":"stop_requested","node_id":"n","agent_id":"a","timestamp":"soon"}"#,
            #"{"event_type":"stop_requested","node_id":"n","agent_id":"a","id":"x"}"#,  // id of another shape is for validate
            #"{"event_type":"stop_requested","node_id":"n","agent_id":"a"} x"#,
        ]
        for line in lines {
            let f = Self.fast(Array(line.utf8))
            if let f { #expect(f == Self.general(Array(line.utf8)), "\(line)") } else { #expect(f == nil) }
        }
        #expect(Self.fast(Array(lines[0].utf8)) == nil)
        #expect(Self.fast(Array(lines[1].utf8)) == nil)
        #expect(Self.fast(Array(lines[5].utf8)) == nil)
        #expect(Self.fast(Array(lines[6].utf8)) == nil)
    }
}
