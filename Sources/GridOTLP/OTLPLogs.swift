import Foundation
import GridBase
import GridEvents
import SwiftProtobuf

/// OpenTelemetry logs (OTLP/HTTP, `POST /v1/logs`) as grid events. Decoding is the code generated from
/// `Proto/otlp_logs.proto` (the specification's field numbers); the mapping is here, pure, and documented in
/// README ("OpenTelemetry logs in") and docs/FORMAT.md ("OTLP logs mapping").
public enum OTLPLogs {
    /// How records become events.
    public struct Mapping: Sendable {
        /// The type of a record without an `event.name` attribute (or `event_name`): `log` by default; a catalogue
        /// type name or a custom event name may be configured instead.
        public var defaultType = EventType.log.name
        /// Attribute keys (as field names) whose string values become entities, besides `agent_id` and `node_id`.
        public var entityKeys: [String] = []
        /// Resource attributes that become entities `<prefix>-<value>` (and fields): `service.name` -> `service-checkout`.
        public var resourceEntities: [(key: String, prefix: String)] = [("service.name", "service"), ("host.name", "host")]

        public init() {}
    }

    /// What a request maps to: the events to store, and the records refused with the first reasons.
    public struct Outcome: Sendable {
        public var events: [GridEvent] = []
        public var rejected = 0
        public var reasons: [String] = []

        /// `error_message` of the partial success: how many, and the first few reasons.
        public var errorMessage: String {
            guard rejected > 0 else { return "" }
            return "\(rejected) log record(s) rejected: " + reasons.joined(separator: "; ")
        }
    }

    public enum Encoding: Sendable { case protobuf, json }

    /// A body that does not decode (answered 400 with a `Status`).
    public struct DecodeError: Error, Sendable, CustomStringConvertible {
        public var description: String
    }

    /// Decodes an `ExportLogsServiceRequest`. JSON follows OTLP/JSON: lowerCamelCase or the proto's own field
    /// names, enums as integers, 64-bit integers as strings or numbers, unknown fields ignored, trace and span
    /// ids as hex (see `hexId`).
    public static func decode(_ body: [UInt8], encoding: Encoding) throws(DecodeError) -> Grid_Otlp_V1_ExportLogsServiceRequest {
        do {
            switch encoding {
            case .protobuf:
                return try Grid_Otlp_V1_ExportLogsServiceRequest(serializedBytes: body)
            case .json:
                var options = JSONDecodingOptions()
                options.ignoreUnknownFields = true
                return try Grid_Otlp_V1_ExportLogsServiceRequest(jsonUTF8Bytes: body, options: options)
            }
        } catch {
            throw DecodeError(description: "the body is not an ExportLogsServiceRequest in \(encoding == .json ? "OTLP/JSON" : "protobuf"): \(error)")
        }
    }

    /// Maps every record of `request`; records that cannot be events are counted with a reason, never stored.
    /// `now` (microseconds) stands for a record without any time.
    public static func map(_ request: Grid_Otlp_V1_ExportLogsServiceRequest, encoding: Encoding, mapping: Mapping = Mapping(),
                           now: Int64 = GridClock.nowMicros()) -> Outcome {
        var outcome = Outcome()
        var ordinal = 0
        let entityKeys = LogEntry.entityKeys(adding: mapping.entityKeys)
        for resourceLogs in request.resourceLogs {
            let resource = attributes(resourceLogs.resource.attributes)
            var resourceFields: [String: FieldValue] = [:]
            var resourceEntities: [String] = []
            for (key, prefix) in mapping.resourceEntities {
                guard let value = resource[key] else { continue }
                resourceFields[LogEntry.fieldName(for: key)] = value
                if case .string(let s) = value, (try? GridEvent.validateId(prefix + "-" + s, what: "entity id")) != nil {
                    resourceEntities.append(prefix + "-" + s)
                }
            }
            let serviceName = resource["service.name"].flatMap { if case .string(let s) = $0 { s } else { nil } }
            for scopeLogs in resourceLogs.scopeLogs {
                for record in scopeLogs.logRecords {
                    ordinal += 1
                    do throws(EventError) {
                        outcome.events.append(try event(
                            record, ordinal: ordinal, encoding: encoding, mapping: mapping, entityKeys: entityKeys, resourceFields: resourceFields,
                            resourceEntities: resourceEntities, scope: scopeLogs.scope.name, service: serviceName,
                            identity: identity(resourceLogs.resource, scopeLogs.scope, record), now: now))
                    } catch {
                        outcome.rejected += 1
                        if outcome.reasons.count < 5 { outcome.reasons.append("record \(ordinal): \(error.message)") }
                    }
                }
            }
        }
        return outcome
    }

