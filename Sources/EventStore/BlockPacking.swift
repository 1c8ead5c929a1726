/// The packed form of a compacted block, before LZ4: the block's records with what can be derived left out.
///
/// A concept record's id hash is XXH3 of its id, so it is dropped and computed again. An adjacency entry that
/// follows its event's concept record in the same block and is one of the store's standard edges (an entity
/// of the event -> the event, typed by the event's type; or the event -> its time bucket, edge type 999) is
/// replaced by a one- or two-byte reference. Everything else (segment and frame headers, other adjacency
/// entries, padding, regions of damage) is kept verbatim. Unpacking rebuilds the block byte for byte; a
/// checksum of the unpacked bytes is kept per block and checked on every read. Layout in docs/FORMAT.md.
enum BlockPacking {
    static let tagVerbatim: UInt8 = 0
    static let tagConcept: UInt8 = 1
    static let tagEntityEdge: UInt8 = 2
    static let tagBucketEdge: UInt8 = 3
    static let tagAdjacency: UInt8 = 4

    /// A record's place in the raw block: offset from the block's start and length.
    struct RecordSpan {
        var offset: Int
        var length: Int
    }

    /// The concept record most recently packed or unpacked, for references from the entries after it.
    private struct LastConcept {
        var hash: UInt64
        var typeCode: UInt16
        var timestamp: Int64
        var entityHashes: [UInt64]
        var bucketHash: UInt64
    }

    /// The hash of the last time bucket named (consecutive events mostly share their minute).
    private struct BucketCache {
        var minute = Int64.min
        var hash: UInt64 = 0
        mutating func hash(_ timestamp: Int64) -> UInt64 {
            let m = TimeBucket.minute(timestamp)
            if m != minute {
                minute = m
                hash = Hash.id(TimeBucket.id(timestamp))
            }
            return hash
        }
    }

    private static func concept(_ r: UnsafeRawBufferPointer, _ buckets: inout BucketCache) -> LastConcept? {
        let view = ConceptView(bytes: r)
        var hashes: [UInt64] = []
        guard view.forEachEntity({ hashes.append(Hash.bytes($0)) }), hashes.count < 256 else { return nil }
        return LastConcept(
            hash: view.idHash, typeCode: view.typeCode, timestamp: view.timestamp, entityHashes: hashes,
            bucketHash: buckets.hash(view.timestamp))
    }

    /// Packs `raw` (one block) whose records are `records` (sorted, inside the block, not overlapping).
    static func pack(_ raw: UnsafeRawBufferPointer, records: [RecordSpan]) -> [UInt8] {
        var out = [UInt8]()
        out.reserveCapacity(raw.count)
        var w = BinaryWriter()
        var last: LastConcept?
        var buckets = BucketCache()
        var at = 0
        func verbatim(_ from: Int, _ to: Int) {
            guard to > from else { return }
            out.append(tagVerbatim)
            w.bytes.removeAll(keepingCapacity: true)
            w.u32(UInt32(to - from))
            out.append(contentsOf: w.bytes)
            out.append(contentsOf: raw.slice(from, to - from))
        }
        for span in records {
            verbatim(at, span.offset)
            let r = raw.slice(span.offset, span.length)
            at = span.offset + span.length
            if r.u8(0) == Format.recordKindConcept, span.length >= Format.recordHeaderSize,
                Hash.bytes(ConceptView(bytes: r).idBytes) == r.u64(16), let c = concept(r, &buckets)
            {
                out.append(tagConcept)
                out.append(contentsOf: r.slice(0, 16))
                out.append(contentsOf: r.slice(24, span.length - 24))
                last = c
                continue
            }
            if r.u8(0) == Format.recordKindAdjacency, span.length == Format.adjacencySize, r.u8(1) == 0, r.u32(4) == 32,
                let c = last, r.i64(24) == c.timestamp
            {
                let (type, source, target) = (r.u16(2), r.u64(8), r.u64(16))
                if target == c.hash, type == c.typeCode, let i = c.entityHashes.firstIndex(of: source) {
                    out.append(tagEntityEdge)
                    out.append(UInt8(i))
                    continue
                }
                if source == c.hash, type == TimeBucket.edgeType, target == c.bucketHash {
                    out.append(tagBucketEdge)
                    continue
                }
            }
            if span.length == Format.adjacencySize, r.u8(0) == Format.recordKindAdjacency {
                out.append(tagAdjacency)
                out.append(contentsOf: r)
            } else {
                verbatim(span.offset, at)
            }
        }
        verbatim(at, raw.count)
        return out
    }

