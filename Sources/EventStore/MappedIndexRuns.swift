/// A posting list of an index file: ascending ordinals in blocks of 128 (the first of each block in a
/// directory, the rest bit-packed as differences from it).
struct PostingList {
    let bytes: UnsafeRawBufferPointer
    let start: Int
    let count: Int

    /// The `k`th ordinal. O(1).
    @inline(__always) subscript(k: Int) -> Int {
        let block = k / IndexFile.blockSize
        let dir = start + 8 + block * IndexFile.postingBlockEntrySize
        guard k >= 0, k < count, dir + IndexFile.postingBlockEntrySize <= bytes.count else { return 0 }
        let first = Int(bytes.u32(dir))
        let bits = Int(bytes.u8(dir + 4))
        let data = start + Int(bytes.u32(dir + 8))
        return first + Int(truncatingIfNeeded: BitPack.extract(bytes, base: data, index: k - block * IndexFile.blockSize, bits: bits))
    }
}

/// Positions of an index file's events through a list of ordinals: all of them, one, or a posting list.
struct OrdinalRun: PositionRun {
    enum List {
        case all(Int)
        case single(Int)
        case posting(PostingList)
    }

    let index: MappedIndex
    let list: List

    var count: Int {
        switch list {
        case .all(let n): n
        case .single: 1
        case .posting(let p): p.count
        }
    }

    @inline(__always) func ordinal(_ k: Int) -> Int {
        switch list {
        case .all: k
        case .single(let o): o
        case .posting(let p): p[k]
        }
    }

    subscript(i: Int) -> EventPosition { index.position(ordinal(i)) }

    func typeCode(at i: Int) -> UInt16? { index.typeCode(ordinal: ordinal(i)) }

    func lowerBound(_ p: EventPosition) -> Int {
        var lo = 0
        var hi = count
        while lo < hi {
            let mid = (lo + hi) >> 1
            if self[mid] < p { lo = mid + 1 } else { hi = mid }
        }
        return lo
    }

    /// Whether the list holds `ordinal`, searching from index `from` on (lists ascend). O(log n). Returns the
    /// index of the first entry not below it, to search onwards from next time in an ascending walk.
    func find(ordinal o: Int, from: Int = 0) -> (found: Bool, at: Int) {
        switch list {
        case .all(let n): return (o >= 0 && o < n, o)
        case .single(let s): return (s == o, s < o ? 1 : 0)
        case .posting(let p):
            var lo = max(0, min(from, p.count))
            var hi = p.count
            while lo < hi {
                let mid = (lo + hi) >> 1
                if p[mid] < o { lo = mid + 1 } else { hi = mid }
            }
            return (lo < p.count && p[lo] == o, lo)
        }
    }
}

/// The entries of one ordinal list (the shortest of a word search) that every other list also holds, in the read's
/// order inside its bounds: the walk of the shortest list with a binary search in each other per entry.
struct IntersectionCursor: PositionCursor {
    let driver: OrdinalRun
    let others: [OrdinalRun]
    let descending: Bool
    private var i: Int
    private let stop: Int
    /// Per other list, where the last search ended (an ascending walk searches onwards from there).
    private var from: [Int]
    private(set) var current: (EventPosition, UInt16?)?

    init(driver: OrdinalRun, others: [OrdinalRun], bounds: ReadBounds) {
        self.driver = driver
        self.others = others
        descending = bounds.newestFirst
        (i, stop) = RunCursor.span(driver, bounds: bounds)
        from = [Int](repeating: 0, count: others.count)
        current = nil
        settle()
    }

    private mutating func settle() {
        candidates: while descending ? i >= stop && i >= 0 : i < stop {
            let o = driver.ordinal(i)
            for k in others.indices {
                let (found, at) = others[k].find(ordinal: o, from: descending ? 0 : from[k])
                if !descending { from[k] = at }
                if !found {
                    i += descending ? -1 : 1
                    continue candidates
                }
            }
            current = (driver.index.position(o), driver.index.typeCode(ordinal: o))
            return
        }
        current = nil
    }

    mutating func advance() {
        i += descending ? -1 : 1
        settle()
    }
}

/// A node's adjacency entries (24 bytes each) in a mapped index file, in time order.
struct MappedEdges: EdgeRun {
    let bytes: UnsafeRawBufferPointer
    var count: Int { bytes.count / IndexFile.edgeEntrySize }

    subscript(i: Int) -> EdgeItem {
        let at = i * IndexFile.edgeEntrySize
        return EdgeItem(timestamp: bytes.i64(at), other: bytes.u64(at + 8), edgeType: bytes.u16(at + 16), outgoing: bytes.u8(at + 18) != 0)
    }
}