    /// The bytes that identify a record for its id: resource, scope and record, serialized (protobuf, whatever
    /// encoding it came in), so a retried export gives every record the same id and the store keeps one copy.
    static func identity(_ resource: Grid_Otlp_V1_Resource, _ scope: Grid_Otlp_V1_InstrumentationScope,
                         _ record: Grid_Otlp_V1_LogRecord) -> [UInt8] {
        var out: [UInt8] = []
        for part in [(try? resource.serializedBytes()) as [UInt8]?, (try? scope.serializedBytes()) as [UInt8]?,
                     (try? record.serializedBytes()) as [UInt8]?] {
            let bytes = part ?? []
            EventEncoder.varint(UInt64(bytes.count), &out)
            out += bytes
        }
        return out
    }

    /// One record as one event (the rules in README, "OpenTelemetry logs in").
    static func event(
        _ record: Grid_Otlp_V1_LogRecord, ordinal: Int, encoding: Encoding, mapping: Mapping, entityKeys: [String], resourceFields: [String: FieldValue],
        resourceEntities: [String], scope: String, service: String?, identity: [UInt8], now: Int64
    ) throws(EventError) -> GridEvent {
        let attrs = attributes(record.attributes)
        var typeName = mapping.defaultType
        if case .string(let name)? = attrs["event.name"], !name.isEmpty {
            typeName = name
        } else if !record.eventName.isEmpty {
            typeName = record.eventName
        }
        if typeName != EventType.log.name, EventType(name: typeName) == nil { typeName = LogEntry.fieldName(for: typeName) }
        let timestamp: Int64
        if record.timeUnixNano > 0 {
            timestamp = Int64(clamping: record.timeUnixNano / 1000)
        } else if record.observedTimeUnixNano > 0 {
            timestamp = Int64(clamping: record.observedTimeUnixNano / 1000)
        } else {
            timestamp = now
        }
        // Attributes as fields (event.name and event.id are the event itself, code.* go to file and line).
        var fields: [String: FieldValue] = [:]
        for key in attrs.keys.sorted() where !["event.name", "event.id"].contains(key) {
            let name = LogEntry.fieldName(for: key)
            if fields[name] == nil { fields[name] = attrs[key]! }
        }
        var trace: [String: FieldValue] = [:]
        if record.severityNumber.rawValue != 0 { trace["severity_number"] = .int(Int64(record.severityNumber.rawValue)) }
        if !record.severityText.isEmpty { trace["severity_text"] = .string(LogEntry.truncated(record.severityText)) }
        if !record.traceID.isEmpty { trace["trace_id"] = .string(try hexId(record.traceID, length: 16, encoding: encoding, what: "trace_id")) }
        if !record.spanID.isEmpty { trace["span_id"] = .string(try hexId(record.spanID, length: 8, encoding: encoding, what: "span_id")) }
        if record.flags != 0 { trace["trace_flags"] = .int(Int64(record.flags & 0xFF)) }
        let message: String? = record.hasBody ? LogEntry.truncated(text(record.body)) : nil

        let kind: GridEventKind
        if typeName == EventType.log.name {
            var metadata = resourceFields
            for (k, v) in fields where !["code_filepath", "code_file_path", "code_lineno", "code_line_number"].contains(k) { metadata[k] = v }
            metadata.merge(trace) { $1 }
            metadata = trimmed(metadata)
            var file: String?
            if case .string(let f)? = fields["code_filepath"] ?? fields["code_file_path"] { file = LogEntry.truncated(f) }
            var line: Int?
            if case .int(let n)? = fields["code_lineno"] ?? fields["code_line_number"] { line = Int(exactly: n) }
            let entry = LogEntry(
                level: level(record), label: LogEntry.truncated(!scope.isEmpty ? scope : (service ?? "otlp")),
                message: message ?? "", file: file, line: line, metadata: metadata,
                entities: unique(resourceEntities + LogEntry.entities(from: metadata, keys: entityKeys)))
            try entry.validate()
            kind = .log(entry)
        } else if let type = EventType(name: typeName) {
            // A catalogue type: its own fields, read from the attributes; it has no place for anything else.
            kind = try GridEventKind(type: type, fields: fields.filter { k, _ in type.fields.contains { $0.name == k } })
        } else {
            try GridEvent.validateCustomName(typeName)
            var custom = resourceFields
            for (k, v) in fields { custom[k] = v }
            custom.merge(trace) { $1 }
            if let message, custom["message"] == nil { custom["message"] = .string(message) }
            custom["level"] = .string(level(record))
            custom = trimmed(custom)
            kind = .custom(name: typeName, fields: custom,
                           entities: unique(resourceEntities + LogEntry.entities(from: custom, keys: entityKeys)))
        }
        // An id of ours on the record is kept; otherwise the id is derived from the record's bytes.
        var id: String
        if case .string(let given)? = attrs["event.id"] {
            id = given
        } else {
            // `event-<type>-<t>-<n>`: `t` from the record's identity bytes and its timestamp, `n` its ordinal in the
            // request: the rule `grid-cli emit` uses for lines (`LineIds`).
            id = identity.withUnsafeBytes { LineIds.id(for: $0, typeName: kind.typeName, timestamp: timestamp, line: ordinal) }
        }
        let event = GridEvent(id: id, timestamp: timestamp, kind: kind)
        try event.validate()
        return event
    }

