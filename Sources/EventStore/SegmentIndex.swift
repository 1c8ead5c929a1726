/// Where a record lives: segment id in the high 32 bits, byte offset in the segment in the low 32.
struct Location: Hashable, Comparable {
    var raw: UInt64
    init(raw: UInt64) { self.raw = raw }
    init(segment: UInt64, offset: Int) { raw = (segment << 32) | UInt64(UInt32(offset)) }
    var segment: UInt64 { raw >> 32 }
    var offset: Int { Int(raw & 0xFFFF_FFFF) }
    static func < (a: Location, b: Location) -> Bool { a.raw < b.raw }
}

/// A position in time order: timestamp first, then location to break ties. Also the pagination cursor:
/// it stays valid while new events arrive, and across compaction, because positions of stored events never
/// change (a compacted segment keeps the byte offsets of the segment it was made from).
public struct EventPosition: Sendable, Hashable, Comparable, CustomStringConvertible {
    public var timestamp: Int64
    public var location: UInt64

    public init(timestamp: Int64, location: UInt64) {
        self.timestamp = timestamp
        self.location = location
    }

    public static func < (a: EventPosition, b: EventPosition) -> Bool {
        a.timestamp != b.timestamp ? a.timestamp < b.timestamp : a.location < b.location
    }

    public var description: String { "\(timestamp):\(location)" }
}

/// Event positions of one segment in time order, in memory (`SortedList`) or in a mapped index file.
protocol PositionRun {
    var count: Int { get }
    /// Number of positions less than `p`. O(log n).
    func lowerBound(_ p: EventPosition) -> Int
    func forEachDescending(before end: Int, _ body: (EventPosition) -> Bool)
    func forEachAscending(from start: Int, _ body: (EventPosition) -> Bool)
    subscript(i: Int) -> EventPosition { get }
}

extension PositionRun {
    /// The index range of positions with timestamps in `range`. O(log n).
    func indices(in range: Range<Int64>) -> Range<Int> {
        let lo = lowerBound(EventPosition(timestamp: range.lowerBound, location: 0))
        let hi = lowerBound(EventPosition(timestamp: range.upperBound, location: 0))
        return lo..<max(lo, hi)
    }
}

/// Event positions in time order, growing in memory.
typealias TimedList = SortedList<EventPosition>
extension SortedList: PositionRun where Element == EventPosition {}

/// An edge as seen from one node; ordered by timestamp.
struct EdgeItem: Comparable {
    var timestamp: Int64
    var other: UInt64
    var edgeType: UInt16
    var outgoing: Bool

    static func < (a: EdgeItem, b: EdgeItem) -> Bool {
        if a.timestamp != b.timestamp { return a.timestamp < b.timestamp }
        if a.other != b.other { return a.other < b.other }
        return a.edgeType < b.edgeType
    }
}

/// The adjacency list of one node inside one segment, in time order.
protocol EdgeRun {
    var count: Int { get }
    func forEachDescending(before end: Int, _ body: (EdgeItem) -> Bool)
    subscript(i: Int) -> EdgeItem { get }
}

extension EdgeRun {
    /// Number of edges with timestamps below `timestamp`. O(log n).
    func lowerBound(timestamp: Int64) -> Int {
        var lo = 0
        var hi = count
        while lo < hi {
            let mid = (lo + hi) >> 1
            if self[mid].timestamp < timestamp { lo = mid + 1 } else { hi = mid }
        }
        return lo
    }
}

typealias EdgeList = SortedList<EdgeItem>
extension SortedList: EdgeRun where Element == EdgeItem {}

/// One valid batch frame of a segment: the sparse time index, and where to find an event's own edges.
struct FrameEntry: Equatable {
    var offset: UInt32
    var payloadLength: UInt32
    var minTimestamp: Int64
    var maxTimestamp: Int64
}

/// What a segment's index answers. Every answer is about this segment only; `EventStore` merges segments.
/// Offsets are byte offsets of concept records in the segment's (uncompressed) byte space.
protocol SegmentIndex: AnyObject {
    var conceptCount: Int { get }
    var adjacencyCount: Int { get }
    var duplicateCount: Int { get }
    var recordCount: Int { get }
    /// Smallest and largest record timestamp (`Int64.max`/`Int64.min` when the segment holds none).
    var minTimestamp: Int64 { get }
    var maxTimestamp: Int64 { get }
    var frameCount: Int { get }
    func frame(at i: Int) -> FrameEntry
    /// Calls `body` with the offset of each concept record indexed under `hash` (usually one) until it
    /// returns false.
    func forEachOffset(hash: UInt64, _ body: (Int) -> Bool)
    func typeRun(_ type: UInt16) -> (any PositionRun)?
    var typeCodes: [UInt16] { get }
    /// Each id stem (the id up to its second `-`) with its positions.
    func forEachStem(_ body: (String, any PositionRun) -> Void)
    /// Every indexed event of the segment in time order.
    var allRun: any PositionRun { get }
    func edgeRun(_ node: UInt64) -> (any EdgeRun)?
}

extension SegmentIndex {
    var hasTimeRange: Bool { minTimestamp <= maxTimestamp }

    /// Whether the timestamp could be in this segment.
    func spans(_ timestamp: Int64) -> Bool { minTimestamp <= timestamp && timestamp <= maxTimestamp }

