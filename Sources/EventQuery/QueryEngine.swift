import EventRecords
import EventStore
import GridEvents

/// Runs queries over a store, choosing the index that answers each one: an entity's adjacency list, the
/// per-type lists, or the time index. Nothing here scans the whole store.
public final class QueryEngine: Sendable {
    public let store: EventStore
    /// Largest page a query may ask for.
    public static let maxLimit = 1000

    public init(store: EventStore) {
        self.store = store
    }

    // MARK: Finding

    /// A page of events matching `query`: exactly `limit` events and a cursor when more match, else all that
    /// remain and no cursor.
    /// - Throws: `QueryError` for a limit outside 1...1000 or a cursor this server did not issue.
    public func find(_ query: EventQuery) throws(QueryError) -> QueryPage {
        guard (1...Self.maxLimit).contains(query.limit) else {
            throw QueryError(.badLimit, "limit must be 1 to \(Self.maxLimit), got \(query.limit)")
        }
        let cursor = try query.cursor.map { (c) throws(QueryError) in try Cursor.decode(c) }
        if let text = query.text, TextQuery(text) == nil {
            throw QueryError(.badQuery, "text \"\(text.prefix(60))\" has no word to search for (words are letters and digits)")
        }
        var out: [StoredEvent] = []
        scan(query, after: cursor) { e in
            out.append(e)
            return out.count <= query.limit
        }
        let more = out.count > query.limit
        if more { out.removeLast() }
        return QueryPage(
            events: out.compactMap { try? GridEvent(stored: $0) }, positions: out.map(\.position),
            nextCursor: more ? out.last.map { Cursor.encode($0.position) } : nil)
    }

    /// The index lists a query walks, and the type codes it keeps. The word index when it searches text (the
    /// words' lists intersected, with the entity's when it names one); else an entity's adjacency list when it names
    /// one; else its types' lists; else the types an `event-<type>` id prefix names; else every event.
    func plan(_ query: EventQuery) -> (sources: [ReadSource], types: Set<UInt16>?) {
        var types = Set(query.types.map(\.rawValue))
        if query.customName != nil {
            types = types.isEmpty ? [EventType.custom.rawValue] : types.intersection([EventType.custom.rawValue])
        }
        if types.isEmpty, query.types.isEmpty, let prefix = query.prefix, prefix.hasPrefix("event-") {
            // An id prefix names types: `event-spawn_` -> spawn_requested, spawn_succeeded, spawn_failed (and custom
            // events, whose names may start so).
            let stem = String(prefix.dropFirst("event-".count))
            types = Set(EventType.allCases.filter { t in
                if t == .custom { return true }
                let name = t.name + "-"
                return name.hasPrefix(stem) || stem.hasPrefix(name)
            }.map(\.rawValue))
        }
        let filter: Set<UInt16>? = types.isEmpty && query.types.isEmpty && query.customName == nil ? nil : types
        if let text = query.textQuery { return ([.words(text.words, entity: query.entity)], filter) }
        if let entity = query.entity { return ([.entity(entity)], filter) }
        if let filter { return (filter.sorted().map { ReadSource.type($0) }, filter) }
        if let prefix = query.prefix { return ([.idPrefix(prefix)], nil) }
        return ([.all], nil)
    }

    /// Calls `body` with each matching stored event in query order until it returns false: one merging read over
    /// the chosen lists, nothing skipped and nothing capped.
    func scan(_ query: EventQuery, after cursor: EventPosition?, _ body: (StoredEvent) -> Bool) {
        let (sources, types) = plan(query)
        if types?.isEmpty == true { return }
        let name = query.customName
        let text = query.textQuery
        if query.text != nil, text == nil { return }
        store.read(sources, ReadBounds(range: query.range, newestFirst: query.newestFirst, after: cursor), types: types,
                   idPrefix: query.prefix) { e in
            if let name {
                guard e.typeCode == EventType.custom.rawValue, let g = try? GridEvent(stored: e), g.typeName == name else { return true }
            }
            // The word index gives candidates (words by hash, long words by their start; none at all in a store
            // opened without it): the event's own fields decide, phrases included.
            if let text {
                if let entity = query.entity, !e.entities.contains(entity) { return true }
                guard GridText.matches(text, typeCode: e.typeCode, payload: e.payload) else { return true }
            }
            return body(e)
        }
    }

    /// Whether a query can be answered from positions and type codes alone (no id or custom-name filter).
    private func positional(_ query: EventQuery) -> Bool { query.idPrefix == nil && query.customName == nil && query.text == nil }