    static func unique(_ ids: [String]) -> [String] {
        var out: [String] = []
        for id in ids where !out.contains(id) { out.append(id) }
        return Array(out.prefix(32))
    }

    /// At most 64 fields, the first in name order kept.
    static func trimmed(_ fields: [String: FieldValue]) -> [String: FieldValue] {
        guard fields.count > GridEvent.Limits.maxCustomFields else { return fields }
        var out: [String: FieldValue] = [:]
        for k in fields.keys.sorted().prefix(GridEvent.Limits.maxCustomFields) { out[k] = fields[k] }
        return out
    }

    /// A trace or span id as lowercase hex. Protobuf carries the bytes. OTLP/JSON carries hex text, which the
    /// generated JSON decoder (proto3 JSON: bytes are base64) read as base64: hex digits are base64 letters and
    /// 32 or 16 of them decode without padding, so encoding those bytes as base64 again gives the text back exactly.
    static func hexId(_ bytes: Data, length: Int, encoding: Encoding, what: String) throws(EventError) -> String {
        let text: String
        switch encoding {
        case .protobuf:
            guard bytes.count == length else { throw EventError("\(what) must be \(length) bytes, not \(bytes.count)") }
            text = bytes.map { ($0 < 16 ? "0" : "") + String($0, radix: 16) }.joined()
        case .json:
            text = bytes.base64EncodedString().lowercased()
            guard text.count == 2 * length, text.allSatisfy(\.isHexDigit) else {
                throw EventError("\(what) must be \(2 * length) hex digits")
            }
        }
        return text
    }

