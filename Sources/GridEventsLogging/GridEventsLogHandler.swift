import EventEmitter
import GridBase
import GridEvents
import Logging

/// Where `GridEventsLogHandler` hands its `log` events. `emitLog` is called on the logging caller's thread and
/// must not block it: the emitter queues the event (and, at worst, drops its oldest), grid-eventd's own sink
/// queues it for its writer.
public protocol GridEventsLogSink: Sendable {
    func emitLog(_ entry: LogEntry, timestamp: Int64)
}

extension EventEmitter: GridEventsLogSink {
    /// Queues the record as a `log` event with an id of the emitter's own; never waits for the daemon
    /// (with the default `whenFull: .dropOldest`).
    public func emitLog(_ entry: LogEntry, timestamp: Int64) {
        _ = emit(.log(entry), at: timestamp)
    }
}

/// A swift-log backend that records every log record at or above `eventLevel` as a grid `log` event:
///
/// ```swift
/// let events = EventEmitter()
/// LoggingSystem.bootstrap { label in
///     MultiplexLogHandler([StreamLogHandler.standardError(label: label),
///                          GridEventsLogHandler(label: label, emitter: events, eventLevel: .info)])
/// }
/// ```
///
/// Fields: `level`, `label`, `message`, `source`, `file`, `line`, and the merged metadata (the handler's, the
/// metadata provider's, the call's; later wins) as fields named by `LogEntry.fieldName(for:)`; the error of the
/// call, when one is given, as the field `error`. Metadata whose key (made a field name) is one of `entityKeys`
/// (default `agent_id`, `node_id`) and whose value is a valid id also becomes an entity of the event, so an
/// entity's timeline includes what the services logged about it. Strings longer than 4096 bytes are cut there;
/// past 64 metadata fields the rest (in key order) are left out.
///
/// Cost: one `LogEntry` built and one `emit` (no I/O, no waiting) per record at or above the level; nothing below it.
public struct GridEventsLogHandler: LogHandler {
    public let label: String
    /// Records below this level are not recorded as events, whatever `logLevel` is set to later (a
    /// `MultiplexLogHandler` sets every handler's `logLevel` at once).
    public let eventLevel: Logger.Level
    public var logLevel: Logger.Level
    public var metadata: Logger.Metadata = [:]
    public var metadataProvider: Logger.MetadataProvider?
    let sink: any GridEventsLogSink
    let entityKeys: [String]

    /// - Parameters:
    ///   - emitter: the process's emitter (events go where `EVENT_STORAGE` says; a disabled emitter costs nothing).
    ///   - eventLevel: the lowest level recorded as an event (default `.info`).
    ///   - entityKeys: metadata keys naming entities, besides `agent_id` and `node_id`.
    public init(label: String, emitter: EventEmitter, eventLevel: Logger.Level = .info, entityKeys: [String] = [],
                metadataProvider: Logger.MetadataProvider? = LoggingSystem.metadataProvider) {
        self.init(label: label, sink: emitter, eventLevel: eventLevel, entityKeys: entityKeys, metadataProvider: metadataProvider)
    }

    /// The same with any sink (grid-eventd records its own logs through its writer).
    public init(label: String, sink: any GridEventsLogSink, eventLevel: Logger.Level = .info, entityKeys: [String] = [],
                metadataProvider: Logger.MetadataProvider? = LoggingSystem.metadataProvider) {
        self.label = label
        self.sink = sink
        self.eventLevel = eventLevel
        self.logLevel = eventLevel
        self.entityKeys = LogEntry.entityKeys(adding: entityKeys)
        self.metadataProvider = metadataProvider
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        guard event.level >= eventLevel else { return }
        // Merged only when there is more than one source (a merge rehashes every key).
        let provided = metadataProvider?.get()
        var merged: Logger.Metadata
        if provided == nil, metadata.isEmpty {
            merged = event.metadata ?? [:]
        } else {
            merged = metadata
            if let provided { merged.merge(provided) { $1 } }
            if let own = event.metadata { merged.merge(own) { $1 } }
        }
        var fields: [String: FieldValue] = [:]
        for key in merged.keys.sorted() {
            let name = LogEntry.fieldName(for: key)
            guard fields[name] == nil, fields.count < GridEvent.Limits.maxCustomFields else { continue }
            fields[name] = Self.fieldValue(merged[key]!)
        }
        if let error = event.error, fields["error"] == nil, fields.count < GridEvent.Limits.maxCustomFields {
            fields["error"] = .string(LogEntry.truncated(String(describing: error)))
        }
        let entry = LogEntry(
            level: event.level.rawValue, label: LogEntry.truncated(label), message: LogEntry.truncated(event.message.description),
            source: LogEntry.truncated(event.source), file: LogEntry.truncated(event.file), line: Int(exactly: event.line),
            metadata: fields, entities: LogEntry.entities(from: fields, keys: entityKeys))
        sink.emitLog(entry, timestamp: GridClock.nowMicros())
    }

    /// A metadata value as a field: strings as they are; integers, finite doubles and booleans given as such
    /// (`"\(n)"` interpolated metadata is a string already); anything else (arrays, dictionaries, other types)
    /// as its description.
    public static func fieldValue(_ value: Logger.Metadata.Value) -> FieldValue {
        switch value {
        case .string(let s):
            return .string(LogEntry.truncated(s))
        case .stringConvertible(let v):
            switch v {
            case let b as Bool: return .bool(b)
            case let i as Int: return .int(Int64(i))
            case let i as Int64: return .int(i)
            case let i as Int32: return .int(Int64(i))
            case let i as UInt32: return .int(Int64(i))
            case let i as UInt64 where i <= UInt64(Int64.max): return .int(Int64(i))
            case let d as Double where d.isFinite: return .double(d)
            case let f as Float where f.isFinite: return .double(Double(f))
            default: return .string(LogEntry.truncated(v.description))
            }
        case .array, .dictionary:
            return .string(LogEntry.truncated(value.description))
        }
    }
}