    /// Whether the concept record at `offset` is the indexed copy of its id (not an ignored duplicate).
    func isIndexed(hash: UInt64, offset: Int) -> Bool {
        var found = false
        forEachOffset(hash: hash) { o in
            if o == offset { found = true }
            return !found
        }
        return found
    }

    /// The position in the frame list of the frame that contains byte `offset` (binary search).
    func frameIndex(containing offset: Int) -> Int? {
        var lo = 0
        var hi = frameCount
        while lo < hi {
            let mid = (lo + hi) / 2
            if Int(frame(at: mid).offset) <= offset { lo = mid + 1 } else { hi = mid }
        }
        return lo == 0 ? nil : lo - 1
    }

    /// The frame that contains byte `offset`.
    func frame(containing offset: Int) -> FrameEntry? {
        frameIndex(containing: offset).map { frame(at: $0) }
    }
}

final class StemList {
    let stem: String
    let list = TimedList()
    init(stem: String) { self.stem = stem }
}

/// The in-memory index of one segment: built by appends to the active segment, or by scanning a segment
/// whose index file is missing or damaged. Written to an index file once its segment is sealed.
/// - id hash -> offset (first occurrence; different ids with one hash go to `collisions`, compared in full);
/// - node (entity, time bucket) -> its adjacency list in time order;
/// - type code -> event positions in time order; every event in time order;
/// - id stem (the id up to its second `-`, e.g. `event-spawn_failed-`) -> positions, for prefix reads.
final class MemoryIndex: SegmentIndex {
    let segment: UInt64
    var ids: [UInt64: UInt32] = [:]
    var collisions: [UInt64: [UInt32]] = [:]
    var byType: [UInt16: TimedList] = [:]
    var byStem: [UInt64: StemList] = [:]
    let all = TimedList()
    var edges: [UInt64: EdgeList] = [:]
    var frames: [FrameEntry] = []
    private(set) var conceptCount = 0
    private(set) var adjacencyCount = 0
    private(set) var duplicateCount = 0
    private(set) var recordCount = 0
    private(set) var minTimestamp = Int64.max
    private(set) var maxTimestamp = Int64.min

    private var frameEvents = Set<UInt64>()
    private var frameDuplicates = Set<UInt64>()

    init(segment: UInt64) { self.segment = segment }

    var frameCount: Int { frames.count }
    func frame(at i: Int) -> FrameEntry { frames[i] }

    func forEachOffset(hash: UInt64, _ body: (Int) -> Bool) {
        guard let first = ids[hash] else { return }
        if !body(Int(first)) { return }
        guard let more = collisions[hash] else { return }
        for o in more where !body(Int(o)) { return }
    }

    func typeRun(_ type: UInt16) -> (any PositionRun)? { byType[type] }
    var typeCodes: [UInt16] { Array(byType.keys) }
    func forEachStem(_ body: (String, any PositionRun) -> Void) {
        for s in byStem.values { body(s.stem, s.list) }
    }
    var allRun: any PositionRun { all }
    func edgeRun(_ node: UInt64) -> (any EdgeRun)? { edges[node] }

    /// Indexes the records of one valid frame at `frameOffset` whose payload is `payload`.
    /// `isKnown` says whether an id is already stored (in this or another segment): such a record is a
    /// duplicate (a resent batch) and is not indexed, nor are its edges.
    func indexFrame(
        frameOffset: Int, payload: UnsafeRawBufferPointer, minTimestamp frameMin: Int64, maxTimestamp frameMax: Int64,
        recordCount frameRecords: Int, isKnown: (ConceptView) -> Bool
    ) {
        let payloadOffset = frameOffset + Format.frameHeaderSize
        frames.append(
            FrameEntry(offset: UInt32(frameOffset), payloadLength: UInt32(payload.count), minTimestamp: frameMin,
                       maxTimestamp: frameMax))
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
            if isKnown(view) {
                frameDuplicates.insert(h)
                duplicateCount += 1
                continue
            }
            if ids[h] == nil { ids[h] = offset } else { collisions[h, default: []].append(offset) }
            frameEvents.insert(h)
            conceptCount += 1
            let position = EventPosition(timestamp: view.timestamp, location: Location(segment: segment, offset: Int(offset)).raw)
            all.insert(position)
            if let list = byType[view.typeCode] {
                list.insert(position)
            } else {
                let list = TimedList()
                list.insert(position)
                byType[view.typeCode] = list
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
            // An event's own edges are read from its frame; only the other end's list gets the item.
            if !frameEvents.contains(source) {
                edgeList(source).insert(EdgeItem(timestamp: ts, other: target, edgeType: type, outgoing: true))
            }
            if !frameEvents.contains(target) {
                edgeList(target).insert(EdgeItem(timestamp: ts, other: source, edgeType: type, outgoing: false))
            }
        }
    }

    /// Makes every list read-only-safe (see `SortedList.freeze`); called once the segment is sealed, so the
    /// index file can be encoded without holding the store's lock while readers use the same lists.
    func freeze() {
        all.freeze()
        for l in byType.values { l.freeze() }
        for s in byStem.values { s.list.freeze() }
        for l in edges.values { l.freeze() }
        frozen = true
    }

    private(set) var frozen = false

    @inline(__always) private func edgeList(_ node: UInt64) -> EdgeList {
        if let list = edges[node] { return list }
        let list = EdgeList()
        edges[node] = list
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
