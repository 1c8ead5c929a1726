#if canImport(Glibc)
import Glibc
#endif
internal import CLZ4

/// How sealed segments are compacted.
public enum Compression: String, Sendable, CaseIterable {
    /// LZ4's fast compressor: about 3x the throughput of `high`, files about 25% larger.
    case fast
    /// LZ4 HC at level 9: slower to compact, smaller files, the same read speed.
    case high
    /// No compaction: sealed segments stay as they were written.
    case none
}

/// The compacted form of a sealed segment (`seg-NNNNNNNNNN.sgc`): the segment's bytes `[0, end)` cut into
/// blocks of about 64 KiB at record boundaries, each compressed with LZ4 and checksummed, followed by a block
/// index. A record never spans two blocks, so reading one event decompresses one block. Byte offsets of
/// records are those of the original segment, so locations, cursors and index files stay valid.
/// Layout in docs/FORMAT.md ("Compacted segments").
enum CompactedFormat {
    static let magic: [UInt8] = Array("SGEVCMP1".utf8)
    static let version: UInt32 = 1
    static let headerSize = 64
    static let blockEntrySize = 40
    /// The largest target uncompressed block size (and the default). Smaller blocks compress worse; larger ones
    /// cost more per random read (a cold read decompresses one whole block).
    static let targetBlockSize = 64 << 10

    static func fileName(_ segment: UInt64) -> String {
        String(Format.segmentFileName(segment).dropLast(4)) + ".sgc"
    }

    struct Block: Equatable {
        var rawOffset: Int
        var rawLength: Int
        var fileOffset: Int
        var compressedLength: Int
        /// Length of the packed form (what LZ4 decompresses to; see `BlockPacking`).
        var packedLength: Int
        /// XXH3-64 of the compressed bytes, and of the block as rebuilt.
        var checksum: UInt64
        var rawChecksum: UInt64
    }

    /// Block boundaries for a segment whose valid frames are `frames`: cuts only between records, so that
    /// no record is split. Returns each block's raw range and the records inside it (offsets from the block's
    /// start), covering `[0, end)`.
    static func cuts(_ buf: UnsafeRawBufferPointer, frames: [FrameInfo], end: Int, blockSize: Int = targetBlockSize)
        -> [(start: Int, end: Int, records: [BlockPacking.RecordSpan])]
    {
        var blocks: [(start: Int, end: Int, records: [BlockPacking.RecordSpan])] = []
        var start = 0
        var records: [BlockPacking.RecordSpan] = []
        for f in frames where f.kind == .batch {
            let payload = Int(f.offset) + Format.frameHeaderSize
            var it = RecordIterator(buf.slice(payload, f.payloadLength))
            while let r = it.next() {
                let recordStart = payload + r.offset
                let recordEnd = recordStart + r.length
                if recordEnd - start > blockSize, recordStart > start {
                    blocks.append((start, recordStart, records))
                    start = recordStart
                    records.removeAll(keepingCapacity: true)
                }
                records.append(BlockPacking.RecordSpan(offset: recordStart - start, length: r.length))
            }
        }
        if end > start || blocks.isEmpty { blocks.append((start, max(end, start), records)) }
        return blocks
    }

