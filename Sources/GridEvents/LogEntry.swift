/// The fields of a `log` event (type code 60): one log record of a service, from swift-log
/// (`GridEventsLogHandler`) or OpenTelemetry (`POST /v1/logs`), or any JSON line with `"event_type": "log"`.
///
/// Fixed fields, in binary order: `level`, `label`, `message`, then the optional `source`, `file` and `line`.
/// After them come the record's metadata as free fields (as a custom event's: names 1-64 of `a-z 0-9 _` starting
/// with a letter, at most 64) and the entities it mentions (at most 32), so "what happened to node-7" finds the
/// log records about node-7. Layout: docs/FORMAT.md, "Event binary form".
public struct LogEntry: Sendable, Equatable, Hashable {
    /// `trace`, `debug`, `info`, `notice`, `warning`, `error` or `critical` (swift-log's levels).
    public var level: String
    /// Who logged it: the logger's label (swift-log), the instrumentation scope or service (OpenTelemetry).
    public var label: String
    public var message: String
    /// The module that logged (swift-log's `source`).
    public var source: String?
    public var file: String?
    public var line: Int?
    /// The record's metadata or attributes as fields (names as `LogEntry.fieldName(for:)` makes them).
    public var metadata: [String: FieldValue]
    /// The entity ids the record is about (see `LogEntry.entities(from:keys:)`).
    public var entities: [String]

    public init(level: String, label: String, message: String, source: String? = nil, file: String? = nil, line: Int? = nil,
                metadata: [String: FieldValue] = [:], entities: [String] = []) {
        self.level = level
        self.label = label
        self.message = message
        self.source = source
        self.file = file
        self.line = line
        self.metadata = metadata
        self.entities = entities
    }

    /// The levels, least severe first.
    public static let levels = ["trace", "debug", "info", "notice", "warning", "error", "critical"]

    /// The fixed fields' names: a metadata field may not take one of them.
    public static let fixedNames: Set<String> = ["level", "label", "message", "source", "file", "line"]

    /// Metadata keys that name entities unless configured otherwise.
    public static let defaultEntityKeys = ["agent_id", "node_id"]

    /// The entity keys to look for: `defaultEntityKeys`, then `configured` made field names, each once (the
    /// swift-log backend's `entityKeys`, OTLP's `Mapping.entityKeys`).
    public static func entityKeys(adding configured: [String]) -> [String] {
        var keys = defaultEntityKeys
        for k in configured.map(fieldName(for:)) where !keys.contains(k) { keys.append(k) }
        return keys
    }

    /// The fixed fields in binary order.
    var fixedValues: [FieldValue] {
        [.string(level), .string(label), .string(message), source.map(FieldValue.string) ?? .null,
         file.map(FieldValue.string) ?? .null, line.map { FieldValue.int(Int64($0)) } ?? .null]
    }

    /// A metadata key made a field name: ASCII letters lowercased, every run of other bytes one `_` (so
    /// `service.name` is `service_name`, `request-id` is `request_id`), no `_` at either end, `m_` in front when
    /// it would not start with a letter or would take a fixed or reserved name (`m_level`, `m_id`), cut to 64.
    public static func fieldName(for key: String) -> String {
        isPlainFieldName(key) ? key : generalFieldName(for: key)
    }

    /// `fieldName(for:)` without the shortcut for keys that are field names already.
    static func generalFieldName(for key: String) -> String {
        var out: [UInt8] = []
        out.reserveCapacity(key.utf8.count)
        var pendingUnderscore = false
        for b in key.utf8 {
            var c = b
            if c >= 65 && c <= 90 { c += 32 }
            let keep = (c >= 97 && c <= 122) || (c >= 48 && c <= 57)
            if keep {
                if pendingUnderscore && !out.isEmpty { out.append(95) }
                pendingUnderscore = false
                out.append(c)
            } else {
                pendingUnderscore = true
            }
        }
        var name = String(decoding: out, as: UTF8.self)
        if name.isEmpty { name = "m" }
        if !(name.utf8.first.map { $0 >= 97 && $0 <= 122 } ?? false) || fixedNames.contains(name)
            || GridEvent.reservedFieldNames.contains(name) || name == "fields"
        {
            name = "m_" + name
        }
        if name.utf8.count > GridEvent.Limits.maxCustomNameLength {
            name = String(decoding: name.utf8.prefix(GridEvent.Limits.maxCustomNameLength), as: UTF8.self)
        }
        return name
    }

