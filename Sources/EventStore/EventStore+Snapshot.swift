/// What one read sees: every segment as it was when the read began. Taking it is the only moment a read holds
/// the store's lock; everything else (index lookups, record decoding, block decompression) runs on the views,
/// which keep their mappings, compacted files and indexes alive for as long as the read holds them.
struct Snapshot {
    /// In segment id order.
    let views: [SegmentView]
    /// Records of the active segment at or past this offset were written after the snapshot was taken.
    let activeEnd: Int

    /// The view of segment `id` (binary search).
    func view(_ id: UInt64) -> SegmentView? {
        var lo = 0
        var hi = views.count
        while lo < hi {
            let mid = (lo + hi) >> 1
            if views[mid].id < id { lo = mid + 1 } else { hi = mid }
        }
        return lo < views.count && views[lo].id == id ? views[lo] : nil
    }
}

/// A cursor over one list of the active segment's in-memory index, which keeps growing while the read runs:
/// it copies 64 positions at first, then up to 512 at a time, under the active-index lock, resuming after the last one it saw, and
/// leaves out records written after the read's snapshot. The writer waits at most for one such copy.
struct ActiveCursor: PositionCursor {
    let index: MemoryIndex
    let lock: ConditionLock
    let pick: (MemoryIndex) -> (any PositionRun)?
    private var bounds: ReadBounds
    let end: Int
    private var buffer: [(EventPosition, UInt16?)] = []
    private var k = 0
    private var done = false
    /// Positions copied per visit to the lock: few at first (a page of 50 needs little), more as the read goes on.
    private var chunk = 64
    private(set) var current: (EventPosition, UInt16?)?

    init(index: MemoryIndex, lock: ConditionLock, pick: @escaping (MemoryIndex) -> (any PositionRun)?, bounds: ReadBounds, end: Int) {
        self.index = index
        self.lock = lock
        self.pick = pick
        self.bounds = bounds
        self.end = end
        current = nil
        fill()
    }

    private mutating func fill() {
        buffer.removeAll(keepingCapacity: true)
        k = 0
        while buffer.isEmpty, !done {
            var next = bounds
            var batch: [(EventPosition, UInt16?)] = []
            var finished = false
            lock.withLock {
                guard let run = pick(index) else {
                    finished = true
                    return
                }
                var c = RunCursor(run, bounds: next)
                let end = self.end
                if let last = c.take(chunk, into: &batch, keep: { Location(raw: $0.location).offset < end }) { next.after = last }
                finished = c.current == nil
            }
            bounds = next
            done = finished
            buffer = batch
            chunk = min(512, chunk * 2)
        }
        current = buffer.first
    }

    mutating func advance() {
        k += 1
        if k < buffer.count {
            current = buffer[k]
        } else {
            fill()
        }
    }
}

extension EventStore {
    /// The segments as they are now, for one read. The store's lock is held only while the views are taken.
    func snapshot() -> Snapshot {
        lock.withLock {
            let current = active
            return Snapshot(views: segments.map { $0.view(active: $0 === current) }, activeEnd: current?.end ?? 0)
        }
    }

    /// The index a read uses for a sealed segment: its own, checked. When its index file fails a check, the
    /// segment is flagged for maintenance (which rebuilds the file) and reads index its data themselves, once,
    /// without any lock, so their answers stay whole meanwhile.
    func readableIndex(_ v: SegmentView, _ snap: Snapshot) -> any SegmentIndex {
        guard let mapped = v.index as? MappedIndex else { return v.index }
        guard let problem = mapped.verifyAll() else { return mapped }
        if v.health.flagIndex(problem) {
            options.onNotice?(
                "index file of segment \(v.id) failed its checksum (\(problem)); reads index the segment's data until maintenance rebuilds the file")
            maintenanceThread?.wake()
        }
        return v.health.fallbackIndex { privateIndex(v, snap) }
    }

