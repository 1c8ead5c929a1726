#if canImport(Glibc)
import Glibc
#endif

/// A segment's index read from its mapped index file (`IndexFile`, version 2). Immutable once opened, so any
/// number of readers use it at once without a lock (only the first check of each section is serialized).
/// Every accessor bounds-checks what it reads, so even a file that passed its checksums but lies cannot make a
/// read go outside the mapping.
final class MappedIndex: SegmentIndex, @unchecked Sendable {
    let segment: UInt64
    let path: String
    let header: IndexFile.Header
    private let fd: Int32
    private let base: UnsafeRawPointer
    private let length: Int
    private let sys: SystemCalls
    private let checks = ConditionLock()
    private var verified = [Bool](repeating: false, count: IndexFile.sectionCount)
    private var closed = false
    /// Every section has passed its check (one lock, no loop, on the read path).
    private var allVerified = false
    /// Set when a section failed its checksum; the store stops using this index and rebuilds it.
    private var damageText: String?
    private let sections: [UnsafeRawBufferPointer]

    /// Opens and maps an index file and checks its header. Sections are checked on first use.
    init(path: String, segment: UInt64, sys: SystemCalls) throws(StoreError) {
        self.segment = segment
        self.path = path
        self.sys = sys
        (fd, base, length, header) = try sys.mapSegmentFile(
            path, segment: segment, minimum: 12, what: "index file", parse: IndexFile.parseHeader, segmentOf: \.segment)
        let start = base
        sections = header.sections.map { UnsafeRawBufferPointer(start: start + $0.offset, count: $0.length) }
    }

    deinit { close() }

    /// Unmaps the file. Idempotent; also done when the last reference goes (a snapshot may hold it after the
    /// store has replaced it).
    func close() {
        checks.withLock {
            guard !closed else { return }
            closed = true
            sys.unmap(base, length: length)
            sys.close(fd)
        }
    }

    var fileBytes: Int { length }
    var conceptCount: Int { header.conceptCount }
    var adjacencyCount: Int { header.adjacencyCount }
    var duplicateCount: Int { header.duplicateCount }
    var recordCount: Int { header.recordCount }
    var minTimestamp: Int64 { header.minTimestamp }
    var maxTimestamp: Int64 { header.maxTimestamp }
    var damage: String? { checks.withLock { damageText } }

    /// Checks the checksum of every section not checked yet; returns the first problem. The store calls this
    /// before it uses the index (the accessors below read without checking).
    func verifyAll() -> String? {
        if checks.withLock({ allVerified }) { return nil }
        for s in IndexFile.Section.allCases { verify(s) }
        return checks.withLock {
            allVerified = damageText == nil
            return damageText
        }
    }

    /// Checks the sections id lookups need.
    func verifyIds() -> String? {
        verify(.ids)
        verify(.time)
        return damage
    }

    /// Checks a section against its checksum the first time.
    private func verify(_ s: IndexFile.Section) {
        checks.withLock {
            if verified[s.rawValue] || damageText != nil { return }
            let (offset, count, sum) = header.sections[s.rawValue]
            guard Hash.bytes(sections[s.rawValue]) == sum else {
                damageText = "section \(s.name) (offset \(offset), \(count) bytes) fails its checksum"
                return
            }
            verified[s.rawValue] = true
            // Checking read every page of the section; let them go from this process's resident set (they stay
            // in the page cache), so memory follows what queries touch, not the size of the store.
            let page = 4096
            let first = (offset + page - 1) / page * page
            let last = (offset + count) / page * page
            if last > first { _ = madvise(UnsafeMutableRawPointer(mutating: base + first), last - first, MADV_DONTNEED) }
        }
    }

    /// The bytes of a section (bounds checked against the file when the header was parsed).
    @inline(__always) private func section(_ s: IndexFile.Section) -> UnsafeRawBufferPointer { sections[s.rawValue] }

    // MARK: The time column

    /// Timestamp and byte offset of the event with ordinal `i` (0 ..< conceptCount). O(1).
    @inline(__always)
    func entry(_ i: Int) -> (timestamp: Int64, offset: Int) {
        let t = timeSection
        let block = i / IndexFile.blockSize
        let dir = 8 + block * IndexFile.timeBlockEntrySize
        guard i >= 0, dir + IndexFile.timeBlockEntrySize <= t.count else { return (0, 0) }
        let baseTs = t.i64(dir)
        let baseOffset = t.u32(dir + 8)
        let tsBits = Int(t.u8(dir + 12))
        let offsetBits = Int(t.u8(dir + 13))
        let blocks = Int(t.u32(4))
        let dataStart = 8 + blocks * IndexFile.timeBlockEntrySize
        let data = dataStart &+ Int(truncatingIfNeeded: t.u64(dir + 16))
        let inBlock = min(IndexFile.blockSize, conceptCount - block * IndexFile.blockSize)
        let j = i - block * IndexFile.blockSize
        let ts = baseTs &+ Int64(bitPattern: BitPack.extract(t, base: data, index: j, bits: tsBits))
        let offset = UInt64(baseOffset) &+ BitPack.extract(t, base: data + BitPack.byteCount(inBlock, bits: tsBits), index: j, bits: offsetBits)
        return (ts, Int(truncatingIfNeeded: offset & 0xFFFF_FFFF))
    }

