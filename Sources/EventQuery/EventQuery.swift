import EventStore
import GridEvents

/// A structured query: filters combined freely, an order, a page size and an opaque cursor.
public struct EventQuery: Sendable, Equatable {
    /// Event types to match (empty: all).
    public var types: [EventType] = []
    /// Only custom events with this name.
    public var customName: String?
    /// Only events that mention this entity.
    public var entity: String?
    /// Time range, microseconds: `since` inclusive, `until` exclusive.
    public var since: Int64?
    public var until: Int64?
    /// Ids starting with this (a trailing `*` is allowed: `event-spawn_*`).
    public var idPrefix: String?
    /// Words that must all appear in the event's string fields, and "quoted phrases" whose words must appear in
    /// order inside one field (`TextQuery`): `disk full`, `"connection refused" node-7`.
    public var text: String?
    public var newestFirst = true
    public var limit = 50
    /// Continue after the page that returned this cursor. Stays valid while new events arrive.
    public var cursor: String?

    public init(types: [EventType] = [], entity: String? = nil, since: Int64? = nil, until: Int64? = nil,
                idPrefix: String? = nil, newestFirst: Bool = true, limit: Int = 50, cursor: String? = nil,
                text: String? = nil) {
        self.text = text
        self.types = types
        self.entity = entity
        self.since = since
        self.until = until
        self.idPrefix = idPrefix
        self.newestFirst = newestFirst
        self.limit = limit
        self.cursor = cursor
    }

    /// The position a cursor this server issued stands for (nil for anything else): for clients and tests that
    /// page by position.
    public static func position(ofCursor cursor: String) -> EventPosition? {
        try? Cursor.decode(cursor)
    }

    var range: Range<Int64> {
        let lo = since ?? Int64.min
        let hi = until ?? Int64.max
        return lo..<max(lo, hi)
    }

    /// The text filter parsed (nil without one, or when it has no word: such a query matches nothing).
    var textQuery: TextQuery? { text.flatMap { TextQuery($0) } }

    var prefix: String? {
        guard let p = idPrefix else { return nil }
        return p.hasSuffix("*") ? String(p.dropLast()) : p
    }

    /// A JSON object describing this query (what the translator shows as its interpretation).
    public func json(into w: inout JSONWriter) {
        w.raw("{")
        var first = true
        func key(_ k: String) {
            if !first { w.raw(",") }
            first = false
            w.string(k)
            w.raw(":")
        }
        if !types.isEmpty {
            key("types")
            w.stringArray(types.map(\.name))
        }
        if let customName { key("custom_name"); w.string(customName) }
        if let entity { key("entity"); w.string(entity) }
        if let since { key("since"); w.string(TimeText.format(since)) }
        if let until { key("until"); w.string(TimeText.format(until)) }
        if let idPrefix { key("id_prefix"); w.string(idPrefix) }
        if let text { key("text"); w.string(text) }
        key("order")
        w.string(newestFirst ? "newest_first" : "oldest_first")
        key("limit")
        w.raw(String(limit))
        w.raw("}")
    }
}

/// A page of results.
public struct QueryPage: Sendable {
    public var events: [GridEvent]
    /// Positions of the events (for adjacency look-ups and cursors).
    public var positions: [EventPosition]
    /// Pass back as `cursor` for the next page; nil when there is none.
    public var nextCursor: String?
}

/// What a group-by counts by.
public enum GroupKey: String, Sendable, CaseIterable {
    case type, entity, agent, node, minute, hour, day

    var bucketMicros: Int64? {
        switch self {
        case .minute: return 60_000_000
        case .hour: return 3_600_000_000
        case .day: return 86_400_000_000
        default: return nil
        }
    }
}

/// One group of an aggregation.
public struct Bucket: Sendable, Equatable {
    public var key: String
    public var count: Int
    public init(key: String, count: Int) {
        self.key = key
        self.count = count
    }
}

/// A query the engine refuses, with a message for the user.
public struct QueryError: Error, Sendable, Equatable, CustomStringConvertible {
    public enum Code: String, Sendable { case badCursor = "bad_cursor", badLimit = "bad_limit", badQuery = "bad_query", notFound = "not_found" }
    public var code: Code
    public var message: String
    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }
    public var description: String { message }
}

/// Opaque cursors: `c1` followed by the position's timestamp and location in hex.
enum Cursor {
    static func encode(_ p: EventPosition) -> String {
        "c1" + hex(UInt64(bitPattern: p.timestamp)) + hex(p.location)
    }

    static func decode(_ s: String) throws(QueryError) -> EventPosition {
        let b = Array(s.utf8)
        guard b.count == 34, s.hasPrefix("c1"), let ts = UInt64(String(s.dropFirst(2).prefix(16)), radix: 16),
            let loc = UInt64(String(s.suffix(16)), radix: 16)
        else { throw QueryError(.badCursor, "cursor \"\(s.prefix(40))\" is not one this server issued") }
        return EventPosition(timestamp: Int64(bitPattern: ts), location: loc)
    }

    static func hex(_ v: UInt64) -> String {
        let s = String(v, radix: 16)
        return String(repeating: "0", count: 16 - s.count) + s
    }
}
