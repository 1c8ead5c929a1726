/// An event as read back from the store.
public struct StoredEvent: Sendable, Equatable {
    public var id: String
    public var idHash: UInt64
    public var typeCode: UInt16
    public var timestamp: Int64
    public var entities: [String]
    public var payload: [UInt8]
    /// Its place in time order; pass it back as a cursor.
    public var position: EventPosition

    /// The concept record this event was stored from.
    public var record: ConceptRecord {
        ConceptRecord(id: id, typeCode: typeCode, timestamp: timestamp, entities: entities, payload: payload)
    }
}

/// A neighbor of a node in the event graph.
public struct Neighbor: Sendable, Equatable, Hashable {
    /// The neighbor's id hash.
    public var node: UInt64
    /// The neighbor's id when it is an event in the store.
    public var eventId: String?
    public var edgeType: UInt16
    public var timestamp: Int64
    /// True when the edge goes from the queried node to the neighbor.
    public var outgoing: Bool
}

/// Counts and sizes of a store.
public struct StoreStats: Sendable, Equatable {
    public var segments: Int
    public var sealedSegments: Int
    public var events: Int
    public var adjacencyEntries: Int
    public var duplicatesIgnored: Int
    /// Bytes of frames written (excluding preallocated, unwritten space).
    public var dataBytes: Int
    /// Bytes the segment files reserve on disk.
    public var fileBytes: Int
    public var lastSequence: UInt64
    public var minTimestamp: Int64?
    public var maxTimestamp: Int64?
    /// Sealed segments stored compacted, and the bytes their compacted files take.
    public var compactedSegments: Int = 0
    public var compactedBytes: Int = 0
    /// Events stored in compacted segments (for bytes per event after compaction).
    public var compactedEvents: Int = 0
    /// Bytes of written frames in the segments still stored uncompacted.
    public var uncompactedDataBytes: Int = 0
    /// Index files and their bytes.
    public var indexFiles: Int = 0
    public var indexBytes: Int = 0
    /// Bytes on disk of everything: segment files (as reserved), compacted files and index files.
    public var diskBytes: Int = 0
    /// What retention has deleted since the store was created.
    public var retention = RetentionTotals()
    /// Damage found by reads since open (frames or blocks failing their checksums), never served.
    public var readDamage: [Damage] = []
}

extension EventStore {
    /// Limit applied when a read asks for more (bounded memory per read).
    public static let maxReadLimit = 100_000

    private func materialize(_ loc: Location) -> StoredEvent? {
        guard let view = conceptView(loc), let tail = view.decodeTail() else { return nil }
        return StoredEvent(
            id: view.id, idHash: view.idHash, typeCode: view.typeCode, timestamp: view.timestamp,
            entities: tail.entities, payload: tail.payload,
            position: EventPosition(timestamp: view.timestamp, location: loc.raw))
    }

    /// Segments to search for an id or hash, newest first: with `hint` (the event's timestamp), the active one
    /// and those whose time span holds it; without, all of them.
    private func searchOrder(hint: Int64?) -> [Segment] {
        guard let hint else { return segments.reversed() }
        return (active.map { [$0] } ?? []) + segments(spanning: hint)
    }

    /// Where the event with this id is stored (full-id compare). With `timestamp` (the event's own), only the
    /// segments whose time span holds it are searched: an event keeps its timestamp, so no other can hold it.
    private func locate(_ id: String, timestamp: Int64? = nil) -> Location? {
        let h = Hash.id(id)
        var idCopy = id
        for s in searchOrder(hint: timestamp) {
            if let mapped = s.mappedIndex, mapped.verifyIds() != nil { repairIndex(s) }
            var found: Location?
            s.index.forEachOffset(hash: h) { offset in
                let loc = Location(segment: s.id, offset: offset)
                if let view = conceptView(loc), idCopy.withUTF8({ view.idBytes.elementsEqual(UnsafeRawBufferPointer($0)) }) {
                    found = loc
                }
                return found == nil
            }
            if let found { return found }
        }
        return nil
    }

    /// Where the event with this id hash is stored (first match; no full-id compare). `hint`: its timestamp.
    /// An edge's timestamp is its event's, so the segments spanning `hint` are searched first; every segment
    /// only when they do not hold it (an edge stamped otherwise).
    private func locate(hash: UInt64, hint: Int64?) -> Location? {
        func search(_ candidates: [Segment]) -> Location? {
            for s in candidates {
                if let mapped = s.mappedIndex, mapped.verifyIds() != nil { repairIndex(s) }
                var found: Int?
                s.index.forEachOffset(hash: hash) { offset in
                    found = offset
                    return false
                }
                if let found { return Location(segment: s.id, offset: found) }
            }
            return nil
        }
        if let hint, let found = search(searchOrder(hint: hint)) { return found }
        return search(searchOrder(hint: nil))
    }