    @inline(__always) func position(_ i: Int) -> EventPosition {
        let e = entry(i)
        return EventPosition(timestamp: e.timestamp, location: Location(segment: segment, offset: e.offset).raw)
    }

    private var timeSection: UnsafeRawBufferPointer { sections[IndexFile.Section.time.rawValue] }
    private var typesSection: UnsafeRawBufferPointer { sections[IndexFile.Section.types.rawValue] }
    private var postingsSection: UnsafeRawBufferPointer { sections[IndexFile.Section.postings.rawValue] }

    /// The type code of the event with ordinal `i`.
    func typeCode(ordinal i: Int) -> UInt16? {
        let t = typesSection
        guard t.count >= 8 else { return nil }
        let codes = Int(t.u16(0))
        let width = Int(t.u8(2))
        let column = 8 + codes * IndexFile.typeEntrySize
        let at = column + i * width
        guard i >= 0, at + width <= t.count, width == 1 || width == 2 else { return nil }
        let k = width == 1 ? Int(t.u8(at)) : Int(t.u16(at))
        guard k < codes else { return nil }
        return t.u16(8 + k * IndexFile.typeEntrySize)
    }

    /// The posting list at `ref` in the postings section.
    func postingList(at ref: Int) -> PostingList? { postingList(at: ref, in: postingsSection) }

    /// The posting list at `ref` in section `p` (its count, block count and directory checked against `p`).
    private func postingList(at ref: Int, in p: UnsafeRawBufferPointer) -> PostingList? {
        guard ref >= 0, ref <= p.count - 8 else { return nil }
        let count = Int(p.u32(ref))
        let blocks = Int(p.u32(ref + 4))
        guard blocks == (count + IndexFile.blockSize - 1) / IndexFile.blockSize,
            ref + 8 + blocks * IndexFile.postingBlockEntrySize <= p.count
        else { return nil }
        return PostingList(bytes: p, start: ref, count: count)
    }

    /// The index of the entry whose leading u64 is `key` in a table of `count` entries of `entrySize` bytes
    /// sorted by that u64, starting at byte `base` of `bytes`; nil when there is none. O(log count). The caller
    /// has checked that the table fits in `bytes`.
    private func find(_ key: UInt64, in bytes: UnsafeRawBufferPointer, base: Int, count: Int, entrySize: Int) -> Int? {
        var lo = 0
        var hi = count
        while lo < hi {
            let mid = (lo + hi) >> 1
            if bytes.u64(base + mid * entrySize) < key { lo = mid + 1 } else { hi = mid }
        }
        guard lo < count, bytes.u64(base + lo * entrySize) == key else { return nil }
        return lo
    }

    // MARK: SegmentIndex

    var frameCount: Int { section(.frames).count / IndexFile.frameEntrySize }
    func frame(at i: Int) -> FrameEntry {
        let b = section(.frames)
        let at = i * IndexFile.frameEntrySize
        guard at + IndexFile.frameEntrySize <= b.count else { return FrameEntry(offset: 0, payloadLength: 0) }
        return FrameEntry(offset: b.u32(at), payloadLength: b.u32(at + 4))
    }

    func forEachOffset(hash: UInt64, _ body: (Int) -> Bool) {
        let ids = section(.ids)
        guard ids.count >= 12 else { return }
        let bits = Int(ids.u32(0))
        let n = Int(ids.u32(4))
        guard bits <= 24 else { return }
        let entries = 8 + 4 * ((1 << bits) + 1)
        guard entries + n * IndexFile.idEntrySize <= ids.count else { return }
        let bucket = IndexFile.bucketOf(hash, bits: bits)
        var lo = min(n, Int(ids.u32(8 + 4 * bucket)))
        var hi = min(n, Int(ids.u32(12 + 4 * bucket)))
        let want = IndexFile.fragment(hash, bits: bits)
        while lo < hi {
            let mid = (lo + hi) >> 1
            if ids.u32(entries + mid * IndexFile.idEntrySize) < want { lo = mid + 1 } else { hi = mid }
        }
        var i = lo
        while i < n, ids.u32(entries + i * IndexFile.idEntrySize) == want {
            let ordinal = Int(ids.u32(entries + i * IndexFile.idEntrySize + 4))
            if ordinal < conceptCount, !body(entry(ordinal).offset) { return }
            i += 1
        }
    }

    func typeRun(_ type: UInt16) -> (any PositionRun)? {
        let t = typesSection
        guard t.count >= 8 else { return nil }
        for k in 0..<Int(t.u16(0)) {
            let at = 8 + k * IndexFile.typeEntrySize
            guard at + IndexFile.typeEntrySize <= t.count else { return nil }
            if t.u16(at) == type {
                return postingList(at: Int(truncatingIfNeeded: t.u64(at + 8))).map { OrdinalRun(index: self, list: .posting($0)) }
            }
        }
        return nil
    }

