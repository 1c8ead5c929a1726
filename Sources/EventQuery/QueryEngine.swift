import EventStore
import GridEvents

/// Runs queries over a store, choosing the index that answers each one: an entity's adjacency list, the
/// per-type lists, or the time index. Nothing here scans the whole store.
public final class QueryEngine: Sendable {
    public let store: EventStore
    /// Largest page a query may ask for.
    public static let maxLimit = 1000
    /// Most events an aggregation or state derivation reads.
    public static let maxScan = 100_000

    public init(store: EventStore) {
        self.store = store
    }

    // MARK: Finding

    /// A page of events matching `query`.
    /// - Throws: `QueryError` for a limit outside 1...1000 or a cursor this server did not issue.
    public func find(_ query: EventQuery) throws(QueryError) -> QueryPage {
        guard (1...Self.maxLimit).contains(query.limit) else {
            throw QueryError(.badLimit, "limit must be 1 to \(Self.maxLimit), got \(query.limit)")
        }
        let cursor = try query.cursor.map { (c) throws(QueryError) in try Cursor.decode(c) }
        var out: [StoredEvent] = []
        let wanted = query.limit + 1
        scan(query, after: cursor, chunk: min(256, wanted)) { e in
            out.append(e)
            return out.count < wanted
        }
        let more = out.count > query.limit
        if more { out.removeLast() }
        return QueryPage(
            events: out.compactMap { try? GridEvent(stored: $0) }, positions: out.map(\.position),
            nextCursor: more ? out.last.map { Cursor.encode($0.position) } : nil)
    }

    /// Calls `body` with each matching stored event in query order until it returns false.
    func scan(_ query: EventQuery, after cursor: EventPosition?, chunk: Int = 256, _ body: (StoredEvent) -> Bool) {
        let range = query.range
        let prefix = query.prefix
        let typeCodes = Set(query.types.map(\.rawValue))
        func matches(_ e: StoredEvent) -> Bool {
            guard range.contains(e.timestamp) else { return false }
            if !typeCodes.isEmpty, !typeCodes.contains(e.typeCode) { return false }
            if let prefix, !e.id.hasPrefix(prefix) { return false }
            if let name = query.customName {
                guard e.typeCode == EventType.custom.rawValue, let g = try? GridEvent(stored: e), g.typeName == name else { return false }
            }
            return true
        }
        let newest = query.newestFirst
        if let entity = query.entity {
            // The entity's adjacency list, newest first.
            if newest {
                var before = cursor ?? EventPosition(timestamp: range.upperBound == .max ? .max : range.upperBound, location: 0)
                while true {
                    let page = store.timeline(entity: entity, limit: chunk, before: before)
                    if page.isEmpty { return }
                    for e in page {
                        if e.timestamp < range.lowerBound { return }
                        if matches(e), !body(e) { return }
                    }
                    before = page.last!.position
                    if page.count < chunk { return }
                }
            } else {
                var all = store.timeline(entity: entity, limit: Self.maxScan).filter { range.contains($0.timestamp) }
                all.reverse()
                for e in all {
                    if let cursor, !(cursor < e.position) { continue }
                    if matches(e), !body(e) { return }
                }
            }
            return
        }
        // Sources, each sorted in query order; merged by position.
        var sources: [(EventPosition?, Int) -> [StoredEvent]] = []
        var types = query.types.map(\.rawValue)
        if types.isEmpty, let prefix, prefix.hasPrefix("event-") {
            // An id prefix names types: `event-spawn_` -> spawn_requested, spawn_succeeded, spawn_failed.
            let stem = String(prefix.dropFirst("event-".count))
            let present = store.typeCounts().keys
            types = present.filter { code in
                guard let t = EventType(rawValue: code) else { return false }
                if t == .custom { return true }
                let name = t.name + "-"
                return name.hasPrefix(stem) || stem.hasPrefix(name)
            }.sorted()
            if types.isEmpty { return }
        }
        if query.customName != nil, types.isEmpty { types = [EventType.custom.rawValue] }
        if types.isEmpty {
            sources.append { after, n in self.store.events(in: range, limit: n, newestFirst: newest, after: after) }
        } else {
            for t in types {
                sources.append { after, n in self.store.events(type: t, in: range, limit: n, newestFirst: newest, after: after) }
            }
        }
        var position = cursor
        let precedes: (EventPosition, EventPosition) -> Bool = newest ? { $1 < $0 } : { $0 < $1 }
        while true {
            var merged: [StoredEvent] = []
            for source in sources { merged += source(position, chunk) }
            if merged.isEmpty { return }
            merged.sort { precedes($0.position, $1.position) }
            // Only the first `chunk` are safe: a source may hold more beyond its own chunk.
            let page = merged.prefix(chunk)
            for e in page where matches(e) {
                if !body(e) { return }
            }
            position = page.last!.position
            if merged.count <= chunk, sources.count == 1 { return }
        }
    }

    // MARK: Counting and grouping

    /// How many events match. A type-in-window count with no other filter is answered from the type index with
    /// binary searches; other filters read the matching events (at most `maxScan`).
    public func count(_ query: EventQuery) -> Int {
        if query.entity == nil, query.idPrefix == nil, query.customName == nil {
            let types = query.types.isEmpty ? Array(store.typeCounts().keys) : query.types.map(\.rawValue)
            return types.reduce(0) { $0 + store.count(type: $1, in: query.range) }
        }
        var n = 0
        scan(query, after: nil) { _ in
            n += 1
            return n < Self.maxScan
        }
        return n
    }

    /// Counts of matching events per group, largest first (ties by key); `top` keeps the first N.
    public func group(_ query: EventQuery, by key: GroupKey, top: Int? = nil) -> [Bucket] {
        var counts: [String: Int] = [:]
        let simple = query.entity == nil && query.idPrefix == nil && query.customName == nil
        switch key {
        case .type where simple:
            let types = query.types.isEmpty ? Array(store.typeCounts().keys) : query.types.map(\.rawValue)
            for t in types {
                let n = store.count(type: t, in: query.range)
                if n > 0 { counts[EventType(rawValue: t)?.name ?? String(t), default: 0] += n }
            }
        case .minute where simple, .hour where simple, .day where simple:
            let width = key.bucketMicros!
            let types = query.types.isEmpty ? Array(store.typeCounts().keys) : query.types.map(\.rawValue)
            for t in types {
                for ts in store.timestamps(type: t, in: query.range) {
                    let start = ts >= 0 ? ts / width * width : ((ts + 1) / width - 1) * width
                    counts[TimeText.format(start), default: 0] += 1
                }
            }
        default:
            var seen = 0
            scan(query, after: nil) { stored in
                seen += 1
                guard let e = try? GridEvent(stored: stored) else { return seen < Self.maxScan }
                for k in Self.keys(of: e, key) { counts[k, default: 0] += 1 }
                return seen < Self.maxScan
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
            return [TimeText.format(e.timestamp / width * width)]
        }
    }
}
