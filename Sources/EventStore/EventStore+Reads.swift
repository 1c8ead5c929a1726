// Over 400 lines: every read of the store (by id, timeline, type, time, prefix, neighbours, duplicates probe)
// shares the snapshot and cursor helpers here; splitting them would spread one read path over several files.
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
    /// Bytes of the index files' words sections (the word index), part of `indexBytes`.
    public var wordIndexBytes: Int = 0
    /// Bytes the store's files occupy on disk, as `du` counts them (allocated blocks): segment files (the active
    /// one's whole reservation), compacted files and index files.
    public var diskBytes: Int = 0
    /// What retention has deleted since the store was created.
    public var retention = RetentionTotals()
    /// Damage found by reads since open (frames or blocks failing their checksums), never served.
    public var readDamage: [Damage] = []
}

/// A node's newest neighbors, and whether it has more than were asked for.
public struct NeighborList: Sendable, Equatable {
    public var neighbors: [Neighbor]
    public var truncated: Bool
}

extension EventStore {
    /// Whether an event with this id is stored. Reads no payload: a hash probe per segment.
    public func contains(id: String) -> Bool {
        let snap = snapshot()
        return locate(id, in: snap) != nil
    }

    /// For each event (id and its timestamp), whether it is stored: a resend after a lost ack carries the same
    /// timestamp, so only the segments whose time span holds it are searched (usually one or two, however many
    /// segments the store has).
    public func contains(ids: [String], timestamps: [Int64]) -> [Bool] {
        precondition(ids.count == timestamps.count, "one timestamp per id")
        let snap = snapshot()
        var found = [Bool](repeating: false, count: ids.count)
        guard !ids.isEmpty else { return found }
        let hashes = ids.map { Hash.id($0) }
        func same(_ loc: Location, _ i: Int) -> Bool {
            guard let view = conceptView(loc, snap) else { return false }
            return view.idBytes.elementsEqual(ids[i].utf8)
        }
        // The active segment holds most resends: its candidates for the whole list under one short lock.
        if let active = snap.views.last, active.isActive {
            var candidates: [(Int, Int)] = []
            activeLock.withLock {
                for (i, h) in hashes.enumerated() {
                    active.index.forEachOffset(hash: h) { o in
                        if o < snap.activeEnd { candidates.append((i, o)) }
                        return true
                    }
                }
            }
            for (i, o) in candidates where !found[i] && same(Location(segment: active.id, offset: o), i) { found[i] = true }
        }
        // Then the sealed segments whose time span holds each remaining event's timestamp.
        let sealed = snap.views.reversed().filter { !$0.isActive }
        for i in ids.indices where !found[i] {
            let ts = timestamps[i]
            for v in sealed where v.index.spans(ts) {
                readableIndex(v, snap).forEachOffset(hash: hashes[i]) { o in
                    if same(Location(segment: v.id, offset: o), i) { found[i] = true }
                    return !found[i]
                }
                if found[i] { break }
            }
        }
        return found
    }

    /// The event with this id, or nil. A hash probe per segment and a full-id compare.
    public func event(id: String) -> StoredEvent? {
        let snap = snapshot()
        return locate(id, in: snap).flatMap { materialize($0, snap) }
    }

    /// Cursors over `sources` in every segment of the snapshot whose time span meets the bounds.
    private func cursors(_ sources: [ReadSource], _ bounds: ReadBounds, _ snap: Snapshot) -> [any PositionCursor] {
        var out: [any PositionCursor] = []
        for v in snap.views {
            if v.isActive, let memory = v.index as? MemoryIndex {
                for source in sources { out += activeCursors(source, memory, bounds, snap) }
                continue
            }
            guard v.index.hasTimeRange else { continue }
            if v.index.maxTimestamp < bounds.range.lowerBound || v.index.minTimestamp >= bounds.range.upperBound { continue }
            let index = readableIndex(v, snap)
            for source in sources {
                switch source {
                case .all:
                    out.append(RunCursor(index.allRun, bounds: bounds))
                case .type(let t):
                    if let run = index.typeRun(t) { out.append(RunCursor(run, bounds: bounds)) }
                case .entity(let entity):
                    if let run = index.entityRun(Hash.id(entity)) { out.append(RunCursor(run, bounds: bounds)) }
                case .idPrefix(let raw):
                    let prefix = raw.hasSuffix("*") ? String(raw.dropLast()) : raw
                    index.forEachStem { stem, run in
                        if stem.hasPrefix(prefix) || prefix.hasPrefix(stem) { out.append(RunCursor(run, bounds: bounds)) }
                    }
                case .words(let words, let entity):
                    if index.textScheme != 0 {
                        out.append(index.wordCursor(words.map { TextTokens.hash($0) }, entity: entity.map { Hash.id($0) }, bounds: bounds, end: nil))
                    } else if let entity {
                        if let run = index.entityRun(Hash.id(entity)) { out.append(RunCursor(run, bounds: bounds)) }
                    } else {
                        out.append(RunCursor(index.allRun, bounds: bounds))
                    }
                }
            }
        }
        return out
    }

