/// One committed batch frame as replication ships it: its store-wide sequence and its events, in frame order.
public struct CommittedFrame: Sendable, Equatable {
    public var sequence: UInt64
    public var events: [StoredEvent]

    public init(sequence: UInt64, events: [StoredEvent]) {
        self.sequence = sequence
        self.events = events
    }
}

/// Retention deleted segments holding frames replication had not shipped yet (only `max_bytes` can force that).
public struct ReplicationLoss: Sendable, Equatable, CustomStringConvertible {
    /// The replicated cursor when it happened: frames above it were deleted unshipped.
    public var cursor: UInt64
    /// The highest frame sequence deleted.
    public var lastDeletedSequence: UInt64
    public var segments: [UInt64]
    public var events: Int

    public var description: String {
        "retention (max_bytes) deleted segment(s) \(segments.map(String.init).joined(separator: ", ")) before they were "
            + "replicated: \(events) event(s), frames \(cursor + 1)...\(lastDeletedSequence) never reached NATS"
    }
}

/// The read side of replication: committed frames after a sequence, and the retention floor's per-segment check.
/// Kept apart from the engine's own files; it reads through the same segment and index types the reads use.
extension EventStore {
    /// Batch frames with a sequence above `after`, oldest first, that are durable under the store's mode: at most
    /// `maxFrames`, and at most `maxBytes` of event payloads and ids (at least one frame when any is waiting).
    /// Every record of a frame is returned, including ids the index skipped as duplicates (the receiver dedups by
    /// id). A frame whose bytes fail their checksum is skipped (it is reported through `stats.readDamage`).
    /// - Throws: what `barrier()` throws (a store that failed closed ships nothing more).
    /// - Complexity: a binary search over the segments' frames, then the frames read.
    public func committedFrames(after: UInt64, maxBytes: Int = 1 << 20, maxFrames: Int = 256) throws(StoreError)
        -> [CommittedFrame]
    {
        let target = lock.withLock { lastWritten }
        guard target > after else { return [] }
        try barrier()
        // Read on a snapshot, like every read: appends go on while frames are decoded.
        let snap = snapshot()
        func frames(_ v: SegmentView) -> (count: Int, at: (Int) -> FrameEntry) {
            if v.isActive {
                let copy = activeLock.withLock { (v.index as? MemoryIndex)?.frames ?? [] }
                return (copy.count, { copy[$0] })
            }
            let index = readableIndex(v, snap)
            return (index.frameCount, { index.frame(at: $0) })
        }
        var out: [CommittedFrame] = []
        var bytes = 0
        // Segments hold increasing sequences: start from the newest one whose first frame is at or below
        // `after + 1` (usually the active segment).
        var start = 0
        for i in stride(from: snap.views.count - 1, through: 0, by: -1) {
            let f = frames(snap.views[i])
            guard f.count > 0, let first = frameSequence(snap.views[i], f.at(0)) else { continue }
            if first <= after + 1 {
                start = i
                break
            }
        }
        for v in snap.views[start...] {
            let f = frames(v)
            var lo = 0
            var hi = f.count
            while lo < hi {  // first frame with sequence > after
                let mid = (lo + hi) / 2
                if (frameSequence(v, f.at(mid)) ?? 0) > after { hi = mid } else { lo = mid + 1 }
            }
            for i in lo..<f.count {
                let frame = f.at(i)
                guard let seq = frameSequence(v, frame) else { continue }
                if seq > target { return out }
                var events: [StoredEvent] = []
                v.forEachRecord(in: frame, cache: cache) { offset, r in
                    guard r.bytes.u8(0) == Format.recordKindConcept else { return true }
                    let view = ConceptView(bytes: r.bytes, owner: r.owner)
                    guard let tail = view.decodeTail() else { return true }
                    events.append(
                        StoredEvent(
                            id: view.id, idHash: view.idHash, typeCode: view.typeCode, timestamp: view.timestamp,
                            entities: tail.entities, payload: tail.payload,
                            position: EventPosition(timestamp: view.timestamp, location: Location(segment: v.id, offset: offset).raw)))
                    bytes += r.bytes.count
                    return true
                }
                out.append(CommittedFrame(sequence: seq, events: events))
                if out.count >= maxFrames || bytes >= maxBytes { return out }
            }
        }
        return out
    }

    /// The highest sequence written (durable or about to be): what replication lag is measured against.
    public var lastWrittenSequence: UInt64 { lock.withLock { lastWritten } }

    /// The sequence of a frame, read from its header (in the mapped segment, or its compacted block).
    func frameSequence(_ v: SegmentView, _ f: FrameEntry) -> UInt64? {
        let offset = Int(f.offset)
        if let c = v.compacted {
            guard let b = c.block(containing: offset) else { return nil }
            let block = c.header.blocks[b]
            let decoded = cache.get(BlockCache.key(segment: v.id, block: b)) {
                CompactedFormat.decode(block, from: c.bytes)
            }
            guard let decoded else { return nil }
            let local = offset - block.rawOffset
            guard local >= 0, local + Format.frameHeaderSize <= decoded.bytes.count else { return nil }
            return decoded.bytes.u64(local + 8)
        }
        guard let raw = v.raw, offset + Format.frameHeaderSize <= min(v.end, raw.length) else { return nil }
        return raw.bytes.u64(offset + 8)
    }

    /// The highest frame sequence in a segment. Caller holds the store's lock.
    func lastFrameSequence(_ s: Segment) -> UInt64 {
        let index = checkedIndex(s)
        guard index.frameCount > 0 else { return 0 }
        return frameSequence(s.view(active: false), index.frame(at: index.frameCount - 1)) ?? 0
    }

    /// Retention's replication check for one candidate segment (oldest first). Caller holds the store's lock.
    /// Returns false when the segment must be kept: it holds frames above the replicated cursor and only age, not
    /// `max_bytes`, asks for its deletion. When `max_bytes` forces it, the loss is added to `loss`.
    func retentionMayDelete(_ s: Segment, forcedBySize: Bool, loss: inout ReplicationLoss?) -> Bool {
        guard let floor = options.replicationFloor?() else { return true }
        let last = lastFrameSequence(s)
        guard last > floor else { return true }
        guard forcedBySize else { return false }
        var l = loss ?? ReplicationLoss(cursor: floor, lastDeletedSequence: 0, segments: [], events: 0)
        l.lastDeletedSequence = max(l.lastDeletedSequence, last)
        l.segments.append(s.id)
        l.events += s.index.conceptCount
        loss = l
        return true
    }
}
