#if canImport(Glibc)
import Glibc
#endif

/// Bytes of one record read from a segment, with whatever keeps them alive (a mapping, a decompressed block).
struct RecordBytes {
    let bytes: UnsafeRawBufferPointer
    let owner: AnyObject?
}

/// A segment file's descriptor and read-only mapping. Shared by the store and by every snapshot that holds the
/// segment: the mapping is released when the last of them lets go, so a reader never sees it vanish under it
/// (after compaction replaced the file, or retention deleted it).
final class RawMapping: @unchecked Sendable {
    let fd: Int32
    let base: UnsafeRawPointer
    let length: Int
    private let sys: SystemCalls

    init(fd: Int32, base: UnsafeRawPointer, length: Int, sys: SystemCalls) {
        self.fd = fd
        self.base = base
        self.length = length
        self.sys = sys
    }

    deinit {
        sys.unmap(base, length: length)
        sys.close(fd)
    }

    var bytes: UnsafeRawBufferPointer { UnsafeRawBufferPointer(start: base, count: length) }

    /// Drops the pages of the mapping from this process's resident set (they stay in the page cache).
    func releaseResidentPages() {
        _ = madvise(UnsafeMutableRawPointer(mutating: base), length, MADV_DONTNEED)
    }
}

/// What reads learn about a segment's health, shared by every view of it: damage found while reading (each
/// reported once), which frames of a raw segment opened from its index file have passed their check, and
/// whether its index file was found damaged (maintenance rebuilds it). Thread-safe.
final class SegmentHealth: @unchecked Sendable {
    private let lock = ConditionLock()
    private var damage: [Damage] = []
    private var reported = Set<Int>()
    private var checkedFrames: [Bool] = []
    private var indexProblem: String?

    var readDamage: [Damage] { lock.withLock { damage } }

    func report(_ key: Int, _ d: @autoclosure () -> Damage) {
        lock.withLock {
            if reported.insert(key).inserted { damage.append(d()) }
        }
    }

    func frameChecked(_ i: Int, of count: Int) -> Bool {
        lock.withLock { checkedFrames.count == count && checkedFrames[i] }
    }

    func markFrameChecked(_ i: Int, of count: Int) {
        lock.withLock {
            if checkedFrames.count != count { checkedFrames = [Bool](repeating: false, count: count) }
            checkedFrames[i] = true
        }
    }

    /// The first problem found in the segment's index file since it was opened (nil: none).
    var damagedIndex: String? { lock.withLock { indexProblem } }

    /// Records that the index file failed a check; true the first time.
    func flagIndex(_ problem: String) -> Bool {
        lock.withLock {
            guard indexProblem == nil else { return false }
            indexProblem = problem
            return true
        }
    }

    func clearIndexFlag() {
        lock.withLock {
            indexProblem = nil
            fallback = nil
        }
    }

    private var fallback: MemoryIndex?

    /// The index reads use while the index file is damaged: made once by `make` (outside the lock; two readers
    /// may both make one, the first kept), then shared.
    func fallbackIndex(_ make: () -> MemoryIndex) -> MemoryIndex {
        if let f = lock.withLock({ fallback }) { return f }
        let made = make()
        return lock.withLock {
            if let f = fallback { return f }
            fallback = made
            return made
        }
    }
}

