#if canImport(Glibc)
import Glibc
#endif

/// The index file of a sealed segment (`seg-NNNNNNNNNN.sgi`, version 3): the segment's index written once at
/// seal, then memory-mapped on open so opening a store does not scan sealed data and resident memory does not
/// grow with the number of events. Layout in docs/FORMAT.md ("Index files").
///
/// Every event of the segment has an *ordinal*: its rank in time order (timestamp, then location). The time
/// column gives each ordinal its timestamp and byte offset; every other list (types, entities, id stems) is a
/// posting list of ordinals, bit-packed in blocks of 128 with a directory, so a list entry costs one to two
/// bytes and any entry is read in O(1). The entity -> event and event -> time-bucket adjacency entries are not
/// stored as edges: an entity's posting list and the time column answer them.
///
/// The header carries its own checksum and one checksum per section. The header is checked when the file is
/// opened; a section is checked the first time it is used. A file whose header or a section fails its checksum,
/// or of another version, is never used: the store rebuilds the index from the segment. Version 3 added the words
/// section (the word index: a posting list per word hash) and the text scheme in the header.
enum IndexFile {
    static let magic: [UInt8] = Array("SGEVIDX3".utf8)
    static let version: UInt32 = 3
    static let sectionCount = 10
    static let textSchemeOffset = 80
    static let sectionTableOffset = 88
    static let headerChecksumOffset = sectionTableOffset + 24 * sectionCount
    static let headerSize = headerChecksumOffset + 8
    /// Elements per block of the time column and of posting lists.
    static let blockSize = 128

    enum Section: Int, CaseIterable {
        case time = 0, types, postings, entities, ids, stems, buckets, edges, frames, words
        var name: String {
            switch self {
            case .time: "time"
            case .types: "types"
            case .postings: "postings"
            case .entities: "entities"
            case .ids: "ids"
            case .stems: "stems"
            case .buckets: "buckets"
            case .edges: "edges"
            case .frames: "frames"
            case .words: "words"
            }
        }
    }

    static let timeBlockEntrySize = 24
    static let postingBlockEntrySize = 12
    static let typeEntrySize = 16
    static let entityEntrySize = 16
    static let idEntrySize = 8
    static let stemEntrySize = 16
    static let bucketEntrySize = 16
    static let edgeNodeEntrySize = 16
    static let edgeEntrySize = 24
    static let frameEntrySize = 8
    static let wordEntrySize = 16

    static func fileName(_ segment: UInt64) -> String {
        String(Format.segmentFileName(segment).dropLast(4)) + ".sgi"
    }

    // MARK: Encoding