    /// Rebuilds a block of `rawLength` bytes into `out` from its packed form; false when the packed bytes are
    /// inconsistent (they passed a checksum, so only a bug or a crafted file gets here).
    static func unpack(_ packed: UnsafeRawBufferPointer, into out: UnsafeMutableRawBufferPointer, rawLength: Int) -> Bool {
        var p = 0
        var o = 0
        var last: LastConcept?
        var buckets = BucketCache()
        func put(_ bytes: UnsafeRawBufferPointer) -> Bool {
            guard o + bytes.count <= rawLength else { return false }
            out.baseAddress!.advanced(by: o).copyMemory(from: bytes.baseAddress!, byteCount: bytes.count)
            o += bytes.count
            return true
        }
        func putEntry(_ type: UInt16, _ source: UInt64, _ target: UInt64, _ ts: Int64) -> Bool {
            guard o + Format.adjacencySize <= rawLength else { return false }
            let b = out.baseAddress!.advanced(by: o)
            b.storeBytes(of: Format.recordKindAdjacency, toByteOffset: 0, as: UInt8.self)
            b.storeBytes(of: 0, toByteOffset: 1, as: UInt8.self)
            b.storeBytes(of: type.littleEndian, toByteOffset: 2, as: UInt16.self)
            b.storeBytes(of: UInt32(Format.adjacencySize).littleEndian, toByteOffset: 4, as: UInt32.self)
            b.storeBytes(of: source.littleEndian, toByteOffset: 8, as: UInt64.self)
            b.storeBytes(of: target.littleEndian, toByteOffset: 16, as: UInt64.self)
            b.storeBytes(of: UInt64(bitPattern: ts).littleEndian, toByteOffset: 24, as: UInt64.self)
            o += Format.adjacencySize
            return true
        }
        while p < packed.count {
            let tag = packed.u8(p)
            p += 1
            switch tag {
            case tagVerbatim:
                guard p + 4 <= packed.count else { return false }
                let n = Int(packed.u32(p))
                p += 4
                guard n <= packed.count - p, put(packed.slice(p, n)) else { return false }
                p += n
            case tagConcept:
                guard p + 24 <= packed.count else { return false }
                let length = Int(packed.u32(p + 4))
                guard length >= Format.recordHeaderSize, length - 8 <= packed.count - p, o + length <= rawLength else {
                    return false
                }
                let start = o
                _ = put(packed.slice(p, 16))
                o += 8  // the id hash, filled in below
                _ = put(packed.slice(p + 16, length - 24))
                p += length - 8
                let record = UnsafeMutableRawBufferPointer(rebasing: out[start..<(start + length)])
                let idLength = Int(UnsafeRawBufferPointer(record).u16(8))
                guard Format.recordHeaderSize + idLength <= length else { return false }
                let hash = Hash.bytes(UnsafeRawBufferPointer(record).slice(Format.recordHeaderSize, idLength))
                record.storeBytes(of: hash.littleEndian, toByteOffset: 16, as: UInt64.self)
                guard let c = concept(UnsafeRawBufferPointer(record), &buckets) else { return false }
                last = c
            case tagEntityEdge:
                guard p < packed.count, let c = last else { return false }
                let i = Int(packed.u8(p))
                p += 1
                guard i < c.entityHashes.count, putEntry(c.typeCode, c.entityHashes[i], c.hash, c.timestamp) else {
                    return false
                }
            case tagBucketEdge:
                guard let c = last, putEntry(TimeBucket.edgeType, c.hash, c.bucketHash, c.timestamp) else { return false }
            case tagAdjacency:
                guard Format.adjacencySize <= packed.count - p, put(packed.slice(p, Format.adjacencySize)) else {
                    return false
                }
                p += Format.adjacencySize
            default:
                return false
            }
        }
        return o == rawLength
    }
}