    var typeCodes: [UInt16] {
        let t = typesSection
        guard t.count >= 8 else { return [] }
        let n = min(Int(t.u16(0)), (t.count - 8) / IndexFile.typeEntrySize)
        return (0..<n).map { t.u16(8 + $0 * IndexFile.typeEntrySize) }
    }

    func forEachStem(_ body: (String, any PositionRun) -> Void) {
        let s = section(.stems)
        guard s.count >= 8 else { return }
        let entries = Int(s.u32(0))
        guard entries <= (s.count - 8) / IndexFile.stemEntrySize else { return }
        let namesStart = 8 + entries * IndexFile.stemEntrySize
        for i in 0..<entries {
            let at = 8 + i * IndexFile.stemEntrySize
            let nameOffset = Int(s.u32(at))
            let nameLength = Int(s.u32(at + 4))
            guard nameOffset + nameLength <= s.count - namesStart else { continue }
            let run: (any PositionRun)?
            if s.u32(at + 8) == 0 {
                run = typeRun(UInt16(truncatingIfNeeded: s.u32(at + 12)))
            } else {
                run = postingList(at: Int(s.u32(at + 12))).map { OrdinalRun(index: self, list: .posting($0)) }
            }
            if let run { body(s.string(namesStart + nameOffset, nameLength), run) }
        }
    }

    var allRun: any PositionRun { OrdinalRun(index: self, list: .all(conceptCount)) }

    func entityRun(_ node: UInt64) -> (any PositionRun)? {
        let e = section(.entities)
        guard let k = find(node, in: e, base: 0, count: e.count / IndexFile.entityEntrySize,
                           entrySize: IndexFile.entityEntrySize)
        else { return nil }
        let at = k * IndexFile.entityEntrySize
        let count = Int(e.u32(at + 8))
        let ref = Int(e.u32(at + 12))
        if count == 1 { return ref < conceptCount ? OrdinalRun(index: self, list: .single(ref)) : nil }
        return postingList(at: ref).map { OrdinalRun(index: self, list: .posting($0)) }
    }

    func bucketMinute(_ node: UInt64) -> Int64? {
        let b = section(.buckets)
        guard let k = find(node, in: b, base: 0, count: b.count / IndexFile.bucketEntrySize,
                           entrySize: IndexFile.bucketEntrySize)
        else { return nil }
        return b.i64(k * IndexFile.bucketEntrySize + 8)
    }

    var textScheme: UInt32 { header.textScheme }

    /// The events whose text has the word with hash `word` (ordinals in time order), or nil when none has.
    func wordRun(_ word: UInt64) -> OrdinalRun? {
        let s = section(.words)
        guard s.count >= 8 else { return nil }
        let n = Int(s.u32(0))
        guard n <= (s.count - 8) / IndexFile.wordEntrySize else { return nil }
        guard let k = find(word, in: s, base: 8, count: n, entrySize: IndexFile.wordEntrySize) else { return nil }
        let at = 8 + k * IndexFile.wordEntrySize
        let count = Int(s.u32(at + 8))
        let ref = Int(s.u32(at + 12))
        if count == 1 { return ref < conceptCount ? OrdinalRun(index: self, list: .single(ref)) : nil }
        // The list's own count must be the entry's.
        guard let list = postingList(at: ref, in: s), list.count == count else { return nil }
        return OrdinalRun(index: self, list: .posting(list))
    }

    func wordCursor(_ words: [UInt64], entity: UInt64?, bounds: ReadBounds, end: Int?) -> any PositionCursor {
        var runs: [OrdinalRun] = []
        for w in words {
            guard let run = wordRun(w) else { return ArrayCursor([]) }
            runs.append(run)
        }
        if let entity {
            guard let run = entityRun(entity) as? OrdinalRun else { return ArrayCursor([]) }
            runs.append(run)
        }
        guard !runs.isEmpty else { return ArrayCursor([]) }
        runs.sort { $0.count < $1.count }
        return IntersectionCursor(driver: runs[0], others: Array(runs.dropFirst()), bounds: bounds)
    }

    func extraEdges(_ node: UInt64) -> (any EdgeRun)? {
        let s = section(.edges)
        guard s.count >= 8 else { return nil }
        let nodes = Int(s.u32(0))
        guard nodes <= (s.count - 8) / IndexFile.edgeNodeEntrySize else { return nil }
        guard let k = find(node, in: s, base: 8, count: nodes, entrySize: IndexFile.edgeNodeEntrySize) else { return nil }
        let at = 8 + k * IndexFile.edgeNodeEntrySize
        let edgesStart = 8 + nodes * IndexFile.edgeNodeEntrySize
        let total = (s.count - edgesStart) / IndexFile.edgeEntrySize
        let start = min(Int(s.u32(at + 8)), total)
        let count = min(Int(s.u32(at + 12)), total - start)
        return MappedEdges(bytes: s.slice(edgesStart + start * IndexFile.edgeEntrySize, count * IndexFile.edgeEntrySize))
    }
}
