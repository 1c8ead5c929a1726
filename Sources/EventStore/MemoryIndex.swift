/// The events of a segment in memory whose text has one word: their ranks in arrival order, ascending.
final class WordList {
    var ranks: ContiguousArray<UInt32> = []
}

final class StemList {
    let stem: String
    let list = TimedList()
    init(stem: String) { self.stem = stem }
}

/// The in-memory index of one segment: built by appends to the active segment, or by scanning a segment
/// whose index file is missing or damaged. Written to an index file once its segment is sealed.
/// - id hash -> offset (first occurrence; different ids with one hash go to `collisions`, compared in full);
/// - type code -> event positions in time order; every event in time order;
/// - entity -> the positions (with types) of the events that mention it (its entity -> event entries);
/// - time bucket -> its minute (the event -> time bucket entries: the time order answers them);
/// - any other adjacency entry, per node, in time order;
/// - id stem (the id up to its second `-`, e.g. `event-spawn_failed-`) -> positions, for prefix reads.
final class MemoryIndex: SegmentIndex {
    let segment: UInt64
    var ids: [UInt64: UInt32] = [:]
    var collisions: [UInt64: [UInt32]] = [:]
    var byType: [UInt16: TimedList] = [:]
    var byStem: [UInt64: StemList] = [:]
    let all = TimedList()
    var byEntity: [UInt64: SortedList<TypedPosition>] = [:]
    var buckets: [UInt64: Int64] = [:]
    var extra: [UInt64: EdgeList] = [:]
    var frames: [FrameEntry] = []
    /// How words are taken from records (nil: this index holds no words).
    let text: TextIndexing?
    /// Every indexed event in arrival order, when words are indexed: word lists name events by their rank here
    /// (4 bytes per word of an event instead of a 16-byte position).
    var arrivals: ContiguousArray<EventPosition> = []
    /// Word hash (`TextTokens.hash`) -> the ranks in `arrivals` of the events whose text has the word.
    var words: [UInt64: WordList] = [:]
    private var wordScratch: [UInt64] = []
    private var textScratch: [UInt8] = []
    private(set) var conceptCount = 0
    private(set) var adjacencyCount = 0
    private(set) var duplicateCount = 0
    private(set) var recordCount = 0
    private(set) var minTimestamp = Int64.max
    private(set) var maxTimestamp = Int64.min

    /// This frame's indexed events: id hash -> (position, type).
    private var frameEvents: [UInt64: TypedPosition] = [:]
    private var frameDuplicates = Set<UInt64>()
    private var lastBucket: (minute: Int64, hash: UInt64) = (.min, 0)

    init(segment: UInt64, text: TextIndexing? = nil) {
        self.segment = segment
        self.text = text
    }

    var textScheme: UInt32 { text?.scheme ?? 0 }

    var frameCount: Int { frames.count }
    func frame(at i: Int) -> FrameEntry { frames[i] }

    func forEachOffset(hash: UInt64, _ body: (Int) -> Bool) {
        guard let first = ids[hash] else { return }
        if !body(Int(first)) { return }
        guard let more = collisions[hash] else { return }
        for o in more where !body(Int(o)) { return }
    }

    func typeRun(_ type: UInt16) -> (any PositionRun)? { byType[type].map { KnownTypeRun(list: $0, type: type) } }
    var typeCodes: [UInt16] { Array(byType.keys) }
    func forEachStem(_ body: (String, any PositionRun) -> Void) {
        for s in byStem.values { body(s.stem, s.list) }
    }
    var allRun: any PositionRun { all }
    func entityRun(_ node: UInt64) -> (any PositionRun)? { byEntity[node].map { TypedRun(list: $0) } }
    func bucketMinute(_ node: UInt64) -> Int64? { buckets[node] }
    func extraEdges(_ node: UInt64) -> (any EdgeRun)? { extra[node] }

    /// The id hash of the time bucket of `minute` (cached: consecutive events usually share a minute).
    private func bucketHash(_ minute: Int64) -> UInt64 {
        if lastBucket.minute != minute { lastBucket = (minute, Hash.id("time-" + String(minute))) }
        return lastBucket.hash
    }

