#if canImport(Glibc)
import Glibc
#endif

/// The index file of a sealed segment (`seg-NNNNNNNNNN.sgi`): the segment's index written once at seal, then
/// memory-mapped on open so opening a store does not scan sealed data and resident memory does not grow with
/// the number of events. Layout in docs/FORMAT.md ("Index files").
///
/// The header carries its own checksum and one checksum per section. The header is checked when the file is
/// opened; a section is checked the first time it is used (so opening stays O(segments), not O(bytes)). A file
/// whose header or a section fails its checksum is never used: the store rebuilds the index from the segment.
enum IndexFile {
    static let magic: [UInt8] = Array("SGEVIDX1".utf8)
    static let version: UInt32 = 1
    static let headerSize = 288
    static let sectionCount = 8
    static let sectionTableOffset = 80
    static let headerChecksumOffset = 272

    enum Section: Int, CaseIterable {
        case ids = 0, idDirectory, positions, types, stems, nodes, edges, frames
        var name: String {
            switch self {
            case .ids: "ids"
            case .idDirectory: "id directory"
            case .positions: "positions"
            case .types: "types"
            case .stems: "stems"
            case .nodes: "nodes"
            case .edges: "edges"
            case .frames: "frames"
            }
        }
    }

    static let idEntrySize = 12
    static let positionSize = 12
    static let typeEntrySize = 12
    static let stemEntrySize = 16
    static let nodeEntrySize = 16
    static let edgeEntrySize = 20
    static let frameEntrySize = 24

    static func fileName(_ segment: UInt64) -> String {
        String(Format.segmentFileName(segment).dropLast(4)) + ".sgi"
    }

    /// Encodes the index of a sealed segment.
    static func encode(_ index: MemoryIndex, segmentEnd: Int) -> [UInt8] {
        var sections: [[UInt8]] = Array(repeating: [], count: sectionCount)

        // ids, sorted by (hash, offset), with a radix directory over the top bits of the hash.
        var ids: [(UInt64, UInt32)] = []
        ids.reserveCapacity(index.conceptCount)
        for (h, o) in index.ids { ids.append((h, o)) }
        for (h, more) in index.collisions { for o in more { ids.append((h, o)) } }
        ids.sort { $0.0 != $1.0 ? $0.0 < $1.0 : $0.1 < $1.1 }
        var w = ByteWriter(capacity: ids.count * idEntrySize)
        for (h, o) in ids {
            w.u64(h)
            w.u32(o)
        }
        sections[Section.ids.rawValue] = w.bytes
        let bits = directoryBits(ids.count)
        w = ByteWriter(capacity: 4 * ((1 << bits) + 2))
        w.u32(UInt32(bits))
        var at = 0
        for bucket in 0...(1 << bits) {
            while at < ids.count, bucketOf(ids[at].0, bits: bits) < bucket { at += 1 }
            w.u32(UInt32(at))
        }
        sections[Section.idDirectory.rawValue] = w.bytes

        // positions: every event, then each type's run, then each stem's run.
        var positions = ByteWriter(capacity: index.conceptCount * positionSize * 3)
        var count = 0
        func appendRun(_ list: TimedList) -> (UInt32, UInt32) {
            let start = count
            list.forEachAscending(from: 0) { p in
                positions.i64(p.timestamp)
                positions.u32(UInt32(Location(raw: p.location).offset))
                count += 1
                return true
            }
            return (UInt32(start), UInt32(count - start))
        }
        _ = appendRun(index.all)
        w = ByteWriter()
        for type in index.byType.keys.sorted() {
            let (start, n) = appendRun(index.byType[type]!)
            w.u16(type)
            w.u16(0)
            w.u32(start)
            w.u32(n)
        }
        sections[Section.types.rawValue] = w.bytes
        w = ByteWriter()
        w.u32(UInt32(index.byStem.count))
        w.u32(0)
        var names = ByteWriter()
        for stem in index.byStem.values.sorted(by: { $0.stem < $1.stem }) {
            let (start, n) = appendRun(stem.list)
            w.u32(UInt32(names.bytes.count))
            w.u32(UInt32(stem.stem.utf8.count))
            w.u32(start)
            w.u32(n)
            names.string(stem.stem)
        }
        sections[Section.stems.rawValue] = w.bytes + names.bytes
        sections[Section.positions.rawValue] = positions.bytes

        // nodes sorted by hash; each node's edges in time order.
        w = ByteWriter()
        var edges = ByteWriter()
        var edgeCount = 0
        for node in index.edges.keys.sorted() {
            let list = index.edges[node]!
            let start = edgeCount
            list.forEachAscending(from: 0) { e in
                edges.i64(e.timestamp)
                edges.u64(e.other)
                edges.u16(e.edgeType)
                edges.u8(e.outgoing ? 1 : 0)
                edges.u8(0)
                edgeCount += 1
                return true
            }
            w.u64(node)
            w.u32(UInt32(start))
            w.u32(UInt32(edgeCount - start))
        }
        sections[Section.nodes.rawValue] = w.bytes
        sections[Section.edges.rawValue] = edges.bytes

        w = ByteWriter(capacity: index.frames.count * frameEntrySize)
        for f in index.frames {
            w.u32(f.offset)
            w.u32(f.payloadLength)
            w.i64(f.minTimestamp)
            w.i64(f.maxTimestamp)
        }
        sections[Section.frames.rawValue] = w.bytes

        var header = ByteWriter(capacity: headerSize)
        header.bytes.append(contentsOf: magic)
        header.u32(version)
        header.u32(UInt32(headerSize))
        header.u64(index.segment)
        header.u64(UInt64(index.conceptCount))
        header.u64(UInt64(index.adjacencyCount))
        header.u64(UInt64(index.duplicateCount))
        header.u64(UInt64(index.recordCount))
        header.i64(index.minTimestamp)
        header.i64(index.maxTimestamp)
        header.u64(UInt64(segmentEnd))
        var offset = headerSize
        for s in sections {
            header.u64(UInt64(offset))
            header.u64(UInt64(s.count))
            header.u64(Hash.bytes(s))
            offset += Format.aligned(s.count)
        }
        header.u64(header.bytes.withUnsafeBytes { Hash.bytes($0) })
        header.zeros(headerSize - header.bytes.count)
        var out = header.bytes
        out.reserveCapacity(offset)
        for s in sections {
            out.append(contentsOf: s)
            out.append(contentsOf: repeatElement(0, count: Format.aligned(s.count) - s.count))
        }
        return out
    }

