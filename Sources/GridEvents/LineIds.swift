import EventStore

/// The id `grid-cli emit` (and `POST /api/events`) gives a JSON line without an `id`:
/// `event-<type name>-<t>-<line number>`, `t` the low 48 bits of XXH3-64 of the line's bytes (as read, without the
/// line break and a trailing CR) seeded with the event's timestamp in microseconds, as 12 lowercase hex digits.
/// The same line at the same line number with the same time gets the same id, so a rerun stores nothing twice.
public enum LineIds {
    public static func id(for line: UnsafeRawBufferPointer, typeName: String, timestamp: Int64, line number: Int) -> String {
        let h = Hash.bytes(line, seed: UInt64(bitPattern: timestamp)) & 0xFFFF_FFFF_FFFF
        var hex = String(h, radix: 16)
        hex = String(repeating: "0", count: 12 - hex.count) + hex
        return "event-" + typeName + "-" + hex + "-" + String(number)
    }
}
