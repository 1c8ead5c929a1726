/// A sorted multiset in chunks of at most `2 * chunkSize` elements (the layout of Python's sortedcontainers):
/// appending in order is O(1); an out-of-order insert costs a binary search and a move of at most one chunk,
/// so a producer replaying an hour-old spool does not shift everything after it. Rank queries (how many
/// elements precede `x`) are O(log n) once the per-chunk prefix counts are current; they are recomputed
/// lazily after out-of-order inserts.
final class SortedList<Element: Comparable> {
    static var chunkSize: Int { 512 }

    private(set) var chunks: [ContiguousArray<Element>] = []
    private var maxes: [Element] = []
    /// prefix[i]: elements before chunk i; valid for i < prefixValid.
    private var prefix: [Int] = []
    private var prefixValid = 0
    private(set) var count = 0

    var isEmpty: Bool { count == 0 }
    var last: Element? { maxes.last }

    func insert(_ x: Element) {
        count += 1
        if chunks.isEmpty {
            chunks.append([x])
            maxes.append(x)
            prefix.append(0)
            prefixValid = 1
            return
        }
        let lastIndex = chunks.count - 1
        let ci: Int
        if !(x < maxes[lastIndex]) {
            ci = lastIndex
            chunks[ci].append(x)
            maxes[ci] = x
        } else {
            ci = firstChunk(notBelow: x)
            let at = Self.upperBound(chunks[ci], x)
            chunks[ci].insert(x, at: at)
            prefixValid = min(prefixValid, ci + 1)
        }
        if chunks[ci].count >= 2 * Self.chunkSize { split(ci) }
    }

    private func split(_ ci: Int) {
        let half = chunks[ci].count / 2
        let right = ContiguousArray(chunks[ci][half...])
        chunks[ci].removeLast(chunks[ci].count - half)
        maxes[ci] = chunks[ci][half - 1]
        chunks.insert(right, at: ci + 1)
        maxes.insert(right[right.count - 1], at: ci + 1)
        prefix.insert(0, at: ci + 1)
        prefixValid = min(prefixValid, ci + 1)
    }

    /// Index of the first chunk whose maximum is not below `x` (chunks.count when none).
    private func firstChunk(notBelow x: Element) -> Int {
        var lo = 0
        var hi = maxes.count
        while lo < hi {
            let mid = (lo + hi) >> 1
            if maxes[mid] < x { lo = mid + 1 } else { hi = mid }
        }
        return lo
    }

    private static func lowerBound(_ a: ContiguousArray<Element>, _ x: Element) -> Int {
        var lo = 0
        var hi = a.count
        while lo < hi {
            let mid = (lo + hi) >> 1
            if a[mid] < x { lo = mid + 1 } else { hi = mid }
        }
        return lo
    }

    private static func upperBound(_ a: ContiguousArray<Element>, _ x: Element) -> Int {
        var lo = 0
        var hi = a.count
        while lo < hi {
            let mid = (lo + hi) >> 1
            if x < a[mid] { hi = mid } else { lo = mid + 1 }
        }
        return lo
    }

    /// Brings the lazy rank data up to date, so that reads no longer write: after this, and with no more
    /// inserts, the list may be read from several threads at once.
    func freeze() { ensurePrefix() }

    private func ensurePrefix() {
        guard prefixValid < chunks.count else { return }
        if prefixValid == 0 {
            prefix[0] = 0
            prefixValid = 1
        }
        for i in prefixValid..<chunks.count { prefix[i] = prefix[i - 1] + chunks[i - 1].count }
        prefixValid = chunks.count
    }

    /// Number of elements less than `x`. O(log n) (plus a lazy O(chunks) prefix refresh after disorder).
    func lowerBound(_ x: Element) -> Int {
        let ci = firstChunk(notBelow: x)
        if ci == chunks.count { return count }
        ensurePrefix()
        return prefix[ci] + Self.lowerBound(chunks[ci], x)
    }

    /// (chunk, offset) of global index `i` (0 <= i < count).
    private func locate(_ i: Int) -> (Int, Int) {
        ensurePrefix()
        var lo = 0
        var hi = chunks.count
        while lo < hi {
            let mid = (lo + hi) >> 1
            if prefix[mid] <= i { lo = mid + 1 } else { hi = mid }
        }
        return (lo - 1, i - prefix[lo - 1])
    }

    /// Calls `body` with elements at global indices `end-1, end-2, ...` down to 0 until it returns false.
    func forEachDescending(before end: Int, _ body: (Element) -> Bool) {
        guard end > 0, count > 0 else { return }
        var (ci, off) = locate(min(end, count) - 1)
        while ci >= 0 {
            let chunk = chunks[ci]
            while off >= 0 {
                if !body(chunk[off]) { return }
                off -= 1
            }
            ci -= 1
            if ci >= 0 { off = chunks[ci].count - 1 }
        }
    }

    /// Calls `body` with elements at global indices `start, start+1, ...` until it returns false.
    func forEachAscending(from start: Int, _ body: (Element) -> Bool) {
        guard start < count else { return }
        var (ci, off) = locate(max(0, start))
        while ci < chunks.count {
            let chunk = chunks[ci]
            while off < chunk.count {
                if !body(chunk[off]) { return }
                off += 1
            }
            ci += 1
            off = 0
        }
    }

    /// The element at global index `i`.
    subscript(i: Int) -> Element {
        let (ci, off) = locate(i)
        return chunks[ci][off]
    }
}