    private func clamp(_ limit: Int) -> Int { max(0, min(limit, Self.maxReadLimit)) }

    /// Whether an event with this id is stored. Reads no payload: a hash probe per segment.
    public func contains(id: String) -> Bool {
        lock.withLock { locate(id) != nil }
    }

    /// For each id, whether it is stored; one lock for the whole list. Probes every segment per id: with the
    /// events' timestamps at hand, `contains(ids:timestamps:)` is much cheaper.
    public func contains(ids: [String]) -> [Bool] {
        lock.withLock { ids.map { locate($0) != nil } }
    }

    /// For each event (id and its timestamp), whether it is stored: a resend after a lost ack carries the same
    /// timestamp, so only the segments whose time span holds it are searched (usually one or two, however many
    /// segments the store has). One lock for the whole list.
    public func contains(ids: [String], timestamps: [Int64]) -> [Bool] {
        precondition(ids.count == timestamps.count, "one timestamp per id")
        return lock.withLock { zip(ids, timestamps).map { locate($0, timestamp: $1) != nil } }
    }

    /// The event with this id, or nil. A hash probe per segment and a full-id compare.
    public func event(id: String) -> StoredEvent? {
        lock.withLock { locate(id).flatMap(materialize) }
    }

    /// Segments with their checked indexes, newest data first (by the newest timestamp they hold).
    private func indexedSegments(overlapping range: Range<Int64>? = nil) -> [(Segment, any SegmentIndex)] {
        var out: [(Segment, any SegmentIndex)] = []
        for s in segments where s.index.hasTimeRange {
            if let range, s.index.maxTimestamp < range.lowerBound || s.index.minTimestamp >= range.upperBound { continue }
            out.append((s, checkedIndex(s)))
        }
        return out.sorted { $0.1.maxTimestamp > $1.1.maxTimestamp }
    }

    /// An entity's events, newest first, from its adjacency lists. `before` continues a previous page.
    /// Candidates are chosen from the edges alone (an entity -> event edge carries the event's timestamp), and
    /// only the page that is returned is read and decoded: a compacted segment's blocks are decompressed only
    /// for the events that make the page. O(limit) after an O(log n) seek per segment.
    public func timeline(entity: String, limit: Int = 50, before: EventPosition? = nil) -> [StoredEvent] {
        let limit = clamp(limit)
        guard limit > 0 else { return [] }
        let node = Hash.id(entity)
        return lock.withLock {
            // Positions found through the index only (no event is read yet).
            var candidates: [EventPosition] = []
            var seen = Set<UInt64>()
            var edge = Int64.min  // the timestamp a segment must reach once `limit` candidates are known
            for (_, index) in indexedSegments() {
                if candidates.count >= limit {
                    candidates.sort { $1 < $0 }
                    edge = candidates[limit - 1].timestamp
                    if index.maxTimestamp < edge { break }
                }
                guard let list = index.edgeRun(node) else { continue }
                var taken = 0
                list.forEachDescending(before: list.count) { e in
                    if let before, e.timestamp > before.timestamp { return true }
                    if e.timestamp < edge { return false }
                    guard e.outgoing, !seen.contains(e.other), let loc = locate(hash: e.other, hint: e.timestamp) else { return true }
                    let p = EventPosition(timestamp: e.timestamp, location: loc.raw)
                    if let before, !(p < before) { return true }
                    seen.insert(e.other)
                    candidates.append(p)
                    taken += 1
                    return taken < limit
                }
            }
            candidates.sort { $1 < $0 }
            var out: [StoredEvent] = []
            for p in candidates where out.count < limit {
                guard let event = materialize(Location(raw: p.location)) else { continue }
                if let before, !(event.position < before) { continue }
                out.append(event)
            }
            out.sort { $1.position < $0.position }
            return out
        }
    }

    /// Events of one type with timestamps in `range`, newest first (or oldest first), after the cursor `after`
    /// in that order. O(log n + limit) per segment that overlaps the range.
    public func events(
        type: UInt16, in range: Range<Int64> = Int64.min..<Int64.max, limit: Int = 50, newestFirst: Bool = true,
        after cursor: EventPosition? = nil
    ) -> [StoredEvent] {
        let limit = clamp(limit)
        return lock.withLock {
            page(runs: { $0.typeRun(type) }, range: range, limit: limit, newestFirst: newestFirst, after: cursor)
        }
    }

