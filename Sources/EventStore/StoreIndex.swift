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
/// it stays valid while new events arrive because positions of stored events never change.
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

/// Event positions in time order.
typealias TimedList = SortedList<EventPosition>

extension SortedList where Element == EventPosition {
    /// The global index range of positions with timestamps in `range`. O(log n).
    func indices(in range: Range<Int64>) -> Range<Int> {
        let lo = lowerBound(EventPosition(timestamp: range.lowerBound, location: 0))
        let hi = lowerBound(EventPosition(timestamp: range.upperBound, location: 0))
        return lo..<max(lo, hi)
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

/// The adjacency list of one node (entity or time bucket), in time order.
typealias EdgeList = SortedList<EdgeItem>

final class StemList {
    let stem: String
    let list = TimedList()
    init(stem: String) { self.stem = stem }
}

/// The in-memory indexes, rebuilt by scanning on open and updated on every append:
/// - id hash -> location (first occurrence; different ids with one hash go to `collisions`, compared in full);
/// - node (entity, time bucket) -> its adjacency list in time order; events are resolved from their frame;
/// - type code -> event positions in time order;
/// - id stem (the id up to its second `-`, e.g. `event-spawn_failed-`) -> positions, for prefix reads.
/// The time index is per segment (min/max) and per frame (the sparse index), kept on `Segment`.
final class StoreIndex {
    var ids: [UInt64: Location] = [:]
    var collisions: [UInt64: [Location]] = [:]
    var byType: [UInt16: TimedList] = [:]
    var byStem: [UInt64: StemList] = [:]
    var edges: [UInt64: EdgeList] = [:]
    var conceptCount = 0
    var adjacencyCount = 0
    var duplicateCount = 0

    private var frameEvents = Set<UInt64>()
    private var frameDuplicates = Set<UInt64>()

    /// Indexes the records of one frame whose payload starts at `payloadOffset` in `segment`.
    /// `lookup` reads the concept record at a location (for full-id comparison).
    func indexFrame(
        segment: UInt64, payloadOffset: Int, payload: UnsafeRawBufferPointer,
        lookup: (Location) -> ConceptView?
    ) {
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
            let loc = Location(segment: segment, offset: payloadOffset + r.offset)
            let h = view.idHash
            if let first = ids[h] {
                if isSameId(view, at: first, lookup) || (collisions[h]?.contains { isSameId(view, at: $0, lookup) } ?? false) {
                    frameDuplicates.insert(h)
                    duplicateCount += 1
                    continue
                }
                collisions[h, default: []].append(loc)
            } else {
                ids[h] = loc
            }
            frameEvents.insert(h)
            conceptCount += 1
            let position = EventPosition(timestamp: view.timestamp, location: loc.raw)
            if let list = byType[view.typeCode] {
                list.insert(position)
            } else {
                let list = TimedList()
                list.insert(position)
                byType[view.typeCode] = list
            }
            let idBytes = view.idBytes
            let stemLength = StoreIndex.stemLength(idBytes)
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
            if !frameEvents.contains(source) {
                edgeList(source).insert(EdgeItem(timestamp: ts, other: target, edgeType: type, outgoing: true))
            }
            if !frameEvents.contains(target) {
                edgeList(target).insert(EdgeItem(timestamp: ts, other: source, edgeType: type, outgoing: false))
            }
        }
    }

    @inline(__always) private func edgeList(_ node: UInt64) -> EdgeList {
        if let list = edges[node] { return list }
        let list = EdgeList()
        edges[node] = list
        return list
    }

    private func isSameId(_ view: ConceptView, at loc: Location, _ lookup: (Location) -> ConceptView?) -> Bool {
        guard let existing = lookup(loc) else { return false }
        return existing.idBytes.elementsEqual(view.idBytes)
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