    /// Compresses `buf[0..<end]` (a whole sealed segment) into the bytes of a compacted file. `blockSize` is
    /// `StoreOptions.compactionBlockBytes`, which `EventStore.open` has checked.
    static func encode(
        _ buf: UnsafeRawBufferPointer, segment: UInt64, end: Int, frames: [FrameInfo], compression: Compression,
        blockSize: Int = targetBlockSize
    ) -> [UInt8] {
        precondition(blockSize >= StoreOptions.minCompactionBlockBytes && blockSize <= StoreOptions.maxCompactionBlockBytes,
                     "compaction block size \(blockSize) outside the range EventStore.open accepts")
        let ranges = cuts(buf, frames: frames, end: end, blockSize: blockSize)
        var out = [UInt8](repeating: 0, count: headerSize)
        var entries = BinaryWriter(capacity: ranges.count * blockEntrySize)
        var scratch = [UInt8](repeating: 0, count: Int(LZ4_compressBound(Int32(targetBlockSize))))
        for (s, e, records) in ranges {
            let raw = buf.slice(s, e - s)
            let packed = BlockPacking.pack(raw, records: records)
            let n = packed.count
            let bound = Int(LZ4_compressBound(Int32(n)))
            if scratch.count < bound { scratch = [UInt8](repeating: 0, count: bound) }
            let written = scratch.withUnsafeMutableBytes { dst -> Int in
                packed.withUnsafeBytes { src -> Int in
                    let sp = src.baseAddress!.assumingMemoryBound(to: CChar.self)
                    let d = dst.baseAddress!.assumingMemoryBound(to: CChar.self)
                    switch compression {
                    case .high: return Int(LZ4_compress_HC(sp, d, Int32(n), Int32(bound), 9))
                    case .fast, .none: return Int(LZ4_compress_default(sp, d, Int32(n), Int32(bound)))
                    }
                }
            }
            precondition(written > 0 || n == 0, "LZ4 failed on a block that fits its bound")
            let fileOffset = out.count
            out.append(contentsOf: scratch[0..<written])
            entries.u32(UInt32(s))
            entries.u32(UInt32(e - s))
            entries.u64(UInt64(fileOffset))
            entries.u32(UInt32(written))
            entries.u32(UInt32(n))
            entries.u64(scratch.withUnsafeBytes { Hash.bytes(UnsafeRawBufferPointer(rebasing: $0[0..<written])) })
            entries.u64(Hash.bytes(raw))
        }
        let indexOffset = out.count
        out.append(contentsOf: entries.bytes)
        var h = BinaryWriter(capacity: headerSize)
        h.bytes.append(contentsOf: magic)
        h.u32(version)
        h.u32(UInt32(headerSize))
        h.u64(segment)
        h.u64(UInt64(end))
        h.u32(UInt32(ranges.count))
        h.u32(compression == .high ? 9 : 1)
        h.u64(UInt64(indexOffset))
        h.u64(Hash.bytes(entries.bytes))
        h.u64(h.bytes.withUnsafeBytes { Hash.bytes($0) })
        out.replaceSubrange(0..<headerSize, with: h.bytes)
        return out
    }

    struct Header {
        var segment: UInt64
        var rawLength: Int
        var level: Int
        var blocks: [Block]
    }

    /// Checks the header and the block index of a compacted file (not the blocks themselves).
    static func parse(_ buf: UnsafeRawBufferPointer) -> Result<Header, FormatProblem> {
        guard buf.count >= headerSize else { return .failure(FormatProblem("file shorter than the 64-byte header")) }
        guard magic.elementsEqual(buf.slice(0, 8)) else { return .failure(FormatProblem("bad magic (not a compacted segment)")) }
        guard Hash.bytes(buf.slice(0, 56)) == buf.u64(56) else { return .failure(FormatProblem("header checksum mismatch")) }
        let v = buf.u32(8)
        guard v == version else { return .failure(FormatProblem("unsupported compacted-segment version \(v)")) }
        let count = Int(buf.u32(32))
        let indexOffset = Int(clamping: buf.u64(40))
        guard indexOffset >= headerSize, count <= (buf.count - min(indexOffset, buf.count)) / blockEntrySize,
            indexOffset + count * blockEntrySize == buf.count
        else { return .failure(FormatProblem("block index lies outside the file")) }
        let index = buf.slice(indexOffset, count * blockEntrySize)
        guard Hash.bytes(index) == buf.u64(48) else { return .failure(FormatProblem("block index checksum mismatch")) }
        let rawLength = Int(clamping: buf.u64(24))
        guard rawLength <= StoreOptions.maxSegmentCapacity else {
            return .failure(FormatProblem("uncompressed length \(rawLength) exceeds the largest segment"))
        }
        var blocks: [Block] = []
        blocks.reserveCapacity(count)
        var expected = 0
        for i in 0..<count {
            let at = i * blockEntrySize
            let b = Block(
                rawOffset: Int(index.u32(at)), rawLength: Int(index.u32(at + 4)), fileOffset: Int(clamping: index.u64(at + 8)),
                compressedLength: Int(index.u32(at + 16)), packedLength: Int(index.u32(at + 20)),
                checksum: index.u64(at + 24), rawChecksum: index.u64(at + 32))
            guard b.rawOffset == expected, b.fileOffset >= headerSize, b.fileOffset <= indexOffset,
                b.compressedLength <= indexOffset - b.fileOffset, b.rawLength <= StoreOptions.maxSegmentCapacity,
                b.packedLength <= Int(LZ4_compressBound(Int32(StoreOptions.maxSegmentCapacity))),
                b.compressedLength <= Int(LZ4_compressBound(Int32(b.packedLength)))
            else { return .failure(FormatProblem("block \(i) entry is inconsistent")) }
            expected += b.rawLength
            blocks.append(b)
        }
        guard expected == rawLength else { return .failure(FormatProblem("blocks cover \(expected) bytes, header says \(rawLength)")) }
        return .success(Header(segment: buf.u64(16), rawLength: rawLength, level: Int(buf.u32(36)), blocks: blocks))
    }