    /// One page of positions drawn from a run per segment, merged in time order.
    private func page(
        runs: (any SegmentIndex) -> (any PositionRun)?, range: Range<Int64>, limit: Int, newestFirst: Bool,
        after cursor: EventPosition?
    ) -> [StoredEvent] {
        guard limit > 0, !range.isEmpty else { return [] }
        var ordered = indexedSegments(overlapping: range)
        if !newestFirst { ordered.sort { $0.1.minTimestamp < $1.1.minTimestamp } }
        let before: (EventPosition, EventPosition) -> Bool = newestFirst ? { $1 < $0 } : { $0 < $1 }
        var found: [EventPosition] = []
        for (_, index) in ordered {
            if found.count >= limit {
                found.sort(by: before)
                found.removeLast(found.count - limit)
                let edge = found[limit - 1].timestamp
                if newestFirst ? index.maxTimestamp < edge : index.minTimestamp > edge { break }
            }
            guard let list = runs(index) else { continue }
            var r = list.indices(in: range)
            if let cursor {
                let c = list.lowerBound(cursor)
                // A cursor outside the range leaves nothing, never an inverted range.
                if newestFirst {
                    r = r.lowerBound..<max(r.lowerBound, min(r.upperBound, c))
                } else {
                    let start = (c < list.count && list[c] == cursor) ? c + 1 : c
                    r = min(r.upperBound, max(r.lowerBound, start))..<r.upperBound
                }
            }
            if r.isEmpty { continue }
            var taken = 0
            let visit = { (p: EventPosition) -> Bool in
                found.append(p)
                taken += 1
                return taken < min(limit, r.count)
            }
            if newestFirst { list.forEachDescending(before: r.upperBound, visit) } else { list.forEachAscending(from: r.lowerBound, visit) }
        }
        found.sort(by: before)
        var out: [StoredEvent] = []
        out.reserveCapacity(min(limit, found.count))
        for p in found where out.count < limit {
            if let e = materialize(Location(raw: p.location)) { out.append(e) }
        }
        return out
    }

    /// How many events of `type` have timestamps in `range`. O(log n) per segment: two binary searches, no
    /// record read.
    public func count(type: UInt16, in range: Range<Int64> = Int64.min..<Int64.max) -> Int {
        lock.withLock {
            indexedSegments(overlapping: range).reduce(0) { $0 + ($1.1.typeRun(type)?.indices(in: range).count ?? 0) }
        }
    }

    /// Timestamps of the events of `type` in `range`, oldest first, without decoding any event (for time
    /// histograms). At most `maxReadLimit` are returned.
    public func timestamps(type: UInt16, in range: Range<Int64>) -> [Int64] {
        lock.withLock {
            var out: [Int64] = []
            for (_, index) in indexedSegments(overlapping: range) {
                guard let list = index.typeRun(type) else { continue }
                let r = list.indices(in: range)
                var n = 0
                list.forEachAscending(from: r.lowerBound) { p in
                    out.append(p.timestamp)
                    n += 1
                    return n < r.count && n < Self.maxReadLimit
                }
            }
            out.sort()
            return Array(out.prefix(Self.maxReadLimit))
        }
    }

    /// The type codes present in the store with their event counts.
    public func typeCounts() -> [UInt16: Int] {
        lock.withLock {
            var counts: [UInt16: Int] = [:]
            for (_, index) in indexedSegments() {
                for t in index.typeCodes { counts[t, default: 0] += index.typeRun(t)?.count ?? 0 }
            }
            return counts
        }
    }

    /// Events whose id starts with `prefix` (a trailing `*` is allowed: `event-spawn_*`), newest first.
    /// Uses the stem index: only ids whose stem is compatible with the prefix are looked at.
    public func events(idPrefix: String, limit: Int = 50) -> [StoredEvent] {
        let limit = clamp(limit)
        let prefix = idPrefix.hasSuffix("*") ? String(idPrefix.dropLast()) : idPrefix
        return lock.withLock {
            var out: [StoredEvent] = []
            for (_, index) in indexedSegments() {
                index.forEachStem { stem, list in
                    let exact: Bool
                    if stem.hasPrefix(prefix) {
                        exact = true
                    } else if prefix.hasPrefix(stem) {
                        exact = false
                    } else {
                        return
                    }
                    var taken = 0
                    list.forEachDescending(before: list.count) { p in
                        guard let e = materialize(Location(raw: p.location)) else { return true }
                        if !exact, !e.id.hasPrefix(prefix) { return true }
                        out.append(e)
                        taken += 1
                        return taken < limit
                    }
                }
            }
            out.sort { $1.position < $0.position }
            return Array(out.prefix(limit))
        }
    }

    /// All events with timestamps in `range`, newest first (or oldest first), after the cursor `after` in that
    /// order, using each segment's time-ordered list of its events. Only the returned page is decoded.
    public func events(
        in range: Range<Int64>, limit: Int = 50, newestFirst: Bool = true, after cursor: EventPosition? = nil
    ) -> [StoredEvent] {
        let limit = clamp(limit)
        return lock.withLock {
            page(runs: { $0.allRun }, range: range, limit: limit, newestFirst: newestFirst, after: cursor)
        }
    }

