/// Which of the indexes a read walks. Every read of events crosses segments through one `MergingIterator`
/// over the lists these name.
public enum ReadSource: Hashable, Sendable {
    /// Every event.
    case all
    /// The events of one type code.
    case type(UInt16)
    /// The events that mention an entity (its adjacency list).
    case entity(String)
    /// The events whose id starts with this (a trailing `*` is allowed). Candidates come from the id-stem lists;
    /// the caller compares whole ids.
    case idPrefix(String)
    /// The events whose words (`TextIndexing`) include every one of `words` (folded words, `TextTokens`), among
    /// those that mention `entity` when given: an intersection of the word lists (and the entity's) per segment.
    /// Candidates: words are found by hash and long words by their first 64 bytes, so the caller checks the text
    /// (`TextQuery.matches`). A segment without words (a store opened without `StoreOptions.text`) gives all its
    /// events, or the entity's.
    case words([String], entity: String?)
}

/// A read's direction and bounds: positions in `range` (by timestamp), newest first or oldest first, strictly
/// after `after` in that order.
public struct ReadBounds: Sendable, Equatable {
    public var range: Range<Int64>
    public var newestFirst: Bool
    public var after: EventPosition?

    public init(range: Range<Int64> = Int64.min..<Int64.max, newestFirst: Bool = true, after: EventPosition? = nil) {
        self.range = range
        self.newestFirst = newestFirst
        self.after = after
    }

    /// Whether `p` comes after `other` in this order.
    @inline(__always) func precedes(_ p: EventPosition, _ other: EventPosition) -> Bool {
        newestFirst ? other < p : p < other
    }

    /// Whether `p` lies inside the bounds.
    @inline(__always) func admits(_ p: EventPosition) -> Bool {
        guard range.contains(p.timestamp) else { return false }
        guard let after else { return true }
        return precedes(after, p)
    }
}

/// One ordered stream of positions, from one list of one segment. `current` is nil once exhausted.
protocol PositionCursor {
    /// The position under the cursor and its event's type code when the list knows it.
    var current: (EventPosition, UInt16?)? { get }
    mutating func advance()
}

/// A cursor over a time-ordered run of positions (type, entity, id-stem and all-events lists).
struct RunCursor: PositionCursor {
    let run: any PositionRun
    let descending: Bool
    private var i: Int
    private let stop: Int
    private(set) var current: (EventPosition, UInt16?)?

    init(_ run: any PositionRun, bounds: ReadBounds) {
        self.run = run
        descending = bounds.newestFirst
        (i, stop) = Self.span(run, bounds: bounds)
        current = nil
        load()
    }

    /// Where a walk of `run` inside `bounds` starts and where it stops: descending, indices `start` down to
    /// `stop` (inclusive); ascending, `start` up to `stop` (exclusive). O(log n).
    static func span(_ run: some PositionRun, bounds: ReadBounds) -> (start: Int, stop: Int) {
        let lo = bounds.range.lowerBound == .min ? 0 : run.lowerBound(EventPosition(timestamp: bounds.range.lowerBound, location: 0))
        let hi = bounds.range.upperBound == .max ? run.count : run.lowerBound(EventPosition(timestamp: bounds.range.upperBound, location: 0))
        if bounds.newestFirst {
            var start = hi - 1
            if let after = bounds.after { start = min(start, run.lowerBound(after) - 1) }
            return (start, lo)
        }
        var start = lo
        if let after = bounds.after {
            let at = run.lowerBound(after)
            start = max(start, at < run.count && run[at] == after ? at + 1 : at)
        }
        return (start, hi)
    }

    private mutating func load() {
        let inside = descending ? i >= stop && i >= 0 : i < stop
        current = inside ? (run[i], run.typeCode(at: i)) : nil
    }

    /// Copies up to `max` positions from the cursor on (walking the run, not locating each index) into `out`
    /// when `keep` says so, and moves past them; returns the last position looked at.
    mutating func take(_ max: Int, into out: inout [(EventPosition, UInt16?)], keep: (EventPosition) -> Bool) -> EventPosition? {
        guard current != nil else { return nil }
        var last: EventPosition?
        var n = 0
        let stop = self.stop
        let descending = self.descending
        run.walk(from: i, descending: descending) { p, t in
            let at = descending ? i - n : i + n
            if descending ? at < stop : at >= stop { return false }
            last = p
            if keep(p) { out.append((p, t)) }
            n += 1
            return n < max
        }
        i += descending ? -n : n
        load()
        return last
    }

    mutating func advance() {
        i += descending ? -1 : 1
        load()
    }
}

/// A cursor over positions copied out of a list that keeps changing (the active segment's), in order.
struct ArrayCursor: PositionCursor {
    let items: [(EventPosition, UInt16?)]
    private var i = 0
    private(set) var current: (EventPosition, UInt16?)?

    /// `items` in the read's order.
    init(_ items: [(EventPosition, UInt16?)]) {
        self.items = items
        current = items.first
    }

    mutating func advance() {
        i += 1
        current = i < items.count ? items[i] : nil
    }
}

/// Merges cursors (any number of segments and lists) into one stream in the read's order; a position met twice
/// (the same event reached through two lists) is given once. A binary heap: O(log cursors) per position.
struct MergingIterator {
    private var heap: [any PositionCursor] = []
    private let newestFirst: Bool
    private var last: EventPosition?

    init(_ cursors: [any PositionCursor], newestFirst: Bool) {
        self.newestFirst = newestFirst
        heap = cursors.filter { $0.current != nil }
        if heap.count > 1 {
            for i in stride(from: heap.count / 2 - 1, through: 0, by: -1) { siftDown(i) }
        }
    }

    @inline(__always) private func before(_ a: Int, _ b: Int) -> Bool {
        let pa = heap[a].current!.0
        let pb = heap[b].current!.0
        return newestFirst ? pb < pa : pa < pb
    }

    private mutating func siftDown(_ start: Int) {
        var i = start
        while true {
            let l = 2 * i + 1
            let r = l + 1
            var best = i
            if l < heap.count, before(l, best) { best = l }
            if r < heap.count, before(r, best) { best = r }
            if best == i { return }
            heap.swapAt(i, best)
            i = best
        }
    }

    /// The next position and its type code (when the list knows it), or nil at the end.
    mutating func next() -> (EventPosition, UInt16?)? {
        while let top = heap.first?.current {
            heap[0].advance()
            if heap[0].current == nil {
                heap.swapAt(0, heap.count - 1)
                heap.removeLast()
            }
            if !heap.isEmpty { siftDown(0) }
            if top.0 == last { continue }
            last = top.0
            return top
        }
        return nil
    }
}