    /// Decompresses one block after checking its checksum; nil when either fails.
    static func decompress(_ b: Block, from buf: UnsafeRawBufferPointer) -> [UInt8]? {
        guard let d = decode(b, from: buf) else { return nil }
        return Array(d.bytes)
    }

    /// Decompresses and unpacks one block into memory of its own; nil when a checksum or the data is bad.
    static func decode(_ b: Block, from buf: UnsafeRawBufferPointer) -> DecodedBlock? {
        guard b.fileOffset + b.compressedLength <= buf.count, b.packedLength <= 2 * targetBlockSize + b.rawLength + 1024
        else { return nil }
        let src = buf.slice(b.fileOffset, b.compressedLength)
        guard Hash.bytes(src) == b.checksum else { return nil }
        let out = DecodedBlock(capacity: b.rawLength)
        let packed = UnsafeMutableRawBufferPointer.allocate(byteCount: max(1, b.packedLength), alignment: 8)
        defer { packed.deallocate() }
        if b.packedLength > 0 {
            let n = LZ4_decompress_safe(
                src.baseAddress!.assumingMemoryBound(to: CChar.self), packed.baseAddress!.assumingMemoryBound(to: CChar.self),
                Int32(b.compressedLength), Int32(b.packedLength))
            guard Int(n) == b.packedLength else { return nil }
        }
        guard BlockPacking.unpack(UnsafeRawBufferPointer(rebasing: packed[0..<b.packedLength]), into: out.storage, rawLength: b.rawLength)
        else { return nil }
        out.count = b.rawLength
        guard Hash.bytes(out.bytes) == b.rawChecksum else { return nil }
        return out
    }
}

/// A decompressed block, shared between the cache and the views that read it:
/// its memory stays put until the last reference goes.
final class DecodedBlock {
    let storage: UnsafeMutableRawBufferPointer
    var count = 0
    /// The cache's recency list (guarded by the cache's lock; the cache's dictionary keeps listed blocks alive).
    fileprivate var key: UInt64 = 0
    fileprivate unowned(unsafe) var older: DecodedBlock?
    fileprivate unowned(unsafe) var newer: DecodedBlock?

    init(capacity: Int) {
        storage = .allocate(byteCount: max(1, capacity), alignment: 8)
    }

    deinit { storage.deallocate() }

    var bytes: UnsafeRawBufferPointer { UnsafeRawBufferPointer(rebasing: storage[0..<count]) }
}

/// A mapped compacted segment file.
final class CompactedFile: @unchecked Sendable {
    let path: String
    let header: CompactedFormat.Header
    let fd: Int32
    let base: UnsafeRawPointer
    let length: Int
    private let sys: SystemCalls