    /// Encodes the index of a sealed segment.
    static func encode(_ index: MemoryIndex, segmentEnd: Int) -> [UInt8] {
        var sections: [[UInt8]] = Array(repeating: [], count: sectionCount)
        // Ordinals: every event in time order.
        var stamps: [Int64] = []
        var offsets: [UInt32] = []
        stamps.reserveCapacity(index.conceptCount)
        offsets.reserveCapacity(index.conceptCount)
        index.all.forEachAscending(from: 0) { p in
            stamps.append(p.timestamp)
            offsets.append(UInt32(Location(raw: p.location).offset))
            return true
        }
        var ordinalOf: [UInt32: UInt32] = [:]
        ordinalOf.reserveCapacity(offsets.count)
        for (i, o) in offsets.enumerated() { ordinalOf[o] = UInt32(i) }
        func ordinals(_ run: some PositionRun) -> [UInt32] {
            var out: [UInt32] = []
            out.reserveCapacity(run.count)
            for i in 0..<run.count {
                if let o = ordinalOf[UInt32(Location(raw: run[i].location).offset)] { out.append(o) }
            }
            return out
        }

        // time: per block of 128, the smallest timestamp and offset, then both columns packed as differences.
        var w = BinaryWriter()
        let blocks = (stamps.count + blockSize - 1) / blockSize
        w.u32(UInt32(stamps.count))
        w.u32(UInt32(blocks))
        var data = BinaryWriter()
        for b in 0..<blocks {
            let range = (b * blockSize)..<min(stamps.count, (b + 1) * blockSize)
            let baseTs = stamps[range.lowerBound]  // ascending: the first is the smallest
            let baseOffset = offsets[range].min()!
            let tsBits = BitPack.width(UInt64(bitPattern: stamps[range.upperBound - 1] &- baseTs))
            let offsetBits = BitPack.width(UInt64(offsets[range].max()! - baseOffset))
            w.i64(baseTs)
            w.u32(baseOffset)
            w.u8(UInt8(tsBits))
            w.u8(UInt8(offsetBits))
            w.u16(0)
            w.u64(UInt64(data.bytes.count))
            BitPack.pack(stamps[range].lazy.map { UInt64(bitPattern: $0 &- baseTs) }, bits: tsBits, into: &data)
            BitPack.pack(offsets[range].lazy.map { UInt64($0 - baseOffset) }, bits: offsetBits, into: &data)
        }
        sections[Section.time.rawValue] = w.bytes + data.bytes

        var postings = BinaryWriter()
        /// Appends a posting list; returns its offset in the postings section.
        func posting(_ list: [UInt32]) -> UInt32 { appendPosting(list, into: &postings) }

        // types: the codes with their posting lists, then a column giving each ordinal's type (by code index).
        let codes = index.byType.keys.sorted()
        let width = codes.count <= 256 ? 1 : 2
        var typeLists: [UInt16: [UInt32]] = [:]
        var column = [UInt16](repeating: 0, count: stamps.count)
        w = BinaryWriter()
        w.u16(UInt16(codes.count))
        w.u8(UInt8(width))
        w.u8(0)
        w.u32(0)
        for (k, code) in codes.enumerated() {
            let list = ordinals(index.byType[code]!)
            typeLists[code] = list
            for o in list { column[Int(o)] = UInt16(k) }
            w.u16(code)
            w.u16(0)
            w.u32(UInt32(list.count))
            w.u64(UInt64(posting(list)))
        }
        for k in column {
            if width == 1 { w.u8(UInt8(truncatingIfNeeded: k)) } else { w.u16(k) }
        }
        sections[Section.types.rawValue] = w.bytes

        // entities, sorted by hash: an entity with one event in the segment holds its ordinal inline.
        w = BinaryWriter()
        for node in index.byEntity.keys.sorted() {
            let list = ordinals(TypedRun(list: index.byEntity[node]!))
            w.u64(node)
            w.u32(UInt32(list.count))
            w.u32(list.count == 1 ? list[0] : posting(list))
        }
        sections[Section.entities.rawValue] = w.bytes

        // ids: a radix directory over the top bits of the hash, then (the 32 bits after them, ordinal) sorted by
        // hash. A match is a candidate; the store compares the whole id.
        var ids: [(UInt64, UInt32)] = []
        ids.reserveCapacity(index.conceptCount)
        func add(_ h: UInt64, _ offset: UInt32) {
            if let o = ordinalOf[offset] { ids.append((h, o)) }
        }
        for (h, o) in index.ids { add(h, o) }
        for (h, more) in index.collisions { for o in more { add(h, o) } }
        ids.sort { $0.0 != $1.0 ? $0.0 < $1.0 : $0.1 < $1.1 }
        let bits = directoryBits(ids.count)
        w = BinaryWriter(capacity: 8 + 4 * ((1 << bits) + 1) + ids.count * idEntrySize)
        w.u32(UInt32(bits))
        w.u32(UInt32(ids.count))
        var at = 0
        for bucket in 0...(1 << bits) {
            while at < ids.count, bucketOf(ids[at].0, bits: bits) < bucket { at += 1 }
            w.u32(UInt32(at))
        }
        for (h, o) in ids {
            w.u32(fragment(h, bits: bits))
            w.u32(o)
        }
        sections[Section.ids.rawValue] = w.bytes

        // stems: an id stem whose events are exactly one type's (the rule for catalogue ids) shares that list.
        w = BinaryWriter()
        let stems = index.byStem.values.sorted { $0.stem < $1.stem }
        w.u32(UInt32(stems.count))
        w.u32(0)
        var names = BinaryWriter()
        for stem in stems {
            let list = ordinals(stem.list)
            w.u32(UInt32(names.bytes.count))
            w.u32(UInt32(stem.stem.utf8.count))
            if let code = codes.first(where: { typeLists[$0] == list }) {
                w.u32(0)
                w.u32(UInt32(code))
            } else {
                w.u32(1)
                w.u32(posting(list))
            }
            names.utf8(stem.stem)
        }
        sections[Section.stems.rawValue] = w.bytes + names.bytes

        // buckets: the time buckets (minutes) that events of the segment link to.
        w = BinaryWriter()
        for (hash, minute) in index.buckets.sorted(by: { $0.key < $1.key }) {
            w.u64(hash)
            w.i64(minute)
        }
        sections[Section.buckets.rawValue] = w.bytes

        // edges: adjacency entries other than the standard two kinds, per node in time order.
        w = BinaryWriter()
        var edges = BinaryWriter()
        var edgeCount = 0
        let nodes = index.extra.keys.sorted()
        w.u32(UInt32(nodes.count))
        w.u32(0)
        for node in nodes {
            let list = index.extra[node]!
            let start = edgeCount
            list.forEachAscending(from: 0) { e in
                edges.i64(e.timestamp)
                edges.u64(e.other)
                edges.u16(e.edgeType)
                edges.u8(e.outgoing ? 1 : 0)
                edges.u8(0)
                edges.u32(0)
                edgeCount += 1
                return true
            }
            w.u64(node)
            w.u32(UInt32(start))
            w.u32(UInt32(edgeCount - start))
        }
        sections[Section.edges.rawValue] = w.bytes + edges.bytes

        w = BinaryWriter(capacity: index.frames.count * frameEntrySize)
        for f in index.frames {
            w.u32(f.offset)
            w.u32(f.payloadLength)
        }
        sections[Section.frames.rawValue] = w.bytes
        sections[Section.postings.rawValue] = postings.bytes
        sections[Section.words.rawValue] = encodeWords(index, ordinalOf: ordinalOf)

        var header = BinaryWriter(capacity: headerSize)
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
        header.u32(index.textScheme)
        header.u32(0)
        var offset = headerSize
        for s in sections {
            header.u64(UInt64(offset))
            header.u64(UInt64(s.count))
            header.u64(Hash.bytes(s))
            offset += Format.aligned(s.count)
        }
        header.u64(header.bytes.withUnsafeBytes { Hash.bytes($0) })
        var out = header.bytes
        out.reserveCapacity(offset)
        for s in sections {
            out.append(contentsOf: s)
            out.append(contentsOf: repeatElement(0, count: Format.aligned(s.count) - s.count))
        }
        return out
    }