    /// About 8 ids per directory bucket.
    static func directoryBits(_ n: Int) -> Int {
        var bits = 0
        while bits < 24, (n >> (bits + 3)) > 0 { bits += 1 }
        return bits
    }

    @inline(__always) static func bucketOf(_ hash: UInt64, bits: Int) -> Int {
        bits == 0 ? 0 : Int(hash >> UInt64(64 - bits))
    }

    struct Header {
        var segment: UInt64
        var conceptCount: Int
        var adjacencyCount: Int
        var duplicateCount: Int
        var recordCount: Int
        var minTimestamp: Int64
        var maxTimestamp: Int64
        var segmentEnd: Int
        var sections: [(offset: Int, length: Int, checksum: UInt64)]
    }

    /// Decodes and checks the header of an index file of `fileSize` bytes.
    static func parseHeader(_ buf: UnsafeRawBufferPointer) -> Result<Header, FormatProblem> {
        guard buf.count >= headerSize else { return .failure(FormatProblem("file shorter than the \(headerSize)-byte header")) }
        guard magic.elementsEqual(buf.slice(0, 8)) else { return .failure(FormatProblem("bad magic (not an index file)")) }
        guard Hash.bytes(buf.slice(0, headerChecksumOffset)) == buf.u64(headerChecksumOffset) else {
            return .failure(FormatProblem("header checksum mismatch"))
        }
        let v = buf.u32(8)
        guard v == version else { return .failure(FormatProblem("unsupported index version \(v) (this build reads 1)")) }
        var sections: [(Int, Int, UInt64)] = []
        for i in 0..<sectionCount {
            let at = sectionTableOffset + 24 * i
            let offset = buf.u64(at)
            let length = buf.u64(at + 8)
            guard offset >= UInt64(headerSize), offset <= UInt64(buf.count), length <= UInt64(buf.count) - offset else {
                return .failure(FormatProblem("section \(Section(rawValue: i)!.name) lies outside the file"))
            }
            sections.append((Int(offset), Int(length), buf.u64(at + 16)))
        }
        let h = Header(
            segment: buf.u64(16), conceptCount: Int(clamping: buf.u64(24)), adjacencyCount: Int(clamping: buf.u64(32)),
            duplicateCount: Int(clamping: buf.u64(40)), recordCount: Int(clamping: buf.u64(48)), minTimestamp: buf.i64(56),
            maxTimestamp: buf.i64(64), segmentEnd: Int(clamping: buf.u64(72)), sections: sections)
        // Counts a file of this size cannot hold are lies (and would overflow the size checks below).
        guard h.conceptCount <= buf.count, h.adjacencyCount <= buf.count, h.duplicateCount <= buf.count,
            h.recordCount <= Int(UInt32.max), h.segmentEnd <= StoreOptions.maxSegmentCapacity
        else { return .failure(FormatProblem("counts in the header do not fit the file")) }
        // Sizes the readers rely on.
        func size(_ s: Section) -> Int { sections[s.rawValue].1 }
        guard size(.ids) == h.conceptCount * idEntrySize,
            size(.positions) % positionSize == 0, size(.positions) >= h.conceptCount * positionSize,
            size(.types) % typeEntrySize == 0, size(.nodes) % nodeEntrySize == 0, size(.edges) % edgeEntrySize == 0,
            size(.frames) % frameEntrySize == 0, size(.idDirectory) >= 8
        else { return .failure(FormatProblem("section sizes do not match the counts in the header")) }
        return .success(h)
    }
}