    /// Indexes the records of one valid frame at `frameOffset` whose payload is `payload`.
    /// `isKnown` says whether an id is already stored (in this or another segment): such a record is a
    /// duplicate (a resent batch) and is not indexed, nor are its edges. `wordsOf`, when given, holds the word
    /// hashes of each concept record of the frame in order (taken before the lock by the appender); else they are
    /// taken here.
    func indexFrame(
        frameOffset: Int, payload: UnsafeRawBufferPointer, minTimestamp frameMin: Int64, maxTimestamp frameMax: Int64,
        recordCount frameRecords: Int, wordsOf: [[UInt64]]? = nil, isKnown: (ConceptView) -> Bool
    ) {
        var conceptIndex = -1
        let payloadOffset = frameOffset + Format.frameHeaderSize
        frames.append(FrameEntry(offset: UInt32(frameOffset), payloadLength: UInt32(payload.count)))
        minTimestamp = min(minTimestamp, frameMin)
        maxTimestamp = max(maxTimestamp, frameMax)
        recordCount += frameRecords
        frameEvents.removeAll(keepingCapacity: true)
        frameDuplicates.removeAll(keepingCapacity: true)
        var it = RecordIterator(payload)
        var sawAdjacency = false
        while let r = it.next() {
            guard r.kind == Format.recordKindConcept else {
                sawAdjacency = true
                continue
            }
            let view = ConceptView(bytes: payload.slice(r.offset, r.length))
            let offset = UInt32(payloadOffset + r.offset)
            let h = view.idHash
            conceptIndex += 1
            if isKnown(view) {
                frameDuplicates.insert(h)
                duplicateCount += 1
                continue
            }
            if ids[h] == nil { ids[h] = offset } else { collisions[h, default: []].append(offset) }
            conceptCount += 1
            let position = EventPosition(timestamp: view.timestamp, location: Location(segment: segment, offset: Int(offset)).raw)
            let type = view.typeCode
            frameEvents[h] = TypedPosition(position: position, type: type)
            all.insert(position)
            if let text {
                let rank = UInt32(arrivals.count)
                arrivals.append(position)
                if let wordsOf, conceptIndex < wordsOf.count {
                    for w in wordsOf[conceptIndex] { wordList(w).ranks.append(rank) }
                } else {
                    text.wordHashes(typeCode: type, payload: view.payloadBytes, into: &wordScratch, scratch: &textScratch)
                    for w in wordScratch { wordList(w).ranks.append(rank) }
                }
            }
            if let list = byType[type] {
                list.insert(position)
            } else {
                let list = TimedList()
                list.insert(position)
                byType[type] = list
            }
            let idBytes = view.idBytes
            let stemLength = MemoryIndex.stemLength(idBytes)
            let stemHash = Hash.bytes(idBytes.slice(0, stemLength))
            if let stem = byStem[stemHash] {
                stem.list.insert(position)
            } else {
                let stem = StemList(stem: idBytes.string(0, stemLength))
                stem.list.insert(position)
                byStem[stemHash] = stem
            }
        }
        guard sawAdjacency else { return }
        var it2 = RecordIterator(payload)
        while let r = it2.next() {
            guard r.kind == Format.recordKindAdjacency else { continue }
            let a = AdjacencyView(bytes: payload.slice(r.offset, r.length))
            let source = a.source
            let target = a.target
            if !frameDuplicates.isEmpty, frameDuplicates.contains(source) || frameDuplicates.contains(target) {
                continue
            }
            adjacencyCount += 1
            let ts = a.timestamp
            let type = a.edgeType
            // The standard entries: entity -> event (typed by the event's type), event -> its minute's bucket.
            if let event = frameEvents[target], type == event.type, ts == event.position.timestamp {
                let list: SortedList<TypedPosition>
                if let existing = byEntity[source] {
                    list = existing
                } else {
                    list = SortedList<TypedPosition>()
                    byEntity[source] = list
                }
                list.insert(event)
                continue
            }
            if let event = frameEvents[source], type == TimeBucket.edgeType, ts == event.position.timestamp,
                target == bucketHash(TimeBucket.minute(ts))
            {
                buckets[target] = TimeBucket.minute(ts)
                continue
            }
            // Any other entry: both ends' lists, except an event's own side (read from its frame).
            if frameEvents[source] == nil {
                extraList(source).insert(EdgeItem(timestamp: ts, other: target, edgeType: type, outgoing: true))
            }
            if frameEvents[target] == nil {
                extraList(target).insert(EdgeItem(timestamp: ts, other: source, edgeType: type, outgoing: false))
            }
        }
    }

