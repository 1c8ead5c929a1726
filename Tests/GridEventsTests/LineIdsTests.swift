import GridBase
import GridEvents
import Testing

/// `LineIds.id`, the one rule for the id of a line without one: grid-cli emit/import, `POST /api/events` and
/// OTLP logs in all call it (ImportTests, HTTPIngestTests and OTLPTests check each caller against the rule).
struct LineIdsTests {
    /// The rule as README and docs/FORMAT.md state it, written the plain way.
    static func reference(_ line: [UInt8], typeName: String, timestamp: Int64, number: Int) -> String {
        let h = line.withUnsafeBytes { Hash.bytes($0, seed: UInt64(bitPattern: timestamp)) } & 0xFFFF_FFFF_FFFF
        let hex = String(h, radix: 16)
        return "event-" + typeName + "-" + String(repeating: "0", count: 12 - hex.count) + hex + "-" + String(number)
    }

    @Test("the id written byte by byte is the stated rule's, for every line number width")
    func fastIdIsTheRule() {
        var rng = SystemRandomNumberGenerator()
        let numbers = [0, 1, 9, 10, 99, 100, 12_345, 999_999, 1_000_000, Int(Int32.max), Int.max, -1]
        for (i, number) in numbers.enumerated() {
            for typeName in ["log", "node_crashed", "deploy_finished", String(repeating: "x", count: 64)] {
                let line = (0..<(i * 7)).map { _ in UInt8.random(in: 0...255, using: &rng) }
                let timestamp = Int64.random(in: Int64.min...Int64.max, using: &rng)
                let id = line.withUnsafeBytes { LineIds.id(for: $0, typeName: typeName, timestamp: timestamp, line: number) }
                #expect(id == Self.reference(line, typeName: typeName, timestamp: timestamp, number: number))
            }
        }
    }
}