/// A segment's index read from its mapped index file. Every accessor bounds-checks what it reads, so even
/// a file that passed its checksums but lies cannot make a read go outside the mapping.
final class MappedIndex: SegmentIndex {
    let segment: UInt64
    let path: String
    let header: IndexFile.Header
    private let fd: Int32
    private let base: UnsafeRawPointer
    private let length: Int
    private var verified = [Bool](repeating: false, count: IndexFile.sectionCount)
    /// Set when a section failed its checksum; the store stops using this index and rebuilds it.
    private(set) var damage: String?

    /// Opens and maps an index file and checks its header. Sections are checked on first use.
    init(path: String, segment: UInt64, sys: SystemCalls) throws(StoreError) {
        self.segment = segment
        self.path = path
        (fd, base, length, header) = try sys.mapSegmentFile(
            path, segment: segment, minimum: IndexFile.headerSize, what: "index file", parse: IndexFile.parseHeader,
            segmentOf: \.segment)
    }

    func close(_ sys: SystemCalls) {
        sys.unmap(base, length: length)
        sys.close(fd)
    }

    var fileBytes: Int { length }
    var conceptCount: Int { header.conceptCount }
    var adjacencyCount: Int { header.adjacencyCount }
    var duplicateCount: Int { header.duplicateCount }
    var recordCount: Int { header.recordCount }
    var minTimestamp: Int64 { header.minTimestamp }
    var maxTimestamp: Int64 { header.maxTimestamp }

    /// Checks the checksum of every section not checked yet; returns the first problem.
    func verifyAll() -> String? {
        for s in IndexFile.Section.allCases { _ = section(s) }
        return damage
    }

    /// Checks the id sections (what deduplication and id lookups need).
    func verifyIds() -> String? {
        _ = section(.ids)
        _ = section(.idDirectory)
        return damage
    }

    /// The bytes of a section, checked against its checksum the first time. Empty when damaged.
    private func section(_ s: IndexFile.Section) -> UnsafeRawBufferPointer {
        let (offset, count, sum) = header.sections[s.rawValue]
        let bytes = UnsafeRawBufferPointer(start: base + offset, count: count)
        if !verified[s.rawValue] {
            guard damage == nil, Hash.bytes(bytes) == sum else {
                if damage == nil { damage = "section \(s.name) (offset \(offset), \(count) bytes) fails its checksum" }
                return UnsafeRawBufferPointer(start: base, count: 0)
            }
            verified[s.rawValue] = true
            // Checking read every page of the section; let them go from this process's resident set (they stay
            // in the page cache), so memory follows what queries touch, not the size of the store.
            let page = 4096
            let first = (offset + page - 1) / page * page
            let last = (offset + count) / page * page
            if last > first { _ = madvise(UnsafeMutableRawPointer(mutating: base + first), last - first, MADV_DONTNEED) }
        }
        return bytes
    }

    var frameCount: Int { section(.frames).count / IndexFile.frameEntrySize }
    func frame(at i: Int) -> FrameEntry {
        let b = section(.frames)
        let at = i * IndexFile.frameEntrySize
        return FrameEntry(offset: b.u32(at), payloadLength: b.u32(at + 4), minTimestamp: b.i64(at + 8), maxTimestamp: b.i64(at + 16))
    }

    func forEachOffset(hash: UInt64, _ body: (Int) -> Bool) {
        let ids = section(.ids)
        let dir = section(.idDirectory)
        let n = ids.count / IndexFile.idEntrySize
        guard n > 0, dir.count >= 8 else { return }
        let bits = Int(dir.u32(0))
        guard bits <= 24 else { return }
        let bucket = IndexFile.bucketOf(hash, bits: bits)
        guard 4 * (bucket + 3) <= dir.count else { return }
        var lo = min(n, Int(dir.u32(4 + 4 * bucket)))
        var hi = min(n, Int(dir.u32(8 + 4 * bucket)))
        while lo < hi {
            let mid = (lo + hi) >> 1
            if ids.u64(mid * IndexFile.idEntrySize) < hash { lo = mid + 1 } else { hi = mid }
        }
        var i = lo
        while i < n, ids.u64(i * IndexFile.idEntrySize) == hash {
            if !body(Int(ids.u32(i * IndexFile.idEntrySize + 8))) { return }
            i += 1
        }
    }

