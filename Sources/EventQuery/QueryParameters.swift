import EventStore
import GridEvents

/// A query parameter that cannot be used: the error code and message the HTTP API answers with (status 400).
public struct ParameterError: Error, Sendable, Equatable, CustomStringConvertible {
    public var code: String
    public var message: String
    public init(_ code: String, _ message: String) {
        self.code = code
        self.message = message
    }
    public var description: String { "\(code): \(message)" }
}

/// The parsing of URL query parameters (`type`, `entity`, `since`, `until`, `prefix`, `text`, `limit`, `cursor`,
/// `order`)
/// into an `EventQuery`. Pure: it sees the already percent-decoded values through a look-up function, so the HTTP
/// layer and the fuzz tests share it. Cursors are checked later, by `QueryEngine.find`.
public enum QueryParameters {
    /// Longest accepted parameter value, bytes.
    public static let maxParameter = 1024

    /// A look-up of the first value of a parameter, or nil when it is absent.
    public typealias Lookup = (String) -> String?

    /// The value of `name`; nil when absent or empty.
    /// - Throws: `bad_parameter` when longer than `maxParameter` bytes.
    public static func string(_ get: Lookup, _ name: String) throws(ParameterError) -> String? {
        guard let v = get(name), !v.isEmpty else { return nil }
        guard v.utf8.count <= maxParameter else {
            throw ParameterError("bad_parameter", "\(name) is longer than \(maxParameter) bytes")
        }
        return v
    }

    /// An integer parameter within `range`, or `value` when absent.
    /// - Throws: `bad_<name>` when not an integer or out of range.
    public static func int(_ get: Lookup, _ name: String, default value: Int, range: ClosedRange<Int>)
        throws(ParameterError) -> Int
    {
        guard let raw = try string(get, name) else { return value }
        guard let v = Int(raw) else {
            throw ParameterError("bad_\(name)", "\(name) must be an integer, got \"\(raw.prefix(40))\"")
        }
        guard range.contains(v) else {
            throw ParameterError("bad_\(name)", "\(name) must be \(range.lowerBound) to \(range.upperBound), got \(v)")
        }
        return v
    }

    /// An RFC 3339 time in microseconds since the epoch, or nil when absent.
    /// - Throws: `bad_time` when it does not parse.
    public static func time(_ get: Lookup, _ name: String) throws(ParameterError) -> Int64? {
        guard let raw = try string(get, name) else { return nil }
        guard let t = TimeText.parse(raw) else {
            throw ParameterError("bad_time", "\(name) must be RFC 3339 like 2026-11-29T02:10:00Z, got \"\(raw.prefix(40))\"")
        }
        return t
    }

    /// The comma-separated `type` parameter: catalogue names or `custom`; empty when absent.
    /// - Throws: `unknown_type` naming the first unknown type.
    public static func types(_ get: Lookup) throws(ParameterError) -> [EventType] {
        guard let raw = try string(get, "type") else { return [] }
        var types: [EventType] = []
        for name in raw.split(separator: ",") {
            guard let t = EventType(name: String(name)) ?? (name == "custom" ? .custom : nil) else {
                throw ParameterError(
                    "unknown_type",
                    "unknown event type \"\(name.prefix(60))\"; known: \(EventType.allCases.map(\.name).joined(separator: ", "))")
            }
            types.append(t)
        }
        return types
    }

    /// The structured filter of `GET /api/events` (and an entity's timeline).
    /// - Throws: the first bad parameter, in the order type, entity, since, until, prefix, text, limit, cursor, order.
    public static func structuredQuery(_ get: Lookup) throws(ParameterError) -> EventQuery {
        var q = EventQuery()
        q.types = try types(get)
        if let entity = try string(get, "entity") {
            guard (try? GridEvent.validateId(entity, what: "entity")) != nil else {
                throw ParameterError("bad_entity", "invalid entity id")
            }
            q.entity = entity
        }
        q.since = try time(get, "since")
        q.until = try time(get, "until")
        if let s = q.since, let u = q.until, s >= u { throw ParameterError("bad_time", "since must be before until") }
        q.idPrefix = try string(get, "prefix")
        if let text = try string(get, "text") {
            guard TextQuery(text) != nil else {
                throw ParameterError("bad_text", "text must hold a word to search for (letters or digits)")
            }
            q.text = text
        }
        q.limit = try int(get, "limit", default: 50, range: 1...QueryEngine.maxLimit)
        q.cursor = try string(get, "cursor")
        if let order = try string(get, "order") {
            guard order == "newest" || order == "oldest" else {
                throw ParameterError("bad_order", "order must be newest or oldest")
            }
            q.newestFirst = order == "newest"
        }
        return q
    }
}
