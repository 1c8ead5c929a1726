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

    private func locate(_ id: String) -> Location? {
        let h = Hash.id(id)
        guard let first = index.ids[h] else { return nil }
        var idCopy = id
        func matches(_ loc: Location) -> Bool {
            guard let view = conceptView(loc) else { return false }
            return idCopy.withUTF8 { view.idBytes.elementsEqual(UnsafeRawBufferPointer($0)) }
        }
        if matches(first) { return first }
        return index.collisions[h]?.first(where: matches)
    }

    private func clamp(_ limit: Int) -> Int { max(0, min(limit, Self.maxReadLimit)) }

    /// Whether an event with this id is stored. O(1), reads no payload.
    public func contains(id: String) -> Bool {
        lock.withLock { locate(id) != nil }
    }

    /// For each id, whether it is stored; one lock for the whole list.
    public func contains(ids: [String]) -> [Bool] {
        lock.withLock { ids.map { locate($0) != nil } }
    }

    /// The event with this id, or nil. O(1): a hash lookup and a full-id compare.
    public func event(id: String) -> StoredEvent? {
        lock.withLock { locate(id).flatMap(materialize) }
    }

    /// An entity's events, newest first, from its adjacency list. `before` continues a previous page.
    /// O(limit) after an O(log n) seek.
    public func timeline(entity: String, limit: Int = 50, before: EventPosition? = nil) -> [StoredEvent] {
        let limit = clamp(limit)
        return lock.withLock {
            guard let list = index.edges[Hash.id(entity)] else { return [] }
            var out: [StoredEvent] = []
            var seen = Set<UInt64>()
            list.forEachDescending(before: list.count) { e in
                guard e.outgoing, let loc = index.ids[e.other], let event = materialize(loc) else { return true }
                if let before, !(event.position < before) { return true }
                if seen.insert(e.other).inserted { out.append(event) }
                return out.count < limit
            }
            return out.sorted { $1.position < $0.position }
        }
    }

    /// Events of one type with timestamps in `range`, newest first (or oldest first), after the cursor `after`
    /// in that order. O(log n + limit).
    public func events(
        type: UInt16, in range: Range<Int64> = Int64.min..<Int64.max, limit: Int = 50, newestFirst: Bool = true,
        after cursor: EventPosition? = nil
    ) -> [StoredEvent] {
        let limit = clamp(limit)
        return lock.withLock {
            guard let list = index.byType[type] else { return [] }
            return page(list, range: range, limit: limit, newestFirst: newestFirst, after: cursor)
        }
    }

    private func page(
        _ list: TimedList, range: Range<Int64>, limit: Int, newestFirst: Bool, after cursor: EventPosition?
    ) -> [StoredEvent] {
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
            if r.isEmpty { return [] }
        }
        var out: [StoredEvent] = []
        out.reserveCapacity(min(limit, r.count))
        var remaining = r.count
        let visit = { (p: EventPosition) -> Bool in
            if let e = self.materialize(Location(raw: p.location)) { out.append(e) }
            remaining -= 1
            return remaining > 0 && out.count < limit
        }
        if newestFirst {
            list.forEachDescending(before: r.upperBound, visit)
        } else {
            list.forEachAscending(from: r.lowerBound, visit)
        }
        return out
    }

    /// How many events of `type` have timestamps in `range`. O(log n): two binary searches, no record read.
    public func count(type: UInt16, in range: Range<Int64> = Int64.min..<Int64.max) -> Int {
        lock.withLock { index.byType[type]?.indices(in: range).count ?? 0 }
    }

    /// Timestamps of the events of `type` in `range`, oldest first, without decoding any event (for time
    /// histograms). At most `maxReadLimit` are returned.
    public func timestamps(type: UInt16, in range: Range<Int64>) -> [Int64] {
        lock.withLock {
            guard let list = index.byType[type] else { return [] }
            let r = list.indices(in: range)
            var out: [Int64] = []
            out.reserveCapacity(min(r.count, Self.maxReadLimit))
            list.forEachAscending(from: r.lowerBound) { p in
                out.append(p.timestamp)
                return out.count < r.count && out.count < Self.maxReadLimit
            }
            return out
        }
    }

    /// The type codes present in the store with their event counts.
    public func typeCounts() -> [UInt16: Int] {
        lock.withLock { index.byType.mapValues { $0.count } }
    }

    /// Events whose id starts with `prefix` (a trailing `*` is allowed: `event-spawn_*`), newest first.
    /// Uses the stem index: only ids whose stem is compatible with the prefix are looked at.
    public func events(idPrefix: String, limit: Int = 50) -> [StoredEvent] {
        let limit = clamp(limit)
        let prefix = idPrefix.hasSuffix("*") ? String(idPrefix.dropLast()) : idPrefix
        return lock.withLock {
            var out: [StoredEvent] = []
            for stem in index.byStem.values {
                let exact: Bool
                if stem.stem.hasPrefix(prefix) {
                    exact = true
                } else if prefix.hasPrefix(stem.stem) {
                    exact = false
                } else {
                    continue
                }
                var taken = 0
                stem.list.forEachDescending(before: stem.list.count) { p in
                    guard let e = materialize(Location(raw: p.location)) else { return true }
                    if !exact, !e.id.hasPrefix(prefix) { return true }
                    out.append(e)
                    taken += 1
                    return taken < limit
                }
            }
            out.sort { $1.position < $0.position }
            return Array(out.prefix(limit))
        }
    }

    /// All events with timestamps in `range`, newest first (or oldest first), after the cursor `after` in that
    /// order, using the time index: segments whose time span misses the range are skipped, and inside a segment
    /// only frames whose span overlaps are read. Only the returned page is decoded.
    public func events(
        in range: Range<Int64>, limit: Int = 50, newestFirst: Bool = true, after cursor: EventPosition? = nil
    ) -> [StoredEvent] {
        let limit = clamp(limit)
        guard limit > 0 else { return [] }
        return lock.withLock {
            var candidates: [(segment: Segment, frame: Segment.FrameEntry)] = []
            for s in segments where s.hasTimeRange && s.minTimestamp < range.upperBound && s.maxTimestamp >= range.lowerBound {
                for f in s.frames where f.minTimestamp < range.upperBound && f.maxTimestamp >= range.lowerBound {
                    candidates.append((s, f))
                }
            }
            if newestFirst {
                candidates.sort { $0.frame.maxTimestamp > $1.frame.maxTimestamp }
            } else {
                candidates.sort { $0.frame.minTimestamp < $1.frame.minTimestamp }
            }
            let before: (EventPosition, EventPosition) -> Bool = newestFirst ? { $1 < $0 } : { $0 < $1 }
            var found: [EventPosition] = []
            for (s, f) in candidates {
                if found.count >= limit {
                    // Stop once no later frame can hold an event that beats the current page.
                    found.sort(by: before)
                    found.removeLast(found.count - limit)
                    let edge = found[limit - 1].timestamp
                    if newestFirst ? f.maxTimestamp < edge : f.minTimestamp > edge { break }
                }
                forEachConcept(in: s, frameOffset: Int(f.offset)) { loc, view in
                    let p = EventPosition(timestamp: view.timestamp, location: loc.raw)
                    guard range.contains(p.timestamp) else { return }
                    if let cursor, !before(cursor, p) { return }
                    guard index.ids[view.idHash] == loc || index.collisions[view.idHash]?.contains(loc) == true else { return }
                    found.append(p)
                }
            }
            found.sort(by: before)
            return found.prefix(limit).compactMap { materialize(Location(raw: $0.location)) }
        }
    }

    private func forEachConcept(in segment: Segment, frameOffset: Int, _ body: (Location, ConceptView) -> Void) {
        let buf = segment.bytes
        let payloadLength = Int(buf.u32(frameOffset + 4))
        let payloadOffset = frameOffset + Format.frameHeaderSize
        let payload = buf.slice(payloadOffset, payloadLength)
        var it = RecordIterator(payload)
        while let r = it.next() {
            guard r.kind == Format.recordKindConcept else { continue }
            body(Location(segment: segment.id, offset: payloadOffset + r.offset), ConceptView(bytes: payload.slice(r.offset, r.length)))
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
            if let loc = index.ids[node], let segment = segmentById[loc.segment], let frame = segment.frame(containing: loc.offset) {
                let buf = segment.bytes
                let payloadLength = Int(buf.u32(Int(frame.offset) + 4))
                let payload = buf.slice(Int(frame.offset) + Format.frameHeaderSize, payloadLength)
                var it = RecordIterator(payload)
                while let r = it.next() {
                    guard r.kind == Format.recordKindAdjacency else { continue }
                    let a = AdjacencyView(bytes: payload.slice(r.offset, r.length))
                    if a.source == node {
                        out.append(Neighbor(node: a.target, eventId: nil, edgeType: a.edgeType, timestamp: a.timestamp, outgoing: true))
                    } else if a.target == node {
                        out.append(Neighbor(node: a.source, eventId: nil, edgeType: a.edgeType, timestamp: a.timestamp, outgoing: false))
                    }
                }
            }
            if let list = index.edges[node] {
                list.forEachDescending(before: list.count) { e in
                    out.append(Neighbor(node: e.other, eventId: nil, edgeType: e.edgeType, timestamp: e.timestamp, outgoing: e.outgoing))
                    return out.count < limit * 2
                }
            }
            out.sort { $0.timestamp != $1.timestamp ? $0.timestamp > $1.timestamp : $0.node < $1.node }
            var unique: [Neighbor] = []
            var seen = Set<Neighbor>()
            for var n in out where unique.count < limit {
                if seen.insert(n).inserted {
                    if let loc = index.ids[n.node], let view = conceptView(loc) { n.eventId = view.id }
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
                for f in s.frames {
                    var keepGoing = true
                    forEachConcept(in: s, frameOffset: Int(f.offset)) { loc, view in
                        guard keepGoing else { return }
                        guard index.ids[view.idHash] == loc || index.collisions[view.idHash]?.contains(loc) == true,
                            let e = materialize(loc)
                        else { return }
                        keepGoing = body(e)
                    }
                    if !keepGoing { return }
                }
            }
        }
    }

    /// Current counts and sizes.
    public var stats: StoreStats {
        lock.withLock {
            var minTs: Int64?
            var maxTs: Int64?
            for s in segments where s.hasTimeRange {
                minTs = min(minTs ?? .max, s.minTimestamp)
                maxTs = max(maxTs ?? .min, s.maxTimestamp)
            }
            return StoreStats(
                segments: segments.count, sealedSegments: segments.filter(\.sealed).count,
                events: index.conceptCount, adjacencyEntries: index.adjacencyCount,
                duplicatesIgnored: index.duplicateCount,
                dataBytes: segments.reduce(0) { $0 + $1.end }, fileBytes: segments.reduce(0) { $0 + $1.mappedLength },
                lastSequence: lastWritten, minTimestamp: minTs, maxTimestamp: maxTs)
        }
    }
}