    /// Cursors over the active segment's in-memory lists, which keep growing: they copy a few hundred positions
    /// at a time under `activeLock` and leave out what was written after the snapshot.
    private func activeCursors(_ source: ReadSource, _ memory: MemoryIndex, _ bounds: ReadBounds, _ snap: Snapshot) -> [any PositionCursor] {
        func cursor(_ pick: @escaping (MemoryIndex) -> (any PositionRun)?) -> any PositionCursor {
            ActiveCursor(index: memory, lock: activeLock, pick: pick, bounds: bounds, end: snap.activeEnd)
        }
        switch source {
        case .all: return [cursor { $0.allRun }]
        case .type(let t): return [cursor { $0.typeRun(t) }]
        case .entity(let entity):
            let h = Hash.id(entity)
            return [cursor { $0.entityRun(h) }]
        case .idPrefix(let raw):
            let prefix = raw.hasSuffix("*") ? String(raw.dropLast()) : raw
            let stems = activeLock.withLock {
                memory.byStem.filter { $0.value.stem.hasPrefix(prefix) || prefix.hasPrefix($0.value.stem) }.map(\.key)
            }
            return stems.map { h in cursor { $0.byStem[h]?.list } }
        case .words(let words, let entity):
            let e = entity.map { Hash.id($0) }
            guard memory.text != nil else {
                if let e { return [cursor { $0.entityRun(e) }] }
                return [cursor { $0.allRun }]
            }
            // The matches are few next to the lists they come from: found under the lock in one go (the rank lists
            // follow arrival, not time), then sorted and walked without it.
            let hashes = words.map { TextTokens.hash($0) }
            let found = activeLock.withLock { memory.wordMatches(hashes, entity: e, bounds: bounds, end: snap.activeEnd) }
            return [MemoryIndex.cursor(sorting: found, bounds: bounds)]
        }
    }

    /// Calls `body` with the position of every event that `sources` name inside `bounds`, in order, merged across
    /// segments (and across sources: an event named twice comes once), with its type code when the index knows
    /// it (type lists and entity edges do), until `body` returns false. Reads no event.
    public func readPositions(_ sources: [ReadSource], _ bounds: ReadBounds, _ body: (EventPosition, UInt16?) -> Bool) {
        let snap = snapshot()
        var it = MergingIterator(cursors(sources, bounds, snap), newestFirst: bounds.newestFirst)
        while let (p, t) = it.next() {
            if !body(p, t) { return }
        }
    }

    /// Calls `body` with every event that `sources` name inside `bounds`, in order (see `readPositions`), until it
    /// returns false. `types` keeps only events of those type codes and `idPrefix` only ids starting with it; both
    /// are checked before an event is decoded. Only the events handed to `body` are decoded (a compacted block is
    /// decompressed only for them).
    public func read(
        _ sources: [ReadSource], _ bounds: ReadBounds, types: Set<UInt16>? = nil, idPrefix: String? = nil,
        _ body: (StoredEvent) -> Bool
    ) {
        let prefix = idPrefix.map { Array($0.utf8) }
        let snap = snapshot()
        var it = MergingIterator(cursors(sources, bounds, snap), newestFirst: bounds.newestFirst)
        while let (p, t) = it.next() {
            if let types, let t, !types.contains(t) { continue }
            let loc = Location(raw: p.location)
            if let prefix {
                guard let view = conceptView(loc, snap), view.idBytes.starts(with: prefix) else { continue }
            }
            guard let e = materialize(loc, snap) else { continue }
            if let types, !types.contains(e.typeCode) { continue }
            if !body(e) { return }
        }
    }

    /// The first `limit` events of a read.
    private func collect(_ sources: [ReadSource], _ bounds: ReadBounds, limit: Int, idPrefix: String? = nil) -> [StoredEvent] {
        guard limit > 0 else { return [] }
        var out: [StoredEvent] = []
        read(sources, bounds, idPrefix: idPrefix) { e in
            out.append(e)
            return out.count < limit
        }
        return out
    }

    /// An entity's events, newest first, from its adjacency lists. `before` continues a previous page. Only the
    /// events returned are decoded. O(limit) after an O(log n) seek per segment.
    public func timeline(entity: String, limit: Int = 50, before: EventPosition? = nil) -> [StoredEvent] {
        collect([.entity(entity)], ReadBounds(after: before), limit: limit)
    }