    /// Calls `body` with the timestamp and type code of each matching event, for queries without id or name
    /// filters: no event is read. The type code is known when the query walks type lists or an entity's
    /// adjacency list (0 when it walks every event).
    private func scanPositions(_ query: EventQuery, _ body: (Int64, UInt16) -> Void) {
        let (sources, types) = plan(query)
        if types?.isEmpty == true { return }
        store.readPositions(sources, ReadBounds(range: query.range, newestFirst: false)) { p, t in
            if let types {
                guard let t, types.contains(t) else { return true }
            }
            body(p.timestamp, t ?? 0)
            return true
        }
    }

    // MARK: Counting and grouping

    /// How many events match, exactly. A type-in-window count is answered from the type lists with binary
    /// searches; an entity's from its adjacency lists without reading events; id and name filters read the
    /// candidate events.
    public func count(_ query: EventQuery) -> Int {
        if query.entity == nil, positional(query) {
            let types = query.types.isEmpty ? Array(store.typeCounts().keys) : query.types.map(\.rawValue)
            return types.reduce(0) { $0 + store.count(type: $1, in: query.range) }
        }
        var n = 0
        if positional(query), query.entity != nil {
            scanPositions(query) { _, _ in n += 1 }
            return n
        }
        scan(query, after: nil) { _ in
            n += 1
            return true
        }
        return n
    }

    /// Counts of matching events per group, largest first (ties by key), or by key for time buckets; `top` keeps
    /// the first N. Exact: every matching event is counted. Types and time buckets are counted from the indexes
    /// alone; other keys read each matching event.
    public func group(_ query: EventQuery, by key: GroupKey, top: Int? = nil) -> [Bucket] {
        var counts: [String: Int] = [:]
        switch key {
        case .type where query.entity == nil && positional(query):
            let types = query.types.isEmpty ? Array(store.typeCounts().keys) : query.types.map(\.rawValue)
            for t in types where t != EventType.custom.rawValue {
                let n = store.count(type: t, in: query.range)
                if n > 0 { counts[EventType(rawValue: t)?.name ?? String(t), default: 0] += n }
            }
            if types.contains(EventType.custom.rawValue) { countCustomNames(query, into: &counts) }
        case .type where positional(query):
            var byCode: [UInt16: Int] = [:]
            scanPositions(query) { _, t in byCode[t, default: 0] += 1 }
            for (t, n) in byCode where t != EventType.custom.rawValue {
                counts[EventType(rawValue: t)?.name ?? String(t), default: 0] += n
            }
            if byCode[EventType.custom.rawValue] != nil { countCustomNames(query, into: &counts) }
        case .minute where positional(query), .hour where positional(query), .day where positional(query):
            let width = key.bucketMicros!
            var byStart: [Int64: Int] = [:]
            scanPositions(query) { ts, _ in
                byStart[ts >= 0 ? ts / width * width : ((ts + 1) / width - 1) * width, default: 0] += 1
            }
            for (start, n) in byStart { counts[TimeText.format(start)] = n }
        default:
            scan(query, after: nil) { stored in
                guard let e = try? GridEvent(stored: stored) else { return true }
                for k in Self.keys(of: e, key) { counts[k, default: 0] += 1 }
                return true
            }
        }
        var buckets = counts.map { Bucket(key: $0.key, count: $0.value) }
        if key.bucketMicros != nil {
            buckets.sort { $0.key < $1.key }
        } else {
            buckets.sort { $0.count != $1.count ? $0.count > $1.count : $0.key < $1.key }
        }
        if let top { buckets = Array(buckets.prefix(max(0, top))) }
        return buckets
    }

    /// Custom events count under their own names: those are read.
    private func countCustomNames(_ query: EventQuery, into counts: inout [String: Int]) {
        var q = query
        q.types = [.custom]
        scan(q, after: nil) { stored in
            if let e = try? GridEvent(stored: stored) { counts[e.typeName, default: 0] += 1 }
            return true
        }
    }

    static func keys(of e: GridEvent, _ key: GroupKey) -> [String] {
        switch key {
        case .type: return [e.typeName]
        case .entity: return e.entities
        case .agent, .node:
            let field = key == .agent ? "agent_id" : "node_id"
            for (name, value) in e.kind.namedFields where name == field {
                if case .string(let s) = value { return [s] }
            }
            return []
        case .minute, .hour, .day:
            let width = key.bucketMicros!
            let ts = e.timestamp
            return [TimeText.format(ts >= 0 ? ts / width * width : ((ts + 1) / width - 1) * width)]
        }
    }
}