    /// Appends a posting list (u32 count, u32 blocks, a 12-byte directory entry per block of 128, then each block's
    /// ordinals minus its first, bit-packed) to `w`; returns where it starts.
    static func appendPosting(_ list: [UInt32], into w: inout BinaryWriter) -> UInt32 {
        let at = w.bytes.count
        let blocks = (list.count + blockSize - 1) / blockSize
        w.u32(UInt32(list.count))
        w.u32(UInt32(blocks))
        var body = BinaryWriter()
        for b in 0..<blocks {
            let range = (b * blockSize)..<min(list.count, (b + 1) * blockSize)
            let first = list[range.lowerBound]
            let bits = BitPack.width(UInt64(list[range.upperBound - 1] - first))
            w.u32(first)
            w.u8(UInt8(bits))
            w.u8(0)
            w.u16(0)
            w.u32(UInt32(8 + blocks * postingBlockEntrySize + body.bytes.count))
            BitPack.pack(list[range].lazy.map { UInt64($0 - first) }, bits: bits, into: &body)
        }
        w.bytes += body.bytes
        return UInt32(at)
    }

    /// The words section: u32 word count, u32 0; per word, sorted by hash, 16 bytes: hash (8), event count (4),
    /// posting list offset from the section's start (4) or, when the count is 1, the one ordinal; then the lists.
    static func encodeWords(_ index: MemoryIndex, ordinalOf: [UInt32: UInt32]) -> [UInt8] {
        guard index.text != nil else { return [0, 0, 0, 0, 0, 0, 0, 0] }
        let hashes = index.words.keys.sorted()
        let listsStart = 8 + hashes.count * wordEntrySize
        var w = BinaryWriter(capacity: listsStart)
        var lists = BinaryWriter()
        w.u32(UInt32(hashes.count))
        w.u32(0)
        var ordinals: [UInt32] = []
        for h in hashes {
            ordinals.removeAll(keepingCapacity: true)
            for rank in index.words[h]!.ranks {
                let p = index.arrivals[Int(rank)]
                if let o = ordinalOf[UInt32(Location(raw: p.location).offset)] { ordinals.append(o) }
            }
            // Ranks follow arrival; ordinals follow time.
            ordinals.sort()
            w.u64(h)
            w.u32(UInt32(ordinals.count))
            if ordinals.count == 1 {
                w.u32(ordinals[0])
            } else {
                w.u32(UInt32(listsStart) + appendPosting(ordinals, into: &lists))
            }
        }
        return w.bytes + lists.bytes
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

    /// The 32 bits of a hash after the directory's `bits`.
    @inline(__always) static func fragment(_ hash: UInt64, bits: Int) -> UInt32 {
        UInt32(truncatingIfNeeded: (hash << UInt64(bits)) >> 32)
    }

    // MARK: Header

    struct Header {
        var segment: UInt64
        var conceptCount: Int
        var adjacencyCount: Int
        var duplicateCount: Int
        var recordCount: Int
        var minTimestamp: Int64
        var maxTimestamp: Int64
        var segmentEnd: Int
        /// `TextIndexing.scheme` of the words section (0: no words).
        var textScheme: UInt32
        var sections: [(offset: Int, length: Int, checksum: UInt64)]
    }

    /// Decodes and checks the header of an index file.
    static func parseHeader(_ buf: UnsafeRawBufferPointer) -> Result<Header, FormatProblem> {
        guard buf.count >= 12 else { return .failure(FormatProblem("file shorter than an index header")) }
        guard magic.prefix(7).elementsEqual(buf.slice(0, 7)) else { return .failure(FormatProblem("bad magic (not an index file)")) }
        let v = buf.u32(8)
        guard v == version, magic.elementsEqual(buf.slice(0, 8)) else {
            return .failure(FormatProblem("index format version \(v) (this build reads \(version)): an older layout"))
        }
        guard buf.count >= headerSize else { return .failure(FormatProblem("file shorter than the \(headerSize)-byte header")) }
        guard Hash.bytes(buf.slice(0, headerChecksumOffset)) == buf.u64(headerChecksumOffset) else {
            return .failure(FormatProblem("header checksum mismatch"))
        }
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
            maxTimestamp: buf.i64(64), segmentEnd: Int(clamping: buf.u64(72)), textScheme: buf.u32(textSchemeOffset),
            sections: sections)
        // Counts a file of this size cannot hold are lies (and would overflow the size checks below).
        guard h.conceptCount <= buf.count, h.adjacencyCount <= buf.count, h.duplicateCount <= buf.count,
            h.recordCount <= Int(UInt32.max), h.segmentEnd <= StoreOptions.maxSegmentCapacity
        else { return .failure(FormatProblem("counts in the header do not fit the file")) }
        func size(_ s: Section) -> Int { sections[s.rawValue].1 }
        let blocks = (h.conceptCount + blockSize - 1) / blockSize
        guard size(.time) >= 8 + blocks * timeBlockEntrySize, size(.types) >= 8, size(.ids) >= 12,
            size(.entities) % entityEntrySize == 0, size(.stems) >= 8, size(.buckets) % bucketEntrySize == 0,
            size(.edges) >= 8, size(.frames) % frameEntrySize == 0, size(.words) >= 8
        else { return .failure(FormatProblem("section sizes do not match the counts in the header")) }
        return .success(h)
    }
}