    /// Events of one type with timestamps in `range`, newest first (or oldest first), after the cursor `after`
    /// in that order. O(log n) per segment to seek, then O(limit).
    public func events(
        type: UInt16, in range: Range<Int64> = Int64.min..<Int64.max, limit: Int = 50, newestFirst: Bool = true,
        after cursor: EventPosition? = nil
    ) -> [StoredEvent] {
        collect([.type(type)], ReadBounds(range: range, newestFirst: newestFirst, after: cursor), limit: limit)
    }

    /// How many events of `type` have timestamps in `range`. O(log n) per segment: two binary searches, no
    /// record read.
    public func count(type: UInt16, in range: Range<Int64> = Int64.min..<Int64.max) -> Int {
        guard !range.isEmpty else { return 0 }
        let snap = snapshot()
        var n = 0
        for v in snap.views {
            if v.isActive, let memory = v.index as? MemoryIndex {
                n += activeLock.withLock { () -> Int in
                    guard let run = memory.typeRun(type) else { return 0 }
                    // Positions written after the snapshot are not counted.
                    var c = RunCursor(run, bounds: ReadBounds(range: range, newestFirst: true))
                    var k = 0
                    while let (p, _) = c.current {
                        if Location(raw: p.location).offset < snap.activeEnd { k += 1 }
                        c.advance()
                    }
                    return k
                }
                continue
            }
            guard v.index.hasTimeRange, v.index.maxTimestamp >= range.lowerBound, v.index.minTimestamp < range.upperBound else { continue }
            n += readableIndex(v, snap).typeRun(type)?.indices(in: range).count ?? 0
        }
        return n
    }

    /// The type codes present in the store with their event counts.
    public func typeCounts() -> [UInt16: Int] {
        let snap = snapshot()
        var counts: [UInt16: Int] = [:]
        for v in snap.views {
            if v.isActive, let memory = v.index as? MemoryIndex {
                activeLock.withLock {
                    for (t, list) in memory.byType { counts[t, default: 0] += list.count }
                }
                continue
            }
            guard v.index.hasTimeRange else { continue }
            let index = readableIndex(v, snap)
            for t in index.typeCodes { counts[t, default: 0] += index.typeRun(t)?.count ?? 0 }
        }
        return counts
    }

    /// Events whose id starts with `prefix` (a trailing `*` is allowed: `event-spawn_*`), newest first.
    /// Uses the stem index: only ids whose stem is compatible with the prefix are looked at.
    public func events(idPrefix: String, limit: Int = 50) -> [StoredEvent] {
        let prefix = idPrefix.hasSuffix("*") ? String(idPrefix.dropLast()) : idPrefix
        return collect([.idPrefix(prefix)], ReadBounds(), limit: limit, idPrefix: prefix)
    }

    /// All events with timestamps in `range`, newest first (or oldest first), after the cursor `after` in that
    /// order, using each segment's time-ordered list of its events. Only the returned page is decoded.
    public func events(
        in range: Range<Int64>, limit: Int = 50, newestFirst: Bool = true, after cursor: EventPosition? = nil
    ) -> [StoredEvent] {
        collect([.all], ReadBounds(range: range, newestFirst: newestFirst, after: cursor), limit: limit)
    }

    /// Neighbors of any node (an entity, an event, a time bucket), newest first. An event's own edges are read
    /// from the frame that stored it; other nodes' from their adjacency lists.
    public func neighbors(of id: String, limit: Int = 100) -> [Neighbor] {
        neighborList(ofHash: Hash.id(id), limit: limit).neighbors
    }

    /// Neighbors of the node with id hash `node`.
    public func neighbors(ofHash node: UInt64, limit: Int = 100) -> [Neighbor] {
        neighborList(ofHash: node, limit: limit).neighbors
    }