    /// Indexes a sealed segment's data for reads (its index file failed a check): the same scan as a rebuild,
    /// with duplicates judged against the other segments of the snapshot.
    private func privateIndex(_ v: SegmentView, _ snap: Snapshot) -> MemoryIndex {
        let memory = MemoryIndex(segment: v.id, text: options.text)
        func known(_ view: ConceptView) -> Bool {
            var found = false
            memory.forEachOffset(hash: view.idHash) { offset in
                if let existing = self.conceptView(Location(segment: v.id, offset: offset), snap),
                    existing.idBytes.elementsEqual(view.idBytes)
                {
                    found = true
                }
                return !found
            }
            if found { return true }
            for other in snap.views where other.id != v.id && !other.isActive {
                guard other.index.spans(view.timestamp) else { continue }
                if let m = other.index as? MappedIndex, m.verifyIds() != nil { continue }
                other.index.forEachOffset(hash: view.idHash) { offset in
                    if let existing = self.conceptView(Location(segment: other.id, offset: offset), snap),
                        existing.idBytes.elementsEqual(view.idBytes)
                    {
                        found = true
                    }
                    return !found
                }
                if found { return true }
            }
            return false
        }
        func scan(_ bytes: UnsafeRawBufferPointer) {
            _ = SegmentScanner.scan(bytes, segment: v.id) { info, payload in
                memory.indexFrame(
                    frameOffset: Int(info.offset), payload: payload, minTimestamp: info.minTimestamp,
                    maxTimestamp: info.maxTimestamp, recordCount: info.recordCount, isKnown: known)
            }
        }
        if let file = v.compacted {
            let (bytes, _) = file.decompressAll()
            bytes.withUnsafeBytes { scan($0) }
        } else if let raw = v.raw {
            scan(UnsafeRawBufferPointer(rebasing: raw.bytes[0..<min(v.end, raw.length)]))
        }
        memory.freeze()
        return memory
    }

    /// The concept record at `loc` in the snapshot, bounds-checked.
    func conceptView(_ loc: Location, _ snap: Snapshot) -> ConceptView? {
        guard let v = snap.view(loc.segment), let r = v.record(at: loc.offset, cache: cache),
            r.bytes.u8(0) == Format.recordKindConcept
        else { return nil }
        let idLength = Int(r.bytes.u16(8))
        let payloadLength = Int(r.bytes.u32(12))
        guard Format.recordHeaderSize + idLength + payloadLength <= r.bytes.count else { return nil }
        return ConceptView(bytes: r.bytes, owner: r.owner)
    }

    /// The event at `loc`, decoded.
    func materialize(_ loc: Location, _ snap: Snapshot) -> StoredEvent? {
        guard let view = conceptView(loc, snap), let tail = view.decodeTail() else { return nil }
        return StoredEvent(
            id: view.id, idHash: view.idHash, typeCode: view.typeCode, timestamp: view.timestamp,
            entities: tail.entities, payload: tail.payload,
            position: EventPosition(timestamp: view.timestamp, location: loc.raw))
    }

    /// The frame of a segment that holds byte `offset`.
    func frameEntry(containing offset: Int, _ v: SegmentView, _ snap: Snapshot) -> FrameEntry? {
        if v.isActive { return activeLock.withLock { v.index.frame(containing: offset) } }
        return readableIndex(v, snap).frame(containing: offset)
    }

    /// The offsets indexed under an id hash in one segment of the snapshot.
    private func offsets(hash: UInt64, in v: SegmentView, _ snap: Snapshot) -> [Int] {
        var out: [Int] = []
        if v.isActive {
            activeLock.withLock {
                v.index.forEachOffset(hash: hash) { o in
                    if o < snap.activeEnd { out.append(o) }
                    return true
                }
            }
        } else {
            readableIndex(v, snap).forEachOffset(hash: hash) { o in
                out.append(o)
                return true
            }
        }
        return out
    }

    /// Views to search for an id or hash, newest first: with `hint` (the event's timestamp), the active one and
    /// those whose time span holds it; without, all of them.
    private func searchOrder(_ snap: Snapshot, hint: Int64?) -> [SegmentView] {
        guard let hint else { return snap.views.reversed() }
        return snap.views.reversed().filter { $0.isActive || $0.index.spans(hint) }
    }

    /// Where the event with this id is stored (full-id compare), newest segment first.
    func locate(_ id: String, in snap: Snapshot) -> Location? {
        let h = Hash.id(id)
        let wanted = Array(id.utf8)
        for v in searchOrder(snap, hint: nil) {
            for offset in offsets(hash: h, in: v, snap) {
                let loc = Location(segment: v.id, offset: offset)
                if let view = conceptView(loc, snap), view.idBytes.elementsEqual(wanted) { return loc }
            }
        }
        return nil
    }

    /// Where the event with this id hash is stored (first match; no full-id compare). `hint`: its timestamp.
    /// An edge's timestamp is its event's, so the segments spanning `hint` are searched first; every segment
    /// only when they do not hold it (an edge stamped otherwise).
    func locate(hash: UInt64, in snap: Snapshot, hint: Int64?) -> Location? {
        func search(_ views: [SegmentView]) -> Location? {
            for v in views {
                if let o = offsets(hash: hash, in: v, snap).first { return Location(segment: v.id, offset: o) }
            }
            return nil
        }
        if let hint, let found = search(searchOrder(snap, hint: hint)) { return found }
        return search(searchOrder(snap, hint: nil))
    }
}