    /// Makes every list read-only-safe (see `SortedList.freeze`); called once the segment is sealed, so the
    /// index file can be encoded without holding the store's lock while readers use the same lists.
    func freeze() {
        all.freeze()
        for l in byType.values { l.freeze() }
        for s in byStem.values { s.list.freeze() }
        for l in byEntity.values { l.freeze() }
        for l in extra.values { l.freeze() }
        frozen = true
    }

    private(set) var frozen = false

    @inline(__always) private func wordList(_ word: UInt64) -> WordList {
        if let list = words[word] { return list }
        let list = WordList()
        words[word] = list
        return list
    }

    /// The positions, in arrival order (not time order), of the events whose words include every hash of `hashes`
    /// and that mention `entity` when given, inside `bounds` (its range, and after its cursor), leaving out records
    /// at or past `end`. Walks the shortest rank list, drops the ranks outside the bounds or past `end` (O(1) each),
    /// and searches the other lists only for those (O(shortest x log longest)). The caller holds `activeLock` for
    /// the active segment.
    func wordMatches(_ hashes: [UInt64], entity: UInt64?, bounds: ReadBounds, end: Int?) -> [EventPosition] {
        let range = bounds.range
        guard text != nil, !hashes.isEmpty else { return [] }
        var lists: [ContiguousArray<UInt32>] = []
        for h in hashes {
            guard let l = words[h] else { return [] }
            lists.append(l.ranks)
        }
        lists.sort { $0.count < $1.count }
        var entityList: SortedList<TypedPosition>?
        if let entity {
            guard let l = byEntity[entity] else { return [] }
            entityList = l
        }
        var cursors = [Int](repeating: 0, count: lists.count)
        var out: [EventPosition] = []
        candidates: for rank in lists[0] {
            let p = arrivals[Int(rank)]
            if !range.contains(p.timestamp) { continue }
            // A later page: only what comes after the cursor (the cursor's walk would skip the rest).
            if let after = bounds.after, bounds.newestFirst ? !(p < after) : !(after < p) { continue }
            if let end, Location(raw: p.location).offset >= end { continue }
            for k in 1..<lists.count {
                // Ranks ascend in every list: search onwards from where the last search stopped.
                var lo = cursors[k]
                var hi = lists[k].count
                while lo < hi {
                    let mid = (lo + hi) >> 1
                    if lists[k][mid] < rank { lo = mid + 1 } else { hi = mid }
                }
                cursors[k] = lo
                if lo == lists[k].count { break candidates }
                if lists[k][lo] != rank { continue candidates }
            }
            if let entityList {
                let at = entityList.lowerBound(TypedPosition(position: p, type: 0))
                guard at < entityList.count, entityList[at].position == p else { continue }
            }
            out.append(p)
        }
        return out
    }

    func wordCursor(_ words: [UInt64], entity: UInt64?, bounds: ReadBounds, end: Int?) -> any PositionCursor {
        Self.cursor(sorting: wordMatches(words, entity: entity, bounds: bounds, end: end), bounds: bounds)
    }

    /// A cursor over the matches of `wordMatches` (already inside `bounds`), sorted into the read's order. The
    /// active segment's reader sorts after releasing `activeLock`.
    static func cursor(sorting matches: [EventPosition], bounds: ReadBounds) -> any PositionCursor {
        var found = matches
        found.sort()
        return ArrayCursor(bounds.newestFirst ? found.reversed().map { ($0, nil) } : found.map { ($0, nil) })
    }

    @inline(__always) private func extraList(_ node: UInt64) -> EdgeList {
        if let list = extra[node] { return list }
        let list = EdgeList()
        extra[node] = list
        return list
    }

    /// Bytes of the id up to and including its second `-` (the whole id when it has fewer).
    static func stemLength(_ id: UnsafeRawBufferPointer) -> Int {
        var dashes = 0
        for i in 0..<id.count where id[i] == 0x2D {
            dashes += 1
            if dashes == 2 { return i + 1 }
        }
        return id.count
    }
}