    /// The newest `limit` neighbors of the node with id hash `node` (newest first; ties by the neighbor's hash),
    /// and whether it has more.
    public func neighborList(ofHash node: UInt64, limit: Int = 100) -> NeighborList {
        guard limit > 0 else { return NeighborList(neighbors: [], truncated: false) }
        let snap = snapshot()
        var out: [Neighbor] = []
        if let loc = locate(hash: node, in: snap, hint: nil), let view = snap.view(loc.segment),
            let frame = frameEntry(containing: loc.offset, view, snap)
        {
            view.forEachRecord(in: frame, cache: cache) { _, r in
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
        // From each segment, the newest `limit + 1` neighbors and every one that shares a timestamp with the last
        // of them: the newest `limit + 1` overall are among them, whatever the tie order. An entity's neighbors
        // are its events; a time bucket's, the events of its minute; other nodes have their own entries.
        func collect(_ count: Int, _ at: (Int) -> Neighbor?) {
            var taken = 0
            var lastTimestamp = Int64.min
            var i = count - 1
            while i >= 0 {
                defer { i -= 1 }
                guard let n = at(i) else { continue }
                if taken > limit, n.timestamp != lastTimestamp { return }
                out.append(n)
                taken += 1
                lastTimestamp = n.timestamp
            }
        }
        /// An event neighbor, named from its own record (one read gives its hash and its id).
        func event(_ p: EventPosition, _ type: UInt16, outgoing: Bool) -> Neighbor? {
            conceptView(Location(raw: p.location), snap).map {
                Neighbor(node: $0.idHash, eventId: $0.id, edgeType: type, timestamp: p.timestamp, outgoing: outgoing)
            }
        }
        func gather(_ index: any SegmentIndex, before end: Int?) {
            func fresh(_ p: EventPosition) -> Bool { end.map { Location(raw: p.location).offset < $0 } ?? true }
            if let run = index.entityRun(node) {
                collect(run.count) { i in
                    let p = run[i]
                    guard fresh(p) else { return nil }
                    return event(p, run.typeCode(at: i) ?? 0, outgoing: true)
                }
            }
            if let minute = index.bucketMinute(node) {
                let all = index.allRun
                let r = all.indices(in: (minute * TimeBucket.micros)..<((minute + 1) * TimeBucket.micros))
                collect(r.count) { i in
                    let p = all[r.lowerBound + i]
                    guard fresh(p) else { return nil }
                    return event(p, TimeBucket.edgeType, outgoing: false)
                }
            }
            if let edges = index.extraEdges(node) {
                collect(edges.count) { i in
                    let e = edges[i]
                    return Neighbor(node: e.other, eventId: nil, edgeType: e.edgeType, timestamp: e.timestamp, outgoing: e.outgoing)
                }
            }
        }
        for v in snap.views {
            if v.isActive, let memory = v.index as? MemoryIndex {
                // Reading the active segment's mapped records under the lock is cheap (no decompression).
                activeLock.withLock { gather(memory, before: snap.activeEnd) }
                continue
            }
            guard v.index.hasTimeRange else { continue }
            gather(readableIndex(v, snap), before: nil)
        }
        out.sort {
            if $0.timestamp != $1.timestamp { return $0.timestamp > $1.timestamp }
            if $0.node != $1.node { return $0.node < $1.node }
            if $0.edgeType != $1.edgeType { return $0.edgeType < $1.edgeType }
            return !$0.outgoing && $1.outgoing
        }
        var unique: [Neighbor] = []
        var seen = Set<Neighbor>()
        var more = false
        for var n in out {
            let key = Neighbor(node: n.node, eventId: nil, edgeType: n.edgeType, timestamp: n.timestamp, outgoing: n.outgoing)
            guard seen.insert(key).inserted else { continue }
            if unique.count == limit {
                more = true
                break
            }
            if n.eventId == nil, let loc = locate(hash: n.node, in: snap, hint: n.timestamp), let view = conceptView(loc, snap) {
                n.eventId = view.id
            }
            unique.append(n)
        }
        return NeighborList(neighbors: unique, truncated: more)
    }

    /// Calls `body` with every stored event in log order (segment, then offset) until it returns false.
    /// Duplicates are skipped. O(n); for verification and full scans.
    public func forEachEvent(_ body: (StoredEvent) -> Bool) {
        let snap = snapshot()
        for v in snap.views {
            var offsets: [Int] = []
            if v.isActive, let memory = v.index as? MemoryIndex {
                activeLock.withLock {
                    offsets = memory.ids.values.map { Int($0) } + memory.collisions.values.flatMap { $0.map { Int($0) } }
                }
                offsets = offsets.filter { $0 < snap.activeEnd }.sorted()
            } else {
                let index = readableIndex(v, snap)
                for i in 0..<index.frameCount {
                    v.forEachRecord(in: index.frame(at: i), cache: cache) { offset, r in
                        guard r.bytes.u8(0) == Format.recordKindConcept else { return true }
                        let view = ConceptView(bytes: r.bytes, owner: r.owner)
                        if index.isIndexed(hash: view.idHash, offset: offset) { offsets.append(offset) }
                        return true
                    }
                }
            }
            for offset in offsets {
                guard let e = materialize(Location(segment: v.id, offset: offset), snap) else { continue }
                if !body(e) { return }
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
                    st.wordIndexBytes += m.header.sections[IndexFile.Section.words.rawValue].length
                }
                st.readDamage += s.health.readDamage
            }
            st.diskBytes = 0
            for s in segments {
                st.diskBytes += sys.allocatedBytes(s.path) ?? s.diskBytes
                if let m = s.mappedIndex { st.diskBytes += sys.allocatedBytes(m.path) ?? m.fileBytes }
            }
            st.retention = manifest.retention
            return st
        }
    }
}
