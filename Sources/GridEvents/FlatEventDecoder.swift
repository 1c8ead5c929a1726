#if canImport(Glibc)
import Glibc
#endif

/// A decoder for one JSON event line (the flat form `grid-cli emit` reads, and the API form with `fields`) that
/// works on the UTF-8 bytes directly: no Foundation, no `JSONValue` tree for the top-level object, no dictionary.
/// It accepts and refuses what `GridEvent.parseJSON(JSONValue.parse(bytes))` does, with the same messages for
/// every check after the JSON syntax (syntax errors say "malformed JSON: <what> at byte <n>"), and gives the same
/// draft. The differential tests and the `event-json` fuzz target compare the two on every input.
///
/// JSON as RFC 8259, with what Foundation's decoder (behind `JSONValue.parse`) does where the RFC leaves room:
/// a leading UTF-8 byte order mark is skipped; nesting deeper than 512 is refused; of duplicate keys the first
/// wins; a number without fraction or exponent is an integer when it fits an Int64 (else a double), one with a
/// fraction or exponent is an integer when it is integral and within Int64's range (`1.0`, `1e2`, `-0.0`), else a
/// double; a number beyond the
/// double range is refused. Three deliberate differences from Foundation, which accepts there what is not UTF-8
/// JSON: a trailing comma (`{"a":1,}`, `[1,]`) is refused; so is a malformed value of a repeated key (Foundation
/// drops such a value without looking at it: `{"a":1,"a":01}` or invalid UTF-8 there pass); and so is UTF-16 or
/// UTF-32 text (Foundation guesses those from zero bytes or a byte order mark). The messages say so.
/// Cost: about 1 µs for a typical 140-byte catalogue line (release build).
public enum FlatEventDecoder {
    /// Decodes one line. Throws `EventError` with the same message as the Foundation-based path.
    public static func decode(_ bytes: UnsafeRawBufferPointer, limit: Int = 1 << 20) throws(EventError) -> GridEvent.Draft {
        guard bytes.count <= limit else { throw EventError("JSON of \(bytes.count) bytes exceeds the limit of \(limit)") }
        guard let base = bytes.baseAddress?.assumingMemoryBound(to: UInt8.self) else { throw EventError("malformed JSON: no value at byte 0") }
        if let fast = FastFlatLine.decode(base, bytes.count) { return fast }
        var p = JSONByteParser(base: base, count: bytes.count)
        let members = try p.topLevel()
        return try draft(members)
    }

    public static func decode(_ bytes: [UInt8], limit: Int = 1 << 20) throws(EventError) -> GridEvent.Draft {
        var result: Result<GridEvent.Draft, EventError> = .failure(EventError("malformed JSON: no value at byte 0"))
        bytes.withUnsafeBytes { b in
            do throws(EventError) { result = .success(try decode(b, limit: limit)) } catch { result = .failure(error) }
        }
        return try result.get()
    }

    static let reserved: Set<String> = ["event_type", "id", "timestamp", "entities"]

    /// The checks of `GridEvent.parseJSON`, in its order, over the top-level members (nil: not an object).
    static func draft(_ members: [(key: String, value: JSONValue)]?) throws(EventError) -> GridEvent.Draft {
        guard let members else { throw EventError("an event is a JSON object") }
        func member(_ key: String) -> JSONValue? {
            for m in members where m.key == key { return m.value }
            return nil
        }
        guard let typeName = member("event_type")?.stringValue else { throw EventError("missing \"event_type\" (a string)") }
        var id: String?
        if let v = member("id") {
            guard let s = v.stringValue else { throw EventError("\"id\" must be a string") }
            id = s
        }
        var timestamp: Int64?
        if let v = member("timestamp") {
            guard let s = v.stringValue, let t = TimeText.parse(s) else {
                throw EventError("\"timestamp\" must be RFC 3339, like 2026-11-29T02:10:00.123456Z")
            }
            timestamp = t
        }
        // The fields: a `fields` object (API form), else every other key (flat form), checked in name order.
        var fields: [(key: String, value: FieldValue)] = []
        if case .object(let nested)? = member("fields") {
            for k in nested.keys.sorted() {
                guard let f = nested[k]!.fieldValue else { throw EventError("field \"\(k)\" must be a string, number, boolean or null") }
                fields.append((k, f))
            }
        } else {
            var bad: String?
            for m in members where !reserved.contains(m.key) {
                fields.append((m.key, m.value.fieldValue ?? .null))
                if m.value.fieldValue == nil, bad == nil || m.key < bad! { bad = m.key }
            }
            if let bad { throw EventError("field \"\(bad)\" must be a string, number, boolean or null") }
        }
        let kind: GridEventKind
        if typeName == EventType.log.name {
            kind = .log(try LogEntry.make(fields: fields.sorted { $0.key < $1.key }, entities: try GridEvent.entityList(member("entities"))))
        } else if let type = EventType(name: typeName) {
            kind = try catalogueKind(type, fields)
        } else {
            try GridEvent.validateCustomName(typeName)
            let entities = try GridEvent.entityList(member("entities")) ?? []
            var dict: [String: FieldValue] = [:]
            dict.reserveCapacity(fields.count)
            for f in fields { dict[f.key] = f.value }
            kind = .custom(name: typeName, fields: dict, entities: entities)
        }
        if let id { try GridEvent.validateId(id, what: "event id") }
        return GridEvent.Draft(id: id, timestamp: timestamp, kind: kind)
    }

    /// `GridEventKind(type:fields:)` without the dictionary: unknown names first (in name order), then each field
    /// in catalogue order.
    static func catalogueKind(_ type: EventType, _ fields: [(key: String, value: FieldValue)]) throws(EventError) -> GridEventKind {
        let specs = type.fields
        var unknown: String?
        var values = [FieldValue](repeating: .null, count: specs.count)
        for f in fields {
            if let i = specs.firstIndex(where: { $0.name == f.key }) {
                values[i] = f.value
            } else if unknown == nil || f.key < unknown! {
                unknown = f.key
            }
        }
        if let unknown {
            throw EventError("\(type.name) has no field \"\(unknown)\"; its fields are \(specs.map(\.name).joined(separator: ", "))")
        }
        for (i, spec) in specs.enumerated() { values[i] = try GridEventKind.coerce(values[i], to: spec, in: type) }
        return try GridEventKind(type: type, values: values)
    }
}
