/// The compact binary form of events, used on the socket and (fields only) as the concept record payload.
/// Layouts are in docs/FORMAT.md ("Event binary form").
public enum BinaryCodec {
    public static let version: UInt8 = 1

    enum Tag: UInt8 {
        case null = 0, string = 1, int = 2, double = 3, bool = 4, time = 5
    }

    static func write(_ v: FieldValue, _ w: inout BinaryWriter) {
        switch v {
        case .null: w.u8(Tag.null.rawValue)
        case .string(let s):
            w.u8(Tag.string.rawValue)
            w.string(s)
        case .int(let i):
            w.u8(Tag.int.rawValue)
            w.svarint(i)
        case .double(let d):
            w.u8(Tag.double.rawValue)
            w.u64(d.bitPattern)
        case .bool(let b):
            w.u8(Tag.bool.rawValue)
            w.u8(b ? 1 : 0)
        case .time(let t):
            w.u8(Tag.time.rawValue)
            w.svarint(t)
        }
    }

    static func read(_ r: inout BinaryReader) throws(EventError) -> FieldValue {
        let raw = try r.u8()
        guard let tag = Tag(rawValue: raw) else { throw EventError("unknown field tag \(raw)") }
        switch tag {
        case .null: return .null
        case .string: return .string(try r.string(limit: GridEvent.Limits.maxStringField))
        case .int: return .int(try r.svarint())
        case .double: return .double(Double(bitPattern: try r.u64()))
        case .bool:
            let b = try r.u8()
            guard b <= 1 else { throw EventError("bool field of value \(b)") }
            return .bool(b == 1)
        case .time: return .time(try r.svarint())
        }
    }

    /// The fields of an event (the concept record payload).
    public static func encodeFields(_ kind: GridEventKind) -> [UInt8] {
        var w = BinaryWriter(capacity: 64)
        encodeFields(kind, into: &w)
        return w.bytes
    }

    static func encodeFields(_ kind: GridEventKind, into w: inout BinaryWriter) {
        w.u8(version)
        if case .custom(let name, let fields, let entities) = kind {
            w.string(name)
            w.varint(UInt64(entities.count))
            for e in entities { w.string(e) }
            w.varint(UInt64(fields.count))
            for key in fields.keys.sorted() {
                w.string(key)
                write(fields[key]!, &w)
            }
        } else if case .log(let entry) = kind {
            writeLog(entry, into: &w)
        } else {
            for v in kind.fieldValues { write(v, &w) }
        }
    }

    /// A log event's fields after the version byte: the fixed fields, the entities, then the metadata in name
    /// order (`EventEncoder` writes log events through this too).
    static func writeLog(_ entry: LogEntry, into w: inout BinaryWriter) {
        for v in entry.fixedValues { write(v, &w) }
        w.varint(UInt64(entry.entities.count))
        for e in entry.entities { w.string(e) }
        w.varint(UInt64(entry.metadata.count))
        for key in entry.metadata.keys.sorted() {
            w.string(key)
            write(entry.metadata[key]!, &w)
        }
    }

    /// Decodes the fields of an event of `type`, checking every value against the catalogue.
    public static func decodeFields(type: EventType, _ bytes: ArraySlice<UInt8>) throws(EventError) -> GridEventKind {
        var r = BinaryReader(bytes)
        let v = try r.u8()
        guard v == version else { throw EventError("event fields of version \(v); this build reads \(version)") }
        let kind: GridEventKind
        if type == .custom {
            let name = try r.string(limit: GridEvent.Limits.maxCustomNameLength)
            let entityCount = try r.varint()
            guard entityCount <= 32 else { throw EventError("custom event with \(entityCount) entities") }
            var entities: [String] = []
            for _ in 0..<entityCount { entities.append(try r.string(limit: 256)) }
            let fieldCount = try r.varint()
            guard fieldCount <= UInt64(GridEvent.Limits.maxCustomFields) else { throw EventError("custom event with \(fieldCount) fields") }
            var fields: [String: FieldValue] = [:]
            for _ in 0..<fieldCount {
                let key = try r.string(limit: GridEvent.Limits.maxCustomNameLength)
                fields[key] = try read(&r)
            }
            kind = .custom(name: name, fields: fields, entities: entities)
        } else if type == .log {
            var values: [FieldValue] = []
            for spec in type.fields { values.append(try GridEventKind.coerce(try read(&r), to: spec, in: type)) }
            guard case .log(var entry) = try GridEventKind(type: type, values: values) else { throw EventError("log fields") }
            let entityCount = try r.varint()
            guard entityCount <= 32 else { throw EventError("log event with \(entityCount) entities") }
            for _ in 0..<entityCount { entry.entities.append(try r.string(limit: 256)) }
            let fieldCount = try r.varint()
            guard fieldCount <= UInt64(GridEvent.Limits.maxCustomFields) else { throw EventError("log event with \(fieldCount) metadata fields") }
            for _ in 0..<fieldCount {
                let key = try r.string(limit: GridEvent.Limits.maxCustomNameLength)
                entry.metadata[key] = try read(&r)
            }
            kind = .log(entry)
        } else {
            var values: [FieldValue] = []
            for spec in type.fields {
                values.append(try GridEventKind.coerce(try read(&r), to: spec, in: type))
            }
            kind = try GridEventKind(type: type, values: values)
        }
        guard r.isAtEnd else { throw EventError("\(r.remaining) trailing bytes after the fields of \(type.name)") }
        return kind
    }

    /// The whole event: type code u16, timestamp (zigzag varint), id (string), fields length (varint), fields.
    public static func encode(_ event: GridEvent, into w: inout BinaryWriter) {
        w.u16(event.type.rawValue)
        w.svarint(event.timestamp)
        w.string(event.id)
        let fields = encodeFields(event.kind)
        w.varint(UInt64(fields.count))
        w.raw(fields)
    }

    public static func encode(_ event: GridEvent) -> [UInt8] {
        var w = BinaryWriter(capacity: 128)
        encode(event, into: &w)
        return w.bytes
    }

    /// Decodes and validates one event.
    public static func decode(_ r: inout BinaryReader) throws(EventError) -> GridEvent {
        let code = try r.u16()
        guard let type = EventType(rawValue: code) else { throw EventError("unknown event type code \(code)") }
        let ts = try r.svarint()
        let id = try r.string(limit: 256)
        let n = try r.varint()
        guard n <= 1 << 20 else { throw EventError("event fields of \(n) bytes") }
        let kind = try decodeFields(type: type, try r.bytes(Int(n)))
        let event = GridEvent(id: id, timestamp: ts, kind: kind)
        try event.validate()
        return event
    }

    public static func decode(_ bytes: [UInt8]) throws(EventError) -> GridEvent {
        var r = BinaryReader(bytes[...])
        let e = try decode(&r)
        guard r.isAtEnd else { throw EventError("\(r.remaining) trailing bytes after the event") }
        return e
    }
}