    /// swift-log's level for the record: from `severity_number` (1-4 trace, 5-8 debug, 9-12 info, 13-16 warning,
    /// 17-20 error, 21-24 critical), else from `severity_text`, else info.
    static func level(_ record: Grid_Otlp_V1_LogRecord) -> String {
        let n = record.severityNumber.rawValue
        if n > 0 {
            switch n {
            case 1...4: return "trace"
            case 5...8: return "debug"
            case 9...12: return "info"
            case 13...16: return "warning"
            case 17...20: return "error"
            default: return "critical"
            }
        }
        switch record.severityText.lowercased() {
        case "trace": return "trace"
        case "debug": return "debug"
        case "notice": return "notice"
        case "warn", "warning": return "warning"
        case "error", "err": return "error"
        case "fatal", "critical", "crit": return "critical"
        default: return "info"
        }
    }

    /// Attributes by key (the first of a repeated key).
    static func attributes(_ list: [Grid_Otlp_V1_KeyValue]) -> [String: FieldValue] {
        var out: [String: FieldValue] = [:]
        for kv in list where out[kv.key] == nil { out[kv.key] = value(kv.value) }
        return out
    }

    /// A scalar as itself; arrays, maps and bytes as text (JSON-like; bytes as base64).
    static func value(_ v: Grid_Otlp_V1_AnyValue) -> FieldValue {
        switch v.value {
        case .stringValue(let s): return .string(LogEntry.truncated(s))
        case .boolValue(let b): return .bool(b)
        case .intValue(let i): return .int(i)
        case .doubleValue(let d): return d.isFinite ? .double(d) : .string(String(d))
        case .none: return .null
        default: return .string(LogEntry.truncated(text(v)))
        }
    }

    /// Any value as text: a string as it is, others as JSON.
    static func text(_ v: Grid_Otlp_V1_AnyValue) -> String {
        switch v.value {
        case .stringValue(let s): return s
        case .boolValue(let b): return String(b)
        case .intValue(let i): return String(i)
        case .doubleValue(let d): return String(d)
        case .bytesValue(let b): return b.base64EncodedString()
        case .arrayValue(let a): return "[" + a.values.map(json).joined(separator: ",") + "]"
        case .kvlistValue(let m): return "{" + m.values.map { quoted($0.key) + ":" + json($0.value) }.joined(separator: ",") + "}"
        case .none: return ""
        }
    }

    static func json(_ v: Grid_Otlp_V1_AnyValue) -> String {
        switch v.value {
        case .stringValue(let s): return quoted(s)
        case .bytesValue: return quoted(text(v))
        case .none: return "null"
        default: return text(v)
        }
    }

    static func quoted(_ s: String) -> String {
        var w = JSONWriter()
        w.string(s)
        return w.text
    }

    // MARK: Answers

    /// The success answer: empty, or a partial success naming how many records were rejected and why.
    public static func response(_ outcome: Outcome, encoding: Encoding) -> [UInt8] {
        var r = Grid_Otlp_V1_ExportLogsServiceResponse()
        if outcome.rejected > 0 {
            r.partialSuccess.rejectedLogRecords = Int64(outcome.rejected)
            r.partialSuccess.errorMessage = outcome.errorMessage
        }
        return serialize(r, encoding)
    }

    /// The body of a 4xx or 5xx answer: a `google.rpc.Status` with the message.
    public static func status(_ message: String, code: Int32 = 3, encoding: Encoding) -> [UInt8] {
        var s = Grid_Otlp_V1_Status()
        s.code = code
        s.message = message
        return serialize(s, encoding)
    }

    static func serialize(_ m: some SwiftProtobuf.Message, _ encoding: Encoding) -> [UInt8] {
        switch encoding {
        case .protobuf: return (try? m.serializedBytes()) ?? []
        case .json: return (try? m.jsonUTF8Bytes()) ?? Array("{}".utf8)
        }
    }
}
