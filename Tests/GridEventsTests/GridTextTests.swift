import EventRecords
import EventStore
import Foundation
import GridEvents
import GridFixtures
import Testing

/// The text the word index takes from grid events (`GridText`): read from the binary payload without decoding it,
/// it must be exactly the string field values the decoded event has, in order; damaged payloads end the walk.
@Suite struct GridTextTests {
    static func stringValues(_ e: GridEvent) -> [String] {
        e.kind.namedFields.compactMap { field in
            if case .string(let s) = field.value { return s }
            return nil
        }
    }

    static var events: [GridEvent] {
        let t: Int64 = 1_764_382_200_123_456
        var out = SampleGrid.oneOfEach(timestamp: t)
        out.append(GridEvent(id: "event-log-00000000abcd-1", timestamp: t, kind: .log(LogEntry(
            level: "error", label: "payments", message: "disk full on /dev/sda1", source: "Payments", file: "Sources/App/main.swift", line: 42,
            metadata: ["request_id": .string("r-17"), "attempt": .int(3), "reason": .string("Connection refused")], entities: ["node-7"]))))
        out.append(GridEvent(id: "event-log-00000000abcd-2", timestamp: t, kind: .log(LogEntry(level: "info", label: "x", message: "no source"))))
        var grid = SampleGrid(seed: 3)
        out += grid.events(300)
        return out
    }

    @Test func theTextIsTheEventsStringFields() {
        for e in Self.events {
            #expect(GridText.strings(of: e) == Self.stringValues(e), "\(e.typeName): \(GridText.strings(of: e)) vs \(Self.stringValues(e))")
        }
        let log = Self.events.first { $0.type == .log }!
        #expect(GridText.strings(of: log) == ["error", "payments", "disk full on /dev/sda1", "Payments", "Sources/App/main.swift", "Connection refused", "r-17"])
        #expect(!GridText.strings(of: log).contains("node-7"), "entities are not text")
        #expect(!GridText.strings(of: log).contains("request_id"), "metadata names are not text")
    }

    @Test func damagedPayloadsEndTheWalk() {
        for e in Self.events.prefix(40) {
            let payload = BinaryCodec.encodeFields(e.kind)
            for cut in 0..<payload.count {
                var got: [String] = []
                payload[0..<cut].withUnsafeBytes { buf in
                    GridText.forEachString(typeCode: e.type.rawValue, payload: buf) { got.append(String(decoding: $0, as: UTF8.self)) }
                }
                let all = GridText.strings(of: e)
                #expect(got.count <= all.count && Array(all.prefix(got.count)) == got, "\(e.typeName) cut at \(cut)")
            }
        }
    }
}