/// One segment as the store keeps it: its data (the mapped segment file, or its compacted form) and its index
/// (in memory while it is active or until its index file is written, else the mapped index file). Mutated only
/// under the store's lock; reads take a `SegmentView` of it and work on that without the lock.
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
    private(set) var raw: RawMapping?
    private(set) var compacted: CompactedFile?
    /// Raw sealed segments whose frames were not scanned on open are checked frame by frame on first read.
    var needsFrameChecks = false
    /// Damage found when the segment was scanned on open: it is not given an index file, so the next open scans
    /// it again and reports the damage again.
    var damaged = false
    let health = SegmentHealth()

    init(id: UInt64, path: String, raw: RawMapping, created: Int64, capacity: UInt64, end: Int, sealed: Bool, text: TextIndexing? = nil) {
        self.id = id
        self.path = path
        self.raw = raw
        self.created = created
        self.capacity = capacity
        self.end = end
        self.sealed = sealed
        index = MemoryIndex(segment: id, text: text)
    }

    init(id: UInt64, compacted file: CompactedFile, created: Int64, capacity: UInt64, text: TextIndexing? = nil) {
        self.id = id
        path = file.path
        compacted = file
        self.created = created
        self.capacity = capacity
        end = file.header.rawLength
        sealed = true
        index = MemoryIndex(segment: id, text: text)
    }

    var isCompacted: Bool { compacted != nil }
    var memoryIndex: MemoryIndex? { index as? MemoryIndex }
    var mappedIndex: MappedIndex? { index as? MappedIndex }
    /// The descriptor of the segment file (raw form only; the writer appends through it).
    var fd: Int32 { raw?.fd ?? -1 }

    /// The mapped bytes of a raw segment (empty when compacted).
    var bytes: UnsafeRawBufferPointer { raw?.bytes ?? UnsafeRawBufferPointer(start: nil, count: 0) }

    /// Bytes the segment's data takes on disk.
    var diskBytes: Int { compacted?.length ?? raw?.length ?? 0 }

    /// What a read needs of this segment now. Call under the store's lock.
    func view(active: Bool) -> SegmentView {
        SegmentView(
            id: id, end: end, index: index, raw: raw, compacted: compacted, health: health,
            needsFrameChecks: needsFrameChecks, isActive: active)
    }

    /// Swaps the raw data for its compacted form (the caller deletes the old file afterwards; views that still
    /// hold the raw mapping keep it until they let go).
    func adoptCompacted(_ file: CompactedFile) {
        raw = nil
        compacted = file
        path = file.path
        needsFrameChecks = false
    }

    /// Drops the pages of the raw mapping from this process's resident set (they stay in the page cache).
    func releaseResidentPages() { raw?.releaseResidentPages() }
}

/// A segment as one read sees it: immutable, and holding its mapping, compacted file and index alive, so the
/// read needs no lock (the active segment's in-memory index is the exception: it is read under the store's
/// active-index lock, see `EventStore.activeCursor`).
struct SegmentView {
    let id: UInt64
    /// End of the data written when the view was taken.
    let end: Int
    let index: any SegmentIndex
    let raw: RawMapping?
    let compacted: CompactedFile?
    let health: SegmentHealth
    let needsFrameChecks: Bool
    let isActive: Bool

    var isCompacted: Bool { compacted != nil }

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
                health.report(b, Damage(
                    segment: id, offset: UInt64(block.rawOffset), length: UInt64(block.rawLength),
                    reason: "compressed block \(b) fails its checksum or does not decompress"))
                return nil
            }
            guard let r = Self.recordSlice(decoded.bytes, at: local) else { return nil }
            return RecordBytes(bytes: r, owner: decoded)
        }
        guard let raw, offset < end, end <= raw.length else { return nil }
        if needsFrameChecks, !frameIsValid(containing: offset, raw.bytes) { return nil }
        return Self.recordSlice(UnsafeRawBufferPointer(rebasing: raw.bytes[0..<end]), at: offset).map { RecordBytes(bytes: $0, owner: raw) }
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
    private func frameIsValid(containing offset: Int, _ bytes: UnsafeRawBufferPointer) -> Bool {
        guard let i = index.frameIndex(containing: offset) else { return false }
        let count = index.frameCount
        if health.frameChecked(i, of: count) { return true }
        let f = index.frame(at: i)
        if case .success = SegmentScanner.frame(at: Int(f.offset), in: UnsafeRawBufferPointer(rebasing: bytes[0..<end]), segment: id) {
            health.markFrameChecked(i, of: count)
            return true
        }
        health.report(-1 - i, Damage(
            segment: id, offset: UInt64(f.offset), length: UInt64(Format.frameHeaderSize) + UInt64(f.payloadLength),
            reason: "frame fails its checksum"))
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
}
