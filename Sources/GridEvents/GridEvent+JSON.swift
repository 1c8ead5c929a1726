/// JSON forms of an event.
///
/// Flat (what `grid-cli emit` reads and the examples show):
/// `{"event_type": "spawn_failed", "id": "event-spawn_failed-...", "timestamp": "2026-11-29T02:10:00.123456Z",
///   "node_id": "node-7", "agent_id": "agent-001", "error": "disk full"}`; a custom event adds `"entities": [...]`.
///
/// API (what the HTTP API answers): `{"id": ..., "event_type": ..., "timestamp": ..., "entities": [...],
/// "fields": {...}}`.
extension GridEvent {
    /// The flat JSON form, keys in catalogue order.
    public var flatJSON: String {
        var w = JSONWriter()
        w.raw("{\"event_type\":")
        w.string(typeName)
        w.raw(",\"id\":")
        w.string(id)
        w.raw(",\"timestamp\":")
        w.string(TimeText.format(timestamp))
        if case .custom(_, _, let entities) = kind {
            w.raw(",\"entities\":")
            w.stringArray(entities)
        } else if case .log(let entry) = kind {
            w.raw(",\"entities\":")
            w.stringArray(entry.entities)
        }
        for (name, value) in kind.namedFields {
            w.raw(",")
            w.string(name)
            w.raw(":")
            w.value(value)
        }
        w.raw("}")
        return w.text
    }

    /// The API JSON form (DESIGN's HTTP contract).
    public func apiJSON(into w: inout JSONWriter) {
        w.raw("{\"id\":")
        w.string(id)
        w.raw(",\"event_type\":")
        w.string(typeName)
        w.raw(",\"timestamp\":")
        w.string(TimeText.format(timestamp))
        w.raw(",\"entities\":")
        w.stringArray(entities)
        w.raw(",\"fields\":{")
        for (i, (name, value)) in kind.namedFields.enumerated() {
            if i > 0 { w.raw(",") }
            w.string(name)
            w.raw(":")
            w.value(value)
        }
        w.raw("}}")
    }

    public var apiJSON: String {
        var w = JSONWriter()
        apiJSON(into: &w)
        return w.text
    }

    /// An event described by flat JSON; `id` and `timestamp` may be absent (the emitter assigns them).
    public struct Draft: Sendable, Equatable {
        public var id: String?
        public var timestamp: Int64?
        public var kind: GridEventKind
    }

    /// Parses the flat form, or the API form (with `fields`), checking every field against the catalogue.
    public static func parseJSON(_ value: JSONValue) throws(EventError) -> Draft {
        guard case .object(let o) = value else { throw EventError("an event is a JSON object") }
        guard let typeName = o["event_type"]?.stringValue else { throw EventError("missing \"event_type\" (a string)") }
        var id: String?
        if let v = o["id"] {
            guard let s = v.stringValue else { throw EventError("\"id\" must be a string") }
            id = s
        }
        var timestamp: Int64?
        if let v = o["timestamp"] {
            guard let s = v.stringValue, let t = TimeText.parse(s) else {
                throw EventError("\"timestamp\" must be RFC 3339, like 2026-11-29T02:10:00.123456Z")
            }
            timestamp = t
        }
        var fieldsObject: [String: JSONValue] = [:]
        if case .object(let nested)? = o["fields"] {
            fieldsObject = nested
        } else {
            for (k, v) in o where !["event_type", "id", "timestamp", "entities"].contains(k) { fieldsObject[k] = v }
        }
        // Checked in name order, so a line with several bad fields always names the same one.
        var fields: [String: FieldValue] = [:]
        for k in fieldsObject.keys.sorted() {
            guard let f = fieldsObject[k]!.fieldValue else { throw EventError("field \"\(k)\" must be a string, number, boolean or null") }
            fields[k] = f
        }
        let kind: GridEventKind
        if typeName == EventType.log.name {
            kind = .log(try LogEntry.make(fields: fields.keys.sorted().map { ($0, fields[$0]!) }, entities: try entityList(o["entities"])))
        } else if let type = EventType(name: typeName) {
            if let unknown = fields.keys.filter({ k in !type.fields.contains { $0.name == k } }).min() {
                throw EventError("\(type.name) has no field \"\(unknown)\"; its fields are \(type.fields.map(\.name).joined(separator: ", "))")
            }
            kind = try GridEventKind(type: type, fields: fields)
        } else {
            try GridEvent.validateCustomName(typeName)
            kind = .custom(name: typeName, fields: fields, entities: try entityList(o["entities"]) ?? [])
        }
        if let id { try GridEvent.validateId(id, what: "event id") }
        return Draft(id: id, timestamp: timestamp, kind: kind)
    }

    /// The `entities` member: nil when absent, else its ids, each checked.
    static func entityList(_ value: JSONValue?) throws(EventError) -> [String]? {
        guard let value else { return nil }
        guard case .array(let a) = value else { throw EventError("\"entities\" must be an array of ids") }
        var entities: [String] = []
        for x in a {
            guard let s = x.stringValue else { throw EventError("\"entities\" must be an array of ids") }
            try GridEvent.validateId(s, what: "entity id")
            entities.append(s)
        }
        return entities
    }
}