    /// Whether `fieldName(for: key)` is `key` itself: 1-64 bytes of `a-z 0-9 _`, a letter first, no `_` at the
    /// end or twice in a row, not a fixed or reserved name (the common case, checked without building a string).
    static func isPlainFieldName(_ key: String) -> Bool {
        var key = key
        let plain = key.withUTF8 { b -> Bool in
            guard let first = b.first, first >= 97 && first <= 122, b.count <= GridEvent.Limits.maxCustomNameLength,
                  b.last != 95 else { return false }
            var previous: UInt8 = 0
            for c in b {
                guard (c >= 97 && c <= 122) || (c >= 48 && c <= 57) || c == 95 else { return false }
                if c == 95 && previous == 95 { return false }
                previous = c
            }
            return true
        }
        return plain && !fixedNames.contains(key) && !GridEvent.reservedFieldNames.contains(key) && key != "fields"
    }

    /// `s` cut to at most `limit` bytes of UTF-8, at a character boundary (a log line is kept, not refused).
    public static func truncated(_ s: String, limit: Int = GridEvent.Limits.maxStringField) -> String {
        guard s.utf8.count > limit else { return s }
        let bytes = Array(s.utf8)
        var end = limit
        while end > 0 && bytes[end] & 0xC0 == 0x80 { end -= 1 }  // not inside a scalar's bytes
        return String(decoding: bytes[..<end], as: UTF8.self)
    }

    /// The entity ids named by `keys` among `fields` (string values that are valid ids), in the order of `keys`,
    /// each once, at most 32.
    public static func entities(from fields: [String: FieldValue], keys: [String] = defaultEntityKeys) -> [String] {
        var out: [String] = []
        for k in keys {
            guard case .string(let id)? = fields[k], !out.contains(id), (try? GridEvent.validateId(id, what: "entity id")) != nil else { continue }
            out.append(id)
            if out.count == 32 { break }
        }
        return out
    }

    /// Builds a log event's fields from named values (the JSON forms): the fixed fields by name (checked and
    /// coerced like a catalogue type's), every other name a metadata field; `entities` when given, else the
    /// `agent_id` and `node_id` fields that hold valid ids.
    /// - Throws: `EventError` naming a missing or mistyped fixed field or a bad metadata name.
    public static func make(fields: [(key: String, value: FieldValue)], entities: [String]?) throws(EventError) -> LogEntry {
        var fixed = [FieldValue](repeating: .null, count: EventType.log.fields.count)
        var metadata: [String: FieldValue] = [:]
        for f in fields {
            if let i = EventType.log.fields.firstIndex(where: { $0.name == f.key }) {
                fixed[i] = f.value
            } else {
                metadata[f.key] = f.value
            }
        }
        for (i, spec) in EventType.log.fields.enumerated() { fixed[i] = try GridEventKind.coerce(fixed[i], to: spec, in: .log) }
        guard case .string(let level) = fixed[0], case .string(let label) = fixed[1], case .string(let message) = fixed[2] else {
            throw EventError("log needs level, label and message")
        }
        var line: Int?
        if case .int(let n) = fixed[5] {
            guard let x = Int(exactly: n) else { throw EventError("field line of log must be an integer") }
            line = x
        }
        func text(_ v: FieldValue) -> String? { if case .string(let s) = v { return s } else { return nil } }
        let entry = LogEntry(level: level, label: label, message: message, source: text(fixed[3]), file: text(fixed[4]), line: line,
                             metadata: metadata, entities: entities ?? LogEntry.entities(from: metadata))
        try entry.validate()
        return entry
    }

    /// The checks `GridEvent.validate()` makes of a log event: level, metadata names and count, entities, sizes.
    public func validate() throws(EventError) {
        guard LogEntry.levels.contains(level) else {
            throw EventError("log level \"\(level.prefix(64))\" is not one of \(LogEntry.levels.joined(separator: ", "))")
        }
        guard metadata.count <= GridEvent.Limits.maxCustomFields else {
            throw EventError("log has \(metadata.count) metadata fields; the limit is \(GridEvent.Limits.maxCustomFields)")
        }
        for key in metadata.keys.sorted() {
            if LogEntry.fixedNames.contains(key) { throw EventError("\(key) is a fixed field of log; name metadata otherwise") }
            try GridEvent.validateCustomName(key, what: "field name")
        }
        guard entities.count <= 32 else { throw EventError("log mentions \(entities.count) entities; the limit is 32") }
        for e in entities { try GridEvent.validateId(e, what: "entity id") }
    }
}
