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
    subscript(i: Int) -> EventPosition { get }
    /// The type code of the event at `i`, when the run knows it (type lists, entity lists and index files do).
    func typeCode(at i: Int) -> UInt16?
    /// Calls `body` with the positions and types at indices `from`, `from - 1`, ... (descending) or `from`,
    /// `from + 1`, ... until it returns false or the run ends. Lists in memory walk their chunks instead of
    /// locating every index.
    func walk(from: Int, descending: Bool, _ body: (EventPosition, UInt16?) -> Bool)
}

extension PositionRun {
    func walk(from: Int, descending: Bool, _ body: (EventPosition, UInt16?) -> Bool) {
        var i = from
        while i >= 0, i < count {
            if !body(self[i], typeCode(at: i)) { return }
            i += descending ? -1 : 1
        }
    }
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
extension SortedList: PositionRun where Element == EventPosition {
    func typeCode(at i: Int) -> UInt16? { nil }
    func walk(from: Int, descending: Bool, _ body: (EventPosition, UInt16?) -> Bool) {
        if descending { forEachDescending(before: from + 1) { body($0, nil) } } else { forEachAscending(from: from) { body($0, nil) } }
    }
}

/// A position with its event's type code (an entity's list in memory), ordered by position.
struct TypedPosition: Comparable {
    var position: EventPosition
    var type: UInt16
    static func < (a: TypedPosition, b: TypedPosition) -> Bool { a.position < b.position }
    static func == (a: TypedPosition, b: TypedPosition) -> Bool { a.position == b.position }
}

/// An entity's events in one segment, in memory.
struct TypedRun: PositionRun {
    let list: SortedList<TypedPosition>
    var count: Int { list.count }
    subscript(i: Int) -> EventPosition { list[i].position }
    func typeCode(at i: Int) -> UInt16? { list[i].type }
    func lowerBound(_ p: EventPosition) -> Int { list.lowerBound(TypedPosition(position: p, type: 0)) }
    func walk(from: Int, descending: Bool, _ body: (EventPosition, UInt16?) -> Bool) {
        if descending {
            list.forEachDescending(before: from + 1) { body($0.position, $0.type) }
        } else {
            list.forEachAscending(from: from) { body($0.position, $0.type) }
        }
    }
}

/// The events of one type in memory: every position has that type.
struct KnownTypeRun: PositionRun {
    let list: TimedList
    let type: UInt16
    var count: Int { list.count }
    subscript(i: Int) -> EventPosition { list[i] }
    func typeCode(at i: Int) -> UInt16? { type }
    func lowerBound(_ p: EventPosition) -> Int { list.lowerBound(p) }
    func walk(from: Int, descending: Bool, _ body: (EventPosition, UInt16?) -> Bool) {
        if descending { list.forEachDescending(before: from + 1) { body($0, type) } } else { list.forEachAscending(from: from) { body($0, type) } }
    }
}

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

/// Adjacency entries of one node inside one segment, in time order: the entries that are not the store's
/// standard two kinds (entity -> event, event -> its time bucket), which the entity lists and the time order
/// answer.
protocol EdgeRun {
    var count: Int { get }
    subscript(i: Int) -> EdgeItem { get }
}

extension EdgeRun {
    /// Calls `body` with entries at indices `end-1, end-2, ...` down to 0 until it returns false.
    func forEachDescending(before end: Int, _ body: (EdgeItem) -> Bool) {
        var i = min(end, count) - 1
        while i >= 0 {
            if !body(self[i]) { return }
            i -= 1
        }
    }
}

typealias EdgeList = SortedList<EdgeItem>
extension SortedList: EdgeRun where Element == EdgeItem {}

/// One valid batch frame of a segment: the sparse time index, and where to find an event's own edges.
struct FrameEntry: Equatable {
    var offset: UInt32
    var payloadLength: UInt32
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
    /// The events of the segment that mention an entity (its entity -> event adjacency entries), in time order.
    func entityRun(_ node: UInt64) -> (any PositionRun)?
    /// The minute of a time bucket node that events of the segment link to (event -> time bucket entries).
    func bucketMinute(_ node: UInt64) -> Int64?
    /// A node's other adjacency entries (neither of the two standard kinds), in time order.
    func extraEdges(_ node: UInt64) -> (any EdgeRun)?
    /// The text scheme its words were taken with (`TextIndexing.scheme`; 0: the index holds no words).
    var textScheme: UInt32 { get }
    /// A cursor over the events whose words include every hash of `words` (`TextTokens.hash`) and, when `entity` is
    /// given, that mention it, inside `bounds`; records at or past `end` are left out. Candidates: the caller checks
    /// the words on the event. Only for an index with words (`textScheme != 0`).
    func wordCursor(_ words: [UInt64], entity: UInt64?, bounds: ReadBounds, end: Int?) -> any PositionCursor
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
