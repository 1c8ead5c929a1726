import GridBase

/// The id `grid-cli emit` (and `POST /api/events`) gives a JSON line without an `id`:
/// `event-<type name>-<t>-<line number>`, `t` the low 48 bits of XXH3-64 of the line's bytes (as read, without the
/// line break and a trailing CR) seeded with the event's timestamp in microseconds, as 12 lowercase hex digits.
/// The same line at the same line number with the same time gets the same id, so a rerun stores nothing twice.
/// OTLP logs in use the same rule for a record without an id (its identity bytes, its ordinal in the request).
public enum LineIds {
    /// Written straight into the string's storage (no intermediate strings: `grid-cli import` makes one per line).
    public static func id(for line: UnsafeRawBufferPointer, typeName: String, timestamp: Int64, line number: Int) -> String {
        let h = Hash.bytes(line, seed: UInt64(bitPattern: timestamp)) & 0xFFFF_FFFF_FFFF
        guard number >= 0 else { return "event-" + typeName + "-" + hex12(h) + "-" + String(number) }
        var name = typeName
        return name.withUTF8 { t in
            String(unsafeUninitializedCapacity: 6 + t.count + 14 + 20) { out in
                var k = 0
                for c in "event-".utf8 { out[k] = c; k += 1 }
                for c in t { out[k] = c; k += 1 }
                out[k] = UInt8(ascii: "-")
                k += 1
                for shift in stride(from: 44, through: 0, by: -4) {
                    let d = UInt8((h >> UInt64(shift)) & 0xF)
                    out[k] = d < 10 ? 0x30 + d : 0x57 + d
                    k += 1
                }
                out[k] = UInt8(ascii: "-")
                k += 1
                var digits = 1
                var v = number
                while v >= 10 { v /= 10; digits += 1 }
                v = number
                for i in stride(from: k + digits - 1, through: k, by: -1) {
                    out[i] = 0x30 + UInt8(v % 10)
                    v /= 10
                }
                return k + digits
            }
        }
    }

    private static func hex12(_ h: UInt64) -> String {
        let hex = String(h, radix: 16)
        return String(repeating: "0", count: 12 - hex.count) + hex
    }
}