    /// Neighbors of any node (an entity, an event, a time bucket), newest first. An event's own edges are read
    /// from the frame that stored it; other nodes' from their adjacency lists.
    public func neighbors(of id: String, limit: Int = 100) -> [Neighbor] {
        neighbors(ofHash: Hash.id(id), limit: limit)
    }

    /// Neighbors of the node with id hash `node`.
    public func neighbors(ofHash node: UInt64, limit: Int = 100) -> [Neighbor] {
        let limit = clamp(limit)
        return lock.withLock {
            var out: [Neighbor] = []
            if let loc = locate(hash: node, hint: nil), let segment = segmentById[loc.segment],
                let frame = checkedIndex(segment).frame(containing: loc.offset)
            {
                segment.forEachRecord(in: frame, cache: cache) { _, r in
                    guard r.bytes.u8(0) == Format.recordKindAdjacency, r.bytes.count == Format.adjacencySize else { return true }
                    let a = AdjacencyView(bytes: r.bytes)
                    if a.source == node {
                        out.append(Neighbor(node: a.target, eventId: nil, edgeType: a.edgeType, timestamp: a.timestamp, outgoing: true))
                    } else if a.target == node {
                        out.append(Neighbor(node: a.source, eventId: nil, edgeType: a.edgeType, timestamp: a.timestamp, outgoing: false))
                    }
                    return true
                }
            }
            for (_, index) in indexedSegments() {
                guard let list = index.edgeRun(node) else { continue }
                var taken = 0
                list.forEachDescending(before: list.count) { e in
                    out.append(Neighbor(node: e.other, eventId: nil, edgeType: e.edgeType, timestamp: e.timestamp, outgoing: e.outgoing))
                    taken += 1
                    return taken < limit * 2
                }
            }
            out.sort { $0.timestamp != $1.timestamp ? $0.timestamp > $1.timestamp : $0.node < $1.node }
            var unique: [Neighbor] = []
            var seen = Set<Neighbor>()
            for var n in out where unique.count < limit {
                if seen.insert(n).inserted {
                    if let loc = locate(hash: n.node, hint: n.timestamp), let view = conceptView(loc) { n.eventId = view.id }
                    unique.append(n)
                }
            }
            return unique
        }
    }

    /// Calls `body` with every stored event in log order (segment, then offset) until it returns false.
    /// Duplicates are skipped. O(n); for verification and full scans.
    public func forEachEvent(_ body: (StoredEvent) -> Bool) {
        lock.withLock {
            for s in segments {
                let index = checkedIndex(s)
                for i in 0..<index.frameCount {
                    var keepGoing = true
                    s.forEachRecord(in: index.frame(at: i), cache: cache) { offset, r in
                        guard r.bytes.u8(0) == Format.recordKindConcept else { return true }
                        let view = ConceptView(bytes: r.bytes, owner: r.owner)
                        guard index.isIndexed(hash: view.idHash, offset: offset),
                            let e = materialize(Location(segment: s.id, offset: offset))
                        else { return true }
                        keepGoing = body(e)
                        return keepGoing
                    }
                    if !keepGoing { return }
                }
            }
        }
    }

    /// Current counts and sizes.
    public var stats: StoreStats {
        lock.withLock {
            var st = StoreStats(
                segments: segments.count, sealedSegments: segments.filter(\.sealed).count, events: 0,
                adjacencyEntries: 0, duplicatesIgnored: 0, dataBytes: 0, fileBytes: 0, lastSequence: lastWritten,
                minTimestamp: nil, maxTimestamp: nil)
            for s in segments {
                let index = s.index
                st.events += index.conceptCount
                st.adjacencyEntries += index.adjacencyCount
                st.duplicatesIgnored += index.duplicateCount
                st.dataBytes += s.end
                st.fileBytes += s.diskBytes
                if index.hasTimeRange {
                    st.minTimestamp = min(st.minTimestamp ?? .max, index.minTimestamp)
                    st.maxTimestamp = max(st.maxTimestamp ?? .min, index.maxTimestamp)
                }
                if s.isCompacted {
                    st.compactedSegments += 1
                    st.compactedBytes += s.diskBytes
                    st.compactedEvents += index.conceptCount
                } else {
                    st.uncompactedDataBytes += s.end
                }
                if let m = s.mappedIndex {
                    st.indexFiles += 1
                    st.indexBytes += m.fileBytes
                }
                st.readDamage += s.readDamage
            }
            st.diskBytes = st.fileBytes + st.indexBytes
            st.retention = manifest.retention
            return st
        }
    }
}