    init(path: String, segment: UInt64, sys: SystemCalls) throws(StoreError) {
        self.path = path
        self.sys = sys
        (fd, base, length, header) = try sys.mapSegmentFile(
            path, segment: segment, minimum: CompactedFormat.headerSize, what: "compacted segment",
            parse: CompactedFormat.parse, segmentOf: \.segment)
    }

    var bytes: UnsafeRawBufferPointer { UnsafeRawBufferPointer(start: base, count: length) }

    /// The block holding raw byte `offset`.
    func block(containing offset: Int) -> Int? {
        let blocks = header.blocks
        var lo = 0
        var hi = blocks.count
        while lo < hi {
            let mid = (lo + hi) >> 1
            if blocks[mid].rawOffset <= offset { lo = mid + 1 } else { hi = mid }
        }
        guard lo > 0, offset < blocks[lo - 1].rawOffset + blocks[lo - 1].rawLength else { return nil }
        return lo - 1
    }

    /// Decompresses every block into one buffer of the segment's raw length; the blocks that fail their
    /// checksum are left zero and listed.
    func decompressAll() -> (bytes: [UInt8], bad: [CompactedFormat.Block]) {
        var out = [UInt8]()
        out.reserveCapacity(header.rawLength)
        var bad: [CompactedFormat.Block] = []
        for b in header.blocks {
            if let d = CompactedFormat.decompress(b, from: bytes) {
                out.append(contentsOf: d)
            } else {
                bad.append(b)
                out.append(contentsOf: repeatElement(0, count: b.rawLength))
            }
        }
        return (out, bad)
    }

    /// The mapping is released with the last reference: a read may still hold the file after the store
    /// deleted it (retention) or stopped using it.
    deinit {
        sys.unmap(base, length: length)
        sys.close(fd)
    }
}

/// Recently used decompressed blocks, bounded in bytes; the least recently used go first. A hit, an insert and
/// an eviction are O(1): the blocks form a list from the least to the most recently used.
final class BlockCache: @unchecked Sendable {
    let capacity: Int
    private let lock = ConditionLock()
    private var blocks: [UInt64: DecodedBlock] = [:]
    private var bytes = 0
    private var oldest: DecodedBlock?
    private var newest: DecodedBlock?

    init(capacity: Int) { self.capacity = capacity }

    static func key(segment: UInt64, block: Int) -> UInt64 { (segment << 32) | UInt64(UInt32(block)) }

    /// The cached block `key`, else decodes it with `load` (outside the cache's lock: readers on other threads
    /// are not held up by a decompression) and keeps the result. Thread-safe.
    func get(_ key: UInt64, load: () -> DecodedBlock?) -> DecodedBlock? {
        let cached = lock.withLock { () -> DecodedBlock? in
            guard let b = blocks[key] else { return nil }
            unlink(b)
            append(b)
            return b
        }
        if let cached { return cached }
        guard let b = load() else { return nil }
        return lock.withLock {
            if let raced = blocks[key] { return raced }  // another reader decoded it meanwhile
            while bytes + b.storage.count > capacity, let victim = oldest {
                drop(victim)
            }
            b.key = key
            blocks[key] = b
            append(b)
            bytes += b.storage.count
            return b
        }
    }

    func remove(segment: UInt64) {
        lock.withLock {
            for k in blocks.keys where k >> 32 == segment {
                drop(blocks[k]!)
            }
        }
    }

    var residentBytes: Int { lock.withLock { bytes } }

    /// Number of blocks held (tests).
    var count: Int { lock.withLock { blocks.count } }

    private func drop(_ b: DecodedBlock) {
        unlink(b)
        bytes -= b.storage.count
        blocks[b.key] = nil
    }

    private func unlink(_ b: DecodedBlock) {
        if let o = b.older { o.newer = b.newer } else { oldest = b.newer }
        if let n = b.newer { n.older = b.older } else { newest = b.older }
        b.older = nil
        b.newer = nil
    }

    private func append(_ b: DecodedBlock) {
        b.older = newest
        if let n = newest { n.newer = b } else { oldest = b }
        newest = b
    }
}
