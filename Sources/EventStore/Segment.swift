#if canImport(Glibc)
import Glibc
#endif

/// Bytes of one record read from a segment, with whatever keeps them alive (a decompressed block).
struct RecordBytes {
    let bytes: UnsafeRawBufferPointer
    let owner: AnyObject?
}

/// One segment: its data (the mapped segment file, or its compacted form) and its index (in memory while it
/// is active or being rebuilt, else the mapped index file). Owned by `EventStore`; every access happens
/// under the store's lock.
final class Segment {
    let id: UInt64
    let created: Int64
    let capacity: UInt64
    /// Path of the segment file (`.sgs`), or of its compacted form (`.sgc`) once compacted.
    private(set) var path: String
    /// End of valid data: the next frame goes here.
    var end: Int
    var sealed: Bool
    var index: any SegmentIndex

    // Raw form: the segment file and its read-only mapping.
    private(set) var fd: Int32 = -1
    private(set) var base: UnsafeRawPointer?
    private(set) var mappedLength = 0
    /// Raw sealed segments whose frames were not scanned on open are checked frame by frame on first read.
    private var checkedFrames: [Bool] = []
    var needsFrameChecks = false
    // Compacted form.
    private(set) var compacted: CompactedFile?

    /// Damage found when the segment was scanned on open: it is not given an index file, so the next open scans
    /// it again and reports the damage again.
    var damaged = false
    /// Damage found while reading (bad frames or blocks), reported once each.
    var readDamage: [Damage] = []
    private var reportedBlocks = Set<Int>()

    init(
        id: UInt64, path: String, fd: Int32, base: UnsafeRawPointer, mappedLength: Int, created: Int64,
        capacity: UInt64, end: Int, sealed: Bool
    ) {
        self.id = id
        self.path = path
        self.fd = fd
        self.base = base
        self.mappedLength = mappedLength
        self.created = created
        self.capacity = capacity
        self.end = end
        self.sealed = sealed
        index = MemoryIndex(segment: id)
    }

    init(id: UInt64, compacted file: CompactedFile, created: Int64, capacity: UInt64) {
        self.id = id
        path = file.path
        compacted = file
        self.created = created
        self.capacity = capacity
        end = file.header.rawLength
        sealed = true
        index = MemoryIndex(segment: id)
    }

    var isCompacted: Bool { compacted != nil }
    var memoryIndex: MemoryIndex? { index as? MemoryIndex }
    var mappedIndex: MappedIndex? { index as? MappedIndex }

    /// The mapped bytes `[0, mappedLength)` of a raw segment (empty when compacted).
    var bytes: UnsafeRawBufferPointer { UnsafeRawBufferPointer(start: base, count: base == nil ? 0 : mappedLength) }

    /// Bytes the segment's data takes on disk.
    var diskBytes: Int { compacted?.length ?? mappedLength }

    /// The record at `offset` (its header gives its length), bounds-checked; nil when unreadable.
    func record(at offset: Int, cache: BlockCache) -> RecordBytes? {
        if let compacted {
            guard let b = compacted.block(containing: offset) else { return nil }
            let block = compacted.header.blocks[b]
            let local = offset - block.rawOffset
            let decoded = cache.get(BlockCache.key(segment: id, block: b)) {
                CompactedFormat.decode(block, from: compacted.bytes)
            }
            guard let decoded else {
                if reportedBlocks.insert(b).inserted {
                    readDamage.append(
                        Damage(segment: id, offset: UInt64(block.rawOffset), length: UInt64(block.rawLength),
                               reason: "compressed block \(b) fails its checksum or does not decompress"))
                }
                return nil
            }
            guard let r = Self.recordSlice(decoded.bytes, at: local) else { return nil }
            return RecordBytes(bytes: r, owner: decoded)
        }
        guard offset < end else { return nil }
        if needsFrameChecks, !frameIsValid(containing: offset) { return nil }
        return Self.recordSlice(UnsafeRawBufferPointer(rebasing: bytes[0..<end]), at: offset).map { RecordBytes(bytes: $0, owner: nil) }
    }

    /// The record starting at `at` in `buf`, when its header and length fit.
    private static func recordSlice(_ buf: UnsafeRawBufferPointer, at: Int) -> UnsafeRawBufferPointer? {
        guard at >= 0, at + 8 <= buf.count else { return nil }
        let length = Int(buf.u32(at + 4))
        guard length >= Format.recordHeaderSize, length <= buf.count - at else { return nil }
        return buf.slice(at, length)
    }

    /// For a raw sealed segment opened from its index file: checks the checksum of the frame holding `offset`
    /// the first time it is read. A frame that fails is reported and never served.
    private func frameIsValid(containing offset: Int) -> Bool {
        guard let i = index.frameIndex(containing: offset) else { return false }
        if checkedFrames.count != index.frameCount { checkedFrames = [Bool](repeating: false, count: index.frameCount) }
        if checkedFrames[i] { return true }
        let f = index.frame(at: i)
        if case .success = SegmentScanner.frame(at: Int(f.offset), in: UnsafeRawBufferPointer(rebasing: bytes[0..<end]), segment: id) {
            checkedFrames[i] = true
            return true
        }
        if reportedBlocks.insert(-1 - i).inserted {
            readDamage.append(
                Damage(segment: id, offset: UInt64(f.offset), length: UInt64(Format.frameHeaderSize) + UInt64(f.payloadLength),
                       reason: "frame fails its checksum"))
        }
        return false
    }

    /// Calls `body` with the offset and bytes of each record of `frame`, in order, until it returns false.
    func forEachRecord(in frame: FrameEntry, cache: BlockCache, _ body: (Int, RecordBytes) -> Bool) {
        var offset = Int(frame.offset) + Format.frameHeaderSize
        let end = offset + Int(frame.payloadLength)
        while offset < end {
            guard let r = record(at: offset, cache: cache), offset + r.bytes.count <= end else {
                // In a compacted segment a damaged block costs only its own records: blocks start at records, so
                // the frame's records go on at the next block.
                guard let compacted, let b = compacted.block(containing: offset), b + 1 < compacted.header.blocks.count
                else { return }
                let next = compacted.header.blocks[b + 1].rawOffset
                guard next > offset, next < end else { return }
                offset = next
                continue
            }
            if !body(offset, r) { return }
            offset += r.bytes.count
        }
    }

    /// Swaps the raw data for its compacted form (the caller deletes the old file afterwards).
    func adoptCompacted(_ file: CompactedFile, _ sys: SystemCalls) {
        closeRaw(sys)
        compacted = file
        path = file.path
        needsFrameChecks = false
    }

    private func closeRaw(_ sys: SystemCalls) {
        if let base { sys.unmap(base, length: mappedLength) }
        if fd >= 0 { sys.close(fd) }
        base = nil
        fd = -1
        mappedLength = 0
    }

    /// Drops the pages of the raw mapping from this process's resident set (they stay in the page cache).
    func releaseResidentPages() {
        guard let base, mappedLength > 0 else { return }
        _ = madvise(UnsafeMutableRawPointer(mutating: base), mappedLength, MADV_DONTNEED)
    }

    func close(_ sys: SystemCalls) {
        closeRaw(sys)
        compacted?.close(sys)
        compacted = nil
        (index as? MappedIndex)?.close(sys)
    }
}