    private func run(start: Int, count: Int) -> MappedPositions {
        let all = section(.positions)
        let total = all.count / IndexFile.positionSize
        let s = min(start, total)
        let c = min(count, total - s)
        return MappedPositions(bytes: all.slice(s * IndexFile.positionSize, c * IndexFile.positionSize), segment: segment)
    }

    func typeRun(_ type: UInt16) -> (any PositionRun)? {
        let t = section(.types)
        for i in 0..<(t.count / IndexFile.typeEntrySize) where t.u16(i * IndexFile.typeEntrySize) == type {
            let at = i * IndexFile.typeEntrySize
            return run(start: Int(t.u32(at + 4)), count: Int(t.u32(at + 8)))
        }
        return nil
    }

    var typeCodes: [UInt16] {
        let t = section(.types)
        return (0..<(t.count / IndexFile.typeEntrySize)).map { t.u16($0 * IndexFile.typeEntrySize) }
    }

    func forEachStem(_ body: (String, any PositionRun) -> Void) {
        // A count, then 16-byte entries (name offset, name length, run start, run count), then the names.
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
            body(s.string(namesStart + nameOffset, nameLength), run(start: Int(s.u32(at + 8)), count: Int(s.u32(at + 12))))
        }
    }

    var allRun: any PositionRun { run(start: 0, count: header.conceptCount) }

    func edgeRun(_ node: UInt64) -> (any EdgeRun)? {
        let nodes = section(.nodes)
        var lo = 0
        var hi = nodes.count / IndexFile.nodeEntrySize
        while lo < hi {
            let mid = (lo + hi) >> 1
            if nodes.u64(mid * IndexFile.nodeEntrySize) < node { lo = mid + 1 } else { hi = mid }
        }
        guard lo < nodes.count / IndexFile.nodeEntrySize, nodes.u64(lo * IndexFile.nodeEntrySize) == node else { return nil }
        let at = lo * IndexFile.nodeEntrySize
        let edges = section(.edges)
        let total = edges.count / IndexFile.edgeEntrySize
        let start = min(Int(nodes.u32(at + 8)), total)
        let count = min(Int(nodes.u32(at + 12)), total - start)
        return MappedEdges(bytes: edges.slice(start * IndexFile.edgeEntrySize, count * IndexFile.edgeEntrySize))
    }
}

/// A run of 12-byte positions (timestamp, offset) in a mapped index file.
struct MappedPositions: PositionRun {
    let bytes: UnsafeRawBufferPointer
    let segment: UInt64

    var count: Int { bytes.count / IndexFile.positionSize }

    subscript(i: Int) -> EventPosition {
        let at = i * IndexFile.positionSize
        return EventPosition(timestamp: bytes.i64(at), location: Location(segment: segment, offset: Int(bytes.u32(at + 8))).raw)
    }

    func lowerBound(_ p: EventPosition) -> Int {
        var lo = 0
        var hi = count
        while lo < hi {
            let mid = (lo + hi) >> 1
            if self[mid] < p { lo = mid + 1 } else { hi = mid }
        }
        return lo
    }

    func forEachDescending(before end: Int, _ body: (EventPosition) -> Bool) {
        var i = min(end, count) - 1
        while i >= 0 {
            if !body(self[i]) { return }
            i -= 1
        }
    }

    func forEachAscending(from start: Int, _ body: (EventPosition) -> Bool) {
        var i = max(0, start)
        while i < count {
            if !body(self[i]) { return }
            i += 1
        }
    }
}

/// A node's edges (20 bytes each) in a mapped index file, in time order.
struct MappedEdges: EdgeRun {
    let bytes: UnsafeRawBufferPointer
    var count: Int { bytes.count / IndexFile.edgeEntrySize }

    subscript(i: Int) -> EdgeItem {
        let at = i * IndexFile.edgeEntrySize
        return EdgeItem(timestamp: bytes.i64(at), other: bytes.u64(at + 8), edgeType: bytes.u16(at + 16), outgoing: bytes.u8(at + 18) != 0)
    }

    func forEachDescending(before end: Int, _ body: (EdgeItem) -> Bool) {
        var i = min(end, count) - 1
        while i >= 0 {
            let at = i * IndexFile.edgeEntrySize
            let e = EdgeItem(timestamp: bytes.i64(at), other: bytes.u64(at + 8), edgeType: bytes.u16(at + 16), outgoing: bytes.u8(at + 18) != 0)
            if !body(e) { return }
            i -= 1
        }
    }
}
