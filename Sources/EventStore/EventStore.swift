#if canImport(Glibc)
import Glibc
#endif

/// The storage engine: an append-only, log-structured store of memory-mapped segment files in one data
/// directory, with in-memory indexes rebuilt on open.
///
/// Thread-safe: appends and reads may come from any thread. Appends are serialized for writing; under
/// `Durability.batch` their fdatasyncs are shared (group commit).
public final class EventStore: @unchecked Sendable {
    /// The data directory.
    public let directory: String
    public let options: StoreOptions
    /// What opening the store found.
    public private(set) var recovery = RecoveryReport()

    let sys: SystemCalls
    let lock = ConditionLock()
    let commit = GroupCommit()
    var segments: [Segment] = [] {
        didSet { segmentsGeneration &+= 1 }
    }
    private var segmentsGeneration = 0
    /// Time spans of the segments, as plain values (the duplicate check looks at every segment per event).
    private var spans: [(min: Int64, max: Int64, position: Int)] = []
    private var spansGeneration = -1
    var segmentById: [UInt64: Segment] = [:]
    var nextSequence: UInt64 = 1
    var lastWritten: UInt64 = 0
    var failure: StoreError?
    var isClosed = false
    private var lockFd: Int32 = -1
    var manifest = Manifest()
    let cache: BlockCache
    var maintenanceThread: MaintenanceThread?
    /// One maintenance pass at a time (the background thread or an explicit `runMaintenance()`).
    let maintenanceLock = ConditionLock()

    private init(directory: String, options: StoreOptions, sys: SystemCalls) {
        self.directory = directory
        self.options = options
        self.sys = sys
        cache = BlockCache(capacity: max(1 << 20, options.blockCacheBytes))
    }

    deinit { close() }

    // MARK: Opening

    /// Opens (creating if missing) the data directory at `directory`: takes its lock, recovers every segment
    /// (truncating a torn tail, skipping and reporting damaged frames), rebuilds the indexes and prepares an
    /// active segment.
    ///
    /// - Throws: `StoreError` `.locked` when another process holds the directory (the message names its pid),
    ///   `.invalidArgument` for bad options, `.io`/`.noSpace` when the file system refuses.
    /// - Complexity: reads every segment once.
    public static func open(at directory: String, options: StoreOptions = StoreOptions()) throws(StoreError)
        -> EventStore
    {
        guard options.segmentCapacity >= StoreOptions.minSegmentCapacity,
            options.segmentCapacity <= StoreOptions.maxSegmentCapacity,
            options.segmentCapacity % Format.frameAlignment == 0
        else {
            throw StoreError.invalid(
                "segment capacity \(options.segmentCapacity) is outside \(StoreOptions.minSegmentCapacity)...\(StoreOptions.maxSegmentCapacity) bytes or not a multiple of \(Format.frameAlignment)"
            )
        }
        let sys = SystemCalls(faults: options.faults)
        let started = StoreOptions.nowMicros()
        if options.readOnly {
            guard sys.isDirectory(directory) == true else {
                throw StoreError(.io, "data directory does not exist", path: directory, errno: ENOENT)
            }
        } else {
            try makeDirectories(directory, sys)
        }
        var lockFd: Int32 = -1
        if !options.readOnly {
            lockFd = try acquireLock(directory, sys)
        }
        let store = EventStore(directory: directory, options: options, sys: sys)
        store.lockFd = lockFd
        var report = RecoveryReport()
        do throws(StoreError) {
            try store.recover(into: &report)
        } catch {
            store.close()
            throw error
        }
        report.elapsedSeconds = Double(StoreOptions.nowMicros() - started) / 1e6
        store.recovery = report
        store.commit.markDurable(store.lastWritten)
        options.onNotice?(report.summary)
        if !options.readOnly, options.backgroundMaintenance {
            store.maintenanceThread = MaintenanceThread(store: store, interval: options.maintenanceInterval)
        }
        return store
    }

    private static func makeDirectories(_ path: String, _ sys: SystemCalls) throws(StoreError) {
        if sys.isDirectory(path) == true { return }
        var prefix = path.hasPrefix("/") ? "/" : ""
        for part in path.split(separator: "/") {
            prefix += part
            if sys.isDirectory(prefix) != true { try sys.makeDirectory(prefix) }
            prefix += "/"
        }
        guard sys.isDirectory(path) == true else {
            throw StoreError(.io, "data directory path exists and is not a directory", path: path)
        }
    }

    private static func acquireLock(_ directory: String, _ sys: SystemCalls) throws(StoreError) -> Int32 {
        let path = directory + "/LOCK"
        let fd = try sys.open(path, flags: O_RDWR | O_CREAT, mode: 0o644)
        guard try sys.tryLockExclusive(fd, path: path) else {
            let buffer = (try? sys.pread(fd, count: 32, at: 0, path: path)) ?? []
            sys.close(fd)
            let holder = String(decoding: buffer, as: UTF8.self).trimmingWhitespace
            let who = holder.isEmpty ? "another process" : "pid \(holder)"
            throw StoreError(
                .locked,
                "data directory \(directory) is locked by \(who); stop that process or use another data directory",
                path: path)
        }
        let pid = Array("\(getpid())\n".utf8)
        try sys.truncate(fd, length: 0, path: path)
        try sys.pwriteAll(fd, pid, at: 0, path: path)
        return fd
    }

    private func recover(into report: inout RecoveryReport) throws(StoreError) {
        let writable = !options.readOnly
        if writable {
            // A writer killed before its directory fsync leaves a rename (a new segment, a manifest) only in
            // memory: make the directory durable before anything is built on the names listed below.
            try sys.syncDirectory(directory)
        }
        switch try Manifest.read(directory, sys) {
        case .success(let m)?: manifest = m
        case .failure(let problem)?:
            report.notices.append("manifest is damaged (\(problem.reason)); rebuilt from the segment files")
        case nil: break
        }
        var raw = Set<UInt64>()
        var compactedIds = Set<UInt64>()
        var indexFiles = Set<UInt64>()
        for name in try sys.listDirectory(directory) {
            if name.hasSuffix(".tmp") {
                if writable { try sys.unlink(directory + "/" + name) }  // an unfinished create, compaction or write
            } else if let id = Format.segmentId(name, suffix: ".sgs") {
                raw.insert(id)
            } else if let id = Format.segmentId(name, suffix: ".sgc") {
                compactedIds.insert(id)
            } else if let id = Format.segmentId(name, suffix: ".sgi") {
                indexFiles.insert(id)
            }
        }
        // Finish a retention pass that a crash interrupted: the manifest already says these are gone.
        for id in raw.union(compactedIds).union(indexFiles) where id < manifest.firstSegment {
            if writable { try removeFiles(of: id) }
            raw.remove(id)
            compactedIds.remove(id)
            indexFiles.remove(id)
        }
        let ids = raw.union(compactedIds).sorted()
        var maxSequence: UInt64 = 0
        var newestFromIndex: Segment?
        var lastUsable = true
        for (i, id) in ids.enumerated() {
            let isLast = i == ids.count - 1
            // Which form is live: the manifest decides; a form it does not name is left over from a compaction
            // that did not finish (or one whose old file was not deleted yet) and is removed.
            let useCompacted = compactedIds.contains(id) && (manifest.compacted.contains(id) || !raw.contains(id))
            if useCompacted, raw.contains(id), writable { try sys.unlink(directory + "/" + Format.segmentFileName(id)) }
            if !useCompacted, compactedIds.contains(id), writable {
                try sys.unlink(directory + "/" + CompactedFormat.fileName(id))
            }
            let segment: Segment
            var scanned = false
            if useCompacted {
                do throws(StoreError) {
                    let file = try CompactedFile(path: directory + "/" + CompactedFormat.fileName(id), segment: id, sys: sys)
                    segment = Segment(id: id, compacted: file, created: 0, capacity: 0)
                } catch {
                    guard error.code == .corrupt else { throw error }
                    report.unreadableSegments.append(Damage(segment: id, offset: 0, length: 0, reason: error.message))
                    continue
                }
                manifest.compacted.insert(id)
            } else {
                let path = directory + "/" + Format.segmentFileName(id)
                let canWrite = isLast && writable
                let fd = try sys.open(path, flags: canWrite ? O_RDWR : O_RDONLY)
                var size = Int(try sys.fileSize(fd, path: path))
                let headerBytes = try sys.pread(fd, count: Format.segmentHeaderSize, at: 0, path: path)
                let header = headerBytes.withUnsafeBytes { Format.parseSegmentHeader($0) }
                guard case .success(let h) = header, h.id == id else {
                    let reason: String
                    switch header {
                    case .failure(let r): reason = "unreadable header: \(r)"
                    case .success(let h): reason = "header names segment \(h.id), file name says \(id)"
                    }
                    report.unreadableSegments.append(Damage(segment: id, offset: 0, length: UInt64(size), reason: reason))
                    sys.close(fd)
                    if isLast { lastUsable = false }
                    continue
                }
                if canWrite, size < Int(h.capacity) {
                    try sys.preallocate(fd, length: h.capacity, path: path)
                    size = Int(h.capacity)
                }
                let base: UnsafeRawPointer
                do throws(StoreError) {
                    base = try sys.mapReadOnly(fd, length: size, path: path)
                } catch {
                    sys.close(fd)
                    throw error
                }
                segment = Segment(
                    id: id, path: path, fd: fd, base: base, mappedLength: size, created: h.created, capacity: h.capacity,
                    end: size, sealed: true)
                manifest.compacted.remove(id)
                if isLast {
                    // The last segment may be the active one: always scanned, never trusted to an index file.
                    segmentById[id] = segment
                    let scan = scanAndIndex(segment, into: &report)
                    scanned = true
                    if let torn = scan.tornTail {
                        if canWrite, !scan.sealed {
                            // Cut the torn tail: drop everything after the last good frame, then reserve the space
                            // again. The mapping stays valid: the file is back at full length before anything reads
                            // past `end`.
                            try sys.truncate(fd, length: UInt64(scan.end), path: path)
                            try sys.preallocate(fd, length: h.capacity, path: path)
                            try sys.fdatasync(fd, path: path)
                            report.truncated.append(torn)
                        } else {
                            report.skipped.append(torn)
                        }
                    }
                    if canWrite, scan.sealed {
                        // The seal frame may be only in the page cache (a writer killed in the seal's fdatasync):
                        // make it durable before a new segment is created after it.
                        try sys.fdatasync(fd, path: path)
                    }
                    segment.end = scan.end
                    segment.sealed = scan.sealed || options.readOnly
                    segment.damaged = !scan.damage.isEmpty
                    for f in scan.frames { maxSequence = max(maxSequence, f.sequence) }
                    lastUsable = !scan.sealed
                    // The scan touched every page; they stay in the page cache, not in this process.
                    segment.releaseResidentPages()
                }
            }
            segmentById[id] = segment
            if !scanned {
                if indexFiles.contains(id), let mapped = openIndexFile(id, into: &report),
                    indexMatches(mapped, segment, into: &report)
                {
                    segment.index = mapped
                    if !segment.isCompacted {
                        segment.end = mapped.header.segmentEnd
                        segment.needsFrameChecks = true
                    }
                    newestFromIndex = segment
                } else {
                    if indexFiles.contains(id) == false {
                        report.notices.append("segment \(id) has no index file; rebuilt it by scanning the segment")
                    }
                    let scan = rebuildIndex(segment, into: &report)
                    for f in scan.frames { maxSequence = max(maxSequence, f.sequence) }
                    if !segment.isCompacted {
                        segment.end = scan.end
                        if let torn = scan.tornTail { report.skipped.append(torn) }  // sealed: reported, not cut
                        // A damaged segment keeps no index file (nor is it compacted): it is scanned, and its damage
                        // reported, on every open.
                        segment.damaged = !scan.damage.isEmpty || scan.tornTail != nil || !scan.sealed
                        if !scan.sealed, scan.tornTail == nil {
                            // Only the last segment is ever unsealed: an earlier one without its seal frame was cut
                            // short.
                            report.skipped.append(Damage(
                                segment: id, offset: UInt64(scan.end), length: segment.capacity - UInt64(min(UInt64(scan.end), segment.capacity)),
                                reason: "no seal frame: the segment was cut short (\(segment.bytes.count) of \(segment.capacity) bytes)"))
                        }
                    }
                }
            }
            segments.append(segment)
        }
        // Sequences grow with segment ids: of the segments opened from index files only the newest is read.
        if let newestFromIndex { maxSequence = max(maxSequence, try lastSequence(of: newestFromIndex)) }
        report.segments = segments.count
        for s in segments {
            report.frames += s.index.frameCount
            report.concepts += s.index.conceptCount
            report.adjacency += s.index.adjacencyCount
            report.duplicates += s.index.duplicateCount
        }
        // A frame whose sequence number is this high passed its checksum but was never written by a store (that
        // takes 2^63 frames): refuse to write after it rather than trap when the numbers run out.
        if maxSequence >= UInt64.max / 2, !options.readOnly {
            throw StoreError(
                .corrupt, "a frame carries sequence number \(maxSequence); no more can be written after it", path: directory)
        }
        nextSequence = maxSequence &+ 1
        lastWritten = maxSequence
        if writable, segments.isEmpty || !lastUsable || segments.last!.sealed {
            let nextId = max(ids.last ?? 0, segments.last?.id ?? 0, manifest.firstSegment) + 1
            try createSegment(id: nextId)
        }
    }

    /// Removes every file of segment `id` (data, compacted data, index).
    func removeFiles(of id: UInt64) throws(StoreError) {
        try sys.unlink(directory + "/" + Format.segmentFileName(id))
        try sys.unlink(directory + "/" + CompactedFormat.fileName(id))
        try sys.unlink(directory + "/" + IndexFile.fileName(id))
    }

    /// Maps a segment's index file; nil (with a notice) when it is unusable.
    private func openIndexFile(_ id: UInt64, into report: inout RecoveryReport) -> MappedIndex? {
        do throws(StoreError) {
            return try MappedIndex(path: directory + "/" + IndexFile.fileName(id), segment: id, sys: sys)
        } catch {
            report.notices.append("index file of segment \(id) is unusable (\(error.message)); rebuilt it from the segment")
            return nil
        }
    }

    /// Whether an index file describes the data it sits beside: it must not cover more bytes than the segment
    /// holds (a segment file cut short, or a compacted file of another length). A mismatch is reported and the
    /// index rebuilt from the data.
    private func indexMatches(_ mapped: MappedIndex, _ segment: Segment, into report: inout RecoveryReport) -> Bool {
        let available = segment.compacted?.header.rawLength ?? segment.bytes.count
        let expected = mapped.header.segmentEnd
        let ok = segment.isCompacted ? expected == available : expected <= available
        if !ok {
            report.notices.append(
                "index file of segment \(segment.id) covers \(expected) bytes, the segment holds \(available); rebuilt it from the segment")
            mapped.close(sys)
        }
        return ok
    }

    /// The sequence of the last frame of a sealed segment (its seal frame when it has one), read from its data.
    private func lastSequence(of segment: Segment) throws(StoreError) -> UInt64 {
        var best: UInt64 = 0
        if segment.index.frameCount > 0 {
            let f = segment.index.frame(at: segment.index.frameCount - 1)
            // The frame header precedes the first record: read its sequence from the raw or decompressed bytes.
            if !segment.isCompacted, Int(f.offset) + Format.frameHeaderSize <= segment.bytes.count {
                best = segment.bytes.u64(Int(f.offset) + 8)
            } else if let file = segment.compacted, let b = file.block(containing: Int(f.offset)),
                let block = CompactedFormat.decode(file.header.blocks[b], from: file.bytes)
            {
                let local = Int(f.offset) - file.header.blocks[b].rawOffset
                if local + 16 <= block.count { best = block.bytes.u64(local + 8) }
            }
        }
        return best &+ 1  // the seal frame follows the last batch frame
    }

    /// Scans a raw segment and indexes it in memory.
    private func scanAndIndex(_ segment: Segment, into report: inout RecoveryReport) -> SegmentScanResult {
        let scan = index(segment, bytes: segment.bytes)
        report.skipped.append(contentsOf: scan.damage)
        return scan
    }

    /// Rebuilds the in-memory index of a sealed segment from its data (raw or compacted).
    func rebuildIndex(_ segment: Segment, into report: inout RecoveryReport) -> SegmentScanResult {
        if let file = segment.compacted {
            let (bytes, bad) = file.decompressAll()
            for b in bad {
                report.skipped.append(
                    Damage(segment: segment.id, offset: UInt64(b.rawOffset), length: UInt64(b.rawLength),
                           reason: "compressed block fails its checksum"))
            }
            return bytes.withUnsafeBytes { buf in
                let scan = index(segment, bytes: buf)
                report.skipped.append(contentsOf: scan.damage)
                return scan
            }
        }
        segment.needsFrameChecks = false
        let scan = scanAndIndex(segment, into: &report)
        segment.releaseResidentPages()
        return scan
    }

    /// Scans `bytes` (the segment's raw byte space) into a fresh in-memory index for `segment`.
    private func index(_ segment: Segment, bytes: UnsafeRawBufferPointer) -> SegmentScanResult {
        let memory = MemoryIndex(segment: segment.id)
        segment.index = memory
        return SegmentScanner.scan(bytes, segment: segment.id) { info, payload in
            memory.indexFrame(
                frameOffset: Int(info.offset), payload: payload, minTimestamp: info.minTimestamp,
                maxTimestamp: info.maxTimestamp, recordCount: info.recordCount,
                isKnown: { isKnown($0, indexing: segment) })
        }
    }

    /// Whether the id of `view` is already indexed: in `segment`'s own index, or in another loaded segment
    /// whose time range includes the record's timestamp (a resent event keeps its timestamp, so only those
    /// can hold it).
    func isKnown(_ view: ConceptView, indexing segment: Segment) -> Bool {
        let h = view.idHash
        if sameIdIndexed(view, hash: h, in: segment) { return true }
        for s in segments(spanning: view.timestamp) where s !== segment {
            if let mapped = s.mappedIndex, mapped.verifyIds() != nil { repairIndex(s) }
            if sameIdIndexed(view, hash: h, in: s) { return true }
        }
        return false
    }

    /// The sealed segments whose time span holds `timestamp`, newest first, found by comparing plain values (a
    /// store may have thousands of segments; this runs for every event appended). The active segment, whose
    /// span still grows, is not included.
    func segments(spanning timestamp: Int64) -> [Segment] {
        if spansGeneration != segmentsGeneration {
            spans = segments.enumerated().map { (i, s) in (s.index.minTimestamp, s.index.maxTimestamp, i) }
            spansGeneration = segmentsGeneration
        }
        var out: [Segment] = []
        for span in spans.reversed() where span.min <= timestamp && timestamp <= span.max {
            let s = segments[span.position]
            if s !== active { out.append(s) }
        }
        return out
    }

    private func sameIdIndexed(_ view: ConceptView, hash: UInt64, in segment: Segment) -> Bool {
        var found = false
        segment.index.forEachOffset(hash: hash) { offset in
            if let existing = conceptView(Location(segment: segment.id, offset: offset)),
                existing.idBytes.elementsEqual(view.idBytes)
            {
                found = true
            }
            return !found
        }
        return found
    }

    /// Replaces a mapped index whose sections failed their checksums by one rebuilt from the segment.
    func repairIndex(_ segment: Segment) {
        guard let mapped = segment.mappedIndex, let problem = mapped.damage else { return }
        var report = RecoveryReport()
        _ = rebuildIndex(segment, into: &report)
        mapped.close(sys)
        if !options.readOnly {
            // Replaced by maintenance (or by close) from the index just rebuilt.
            try? sys.unlink(directory + "/" + IndexFile.fileName(segment.id))
        }
        options.onNotice?(
            "index file of segment \(segment.id) failed its checksum (\(problem)); rebuilt from the segment"
                + (report.skipped.isEmpty ? "" : "; " + report.skipped.map(\.description).joined(separator: "; ")))
        maintenanceThread?.wake()
    }

    /// The index of `segment`, checked: a mapped index is verified in full on first use and rebuilt if damaged.
    func checkedIndex(_ segment: Segment) -> any SegmentIndex {
        if let mapped = segment.mappedIndex, mapped.verifyAll() != nil { repairIndex(segment) }
        return segment.index
    }

    // MARK: Segments

    var active: Segment? {
        guard let last = segments.last, !last.sealed else { return nil }
        return last
    }

    /// Creates a segment: preallocate a temporary file, write and sync its header, rename it into place,
    /// sync the directory. A crash at any point leaves either no segment or a complete empty one.
    private func createSegment(id: UInt64) throws(StoreError) {
        let capacity = UInt64(options.segmentCapacity)
        let path = directory + "/" + Format.segmentFileName(id)
        let tmp = path + ".tmp"
        let fd = try sys.open(tmp, flags: O_RDWR | O_CREAT | O_TRUNC)
        var mapped: UnsafeRawPointer?
        do throws(StoreError) {
            try sys.preallocate(fd, length: capacity, path: tmp)
            let header = Format.segmentHeader(id: id, created: options.clock(), capacity: capacity)
            try sys.pwriteAll(fd, header, at: 0, path: tmp)
            try sys.fdatasync(fd, path: tmp)
            try sys.rename(tmp, path)
            try sys.syncDirectory(directory)
            mapped = try sys.mapReadOnly(fd, length: Int(capacity), path: path)
        } catch {
            sys.close(fd)
            try? sys.unlink(tmp)
            if error.code == .syncFailed { failure = error }
            throw error
        }
        let segment = Segment(
            id: id, path: path, fd: fd, base: mapped!, mappedLength: Int(capacity), created: options.clock(),
            capacity: capacity, end: Format.segmentHeaderSize, sealed: false)
        segments.append(segment)
        segmentById[id] = segment
    }

    /// Writes the seal frame (a summary of the segment), syncs, and marks the segment immutable.
    private func seal(_ segment: Segment) throws(StoreError) {
        var w = ByteWriter(capacity: Format.frameHeaderSize + Format.sealPayloadSize)
        w.zeros(Format.frameHeaderSize)
        w.u64(UInt64(segment.index.frameCount))
        w.u64(UInt64(segment.index.recordCount))
        w.i64(segment.index.hasTimeRange ? segment.index.minTimestamp : 0)
        w.i64(segment.index.hasTimeRange ? segment.index.maxTimestamp : 0)
        let sequence = nextSequence
        finishFrame(&w.bytes, sequence: sequence, recordCount: 0, kind: Format.frameKindSeal)
        try writeFrame(w.bytes, to: segment)
        nextSequence += 1
        do throws(StoreError) {
            try sys.fdatasync(segment.fd, path: segment.path)
        } catch {
            failure = error
            throw error
        }
        segment.end += w.bytes.count
        segment.sealed = true
        segment.memoryIndex?.freeze()
        lastWritten = sequence
        commit.markDurable(sequence)
        maintenanceThread?.wake()
    }

    /// Fills in a frame header (magic, length, sequence, count, kind, checksum) for `frame`, whose first 32 bytes
    /// are reserved for it and whose payload follows.
    private func finishFrame(_ frame: inout [UInt8], sequence: UInt64, recordCount: Int, kind: UInt16, payloadHash: UInt64? = nil) {
        let payloadLength = frame.count - Format.frameHeaderSize
        frame.withUnsafeMutableBytes { b in
            b.storeBytes(of: Format.frameMagic.littleEndian, toByteOffset: 0, as: UInt32.self)
            b.storeBytes(of: UInt32(payloadLength).littleEndian, toByteOffset: 4, as: UInt32.self)
            b.storeBytes(of: sequence.littleEndian, toByteOffset: 8, as: UInt64.self)
            b.storeBytes(of: UInt32(recordCount).littleEndian, toByteOffset: 16, as: UInt32.self)
            b.storeBytes(of: kind.littleEndian, toByteOffset: 20, as: UInt16.self)
            b.storeBytes(of: UInt16(0), toByteOffset: 22, as: UInt16.self)
            let ph = payloadHash ?? Hash.bytes(UnsafeRawBufferPointer(rebasing: b[Format.frameHeaderSize...]))
            let sum = Format.frameChecksum(header24: UnsafeRawBufferPointer(rebasing: b[0..<24]), payloadHash: ph)
            b.storeBytes(of: sum.littleEndian, toByteOffset: 24, as: UInt64.self)
        }
        let padded = Format.aligned(frame.count)
        if padded > frame.count { frame.append(contentsOf: repeatElement(0, count: padded - frame.count)) }
    }

    /// Writes frame bytes at the segment's end. On failure, tries to zero what may have been written so no
    /// partial frame lingers; if even that fails the store fails closed.
    private func writeFrame(_ bytes: [UInt8], to segment: Segment) throws(StoreError) {
        do throws(StoreError) {
            try sys.pwriteAll(segment.fd, bytes, at: UInt64(segment.end), path: segment.path)
        } catch {
            let zeros = [UInt8](repeating: 0, count: bytes.count)
            do throws(StoreError) {
                try sys.pwriteAll(segment.fd, zeros, at: UInt64(segment.end), path: segment.path)
            } catch let zeroError {
                failure = StoreError(
                    .failedClosed,
                    "a failed write could not be cleaned up (\(zeroError.message)); reopen the store to recover",
                    path: segment.path, offset: UInt64(segment.end))
            }
            throw error
        }
    }

    // MARK: Appending

    /// A batch validated and encoded by `prepare`, waiting for its sequence number. Preparing is the CPU-heavy
    /// part of an append and takes no lock, so many threads can prepare while one appends.
    public struct PreparedBatch: Sendable {
        var bytes: [UInt8]
        public let recordCount: Int
        var payloadHash: UInt64
        /// Encoded size in bytes.
        public var size: Int { bytes.count }
    }

    /// Validates and encodes a batch without taking the store's lock.
    /// - Throws: `.invalidArgument` (empty batch, invalid id, oversized record), `.batchTooLarge`.
    public func prepare(_ records: [Record]) throws(StoreError) -> PreparedBatch {
        try encode(records)
    }

    /// Validates and encodes a batch outside the lock.
    func encode(_ records: [Record]) throws(StoreError) -> PreparedBatch {
        guard !records.isEmpty else { throw StoreError.invalid("empty batch: a batch needs at least one record") }
        guard records.count <= Limits.maxRecordsPerBatch else {
            throw StoreError.invalid("batch of \(records.count) records exceeds the limit of \(Limits.maxRecordsPerBatch)")
        }
        var size = Format.frameHeaderSize
        for record in records {
            switch record {
            case .concept(let c):
                try Limits.validate(id: c.id, what: "event id")
                guard c.entities.count <= Limits.maxEntities else {
                    throw StoreError.invalid("event \(c.id) mentions \(c.entities.count) entities; the limit is \(Limits.maxEntities)")
                }
                for e in c.entities { try Limits.validate(id: e, what: "entity id") }
                guard c.payload.count <= Limits.maxPayload else {
                    throw StoreError.invalid(
                        "event \(c.id) has a payload of \(c.payload.count) bytes; the limit is \(Limits.maxPayload)")
                }
                guard c.idHash == Hash.id(c.id) else {
                    throw StoreError.invalid("event \(c.id) carries an id hash that does not match its id")
                }
                size += Format.conceptSize(c)
            case .adjacency:
                size += Format.adjacencySize
            }
        }
        let maxFrame = options.segmentCapacity - Format.segmentHeaderSize - Self.sealReserve
        guard Format.aligned(size) <= maxFrame else {
            throw StoreError(
                .batchTooLarge,
                "batch encodes to \(size) bytes; a segment of \(options.segmentCapacity) bytes holds at most \(maxFrame) per batch; split the batch"
            )
        }
        var w = ByteWriter(capacity: Format.aligned(size))
        w.zeros(Format.frameHeaderSize)
        for record in records {
            switch record {
            case .concept(let c): Format.encode(c, into: &w)
            case .adjacency(let a): Format.encode(a, into: &w)
            }
        }
        let payloadHash = w.bytes.withUnsafeBytes { Hash.bytes(UnsafeRawBufferPointer(rebasing: $0[Format.frameHeaderSize...])) }
        return PreparedBatch(bytes: w.bytes, recordCount: records.count, payloadHash: payloadHash)
    }

    static let sealReserve = Format.frameHeaderSize + Format.sealPayloadSize

    /// Appends one batch atomically as one frame and returns once it is durable under `options.durability`.
    ///
    /// - Throws: `.invalidArgument` (empty batch, invalid id, oversized record), `.batchTooLarge`, `.noSpace`
    ///   (nothing of the batch is acknowledged; retry after freeing space), `.syncFailed`/`.failedClosed`
    ///   (the store acknowledges nothing more until reopened), `.notWritable`, `.closed`.
    /// - Complexity: one write; under `.always` one fdatasync; under `.batch` a share of one.
    @discardableResult
    public func append(_ records: [Record]) throws(StoreError) -> AppendReceipt {
        try append(batches: [records])[0]
    }

    /// Appends several batches, each its own atomic frame, with one shared durability wait. Receipts are in
    /// order. If it throws, none of the batches may be considered acknowledged (some may still be stored; ids
    /// make a resend safe).
    public func append(batches: [[Record]]) throws(StoreError) -> [AppendReceipt] {
        var encoded: [PreparedBatch] = []
        encoded.reserveCapacity(batches.count)
        for b in batches { encoded.append(try encode(b)) }
        return try append(prepared: encoded)
    }

    /// Appends batches made by `prepare`, each its own frame, with one shared durability wait.
    public func append(prepared encoded: [PreparedBatch]) throws(StoreError) -> [AppendReceipt] {
        guard !options.readOnly else { throw StoreError(.notWritable, "store was opened read-only", path: directory) }
        guard !encoded.isEmpty else { throw StoreError.invalid("no batches to append") }
        for batch in encoded where batch.bytes.count > options.segmentCapacity - Format.segmentHeaderSize - Self.sealReserve {
            throw StoreError(.batchTooLarge, "a prepared batch of \(batch.bytes.count) bytes does not fit a segment of \(options.segmentCapacity) bytes")
        }
        let receipts = try lock.withLock { () throws(StoreError) -> [AppendReceipt] in
            try checkWritable()
            var receipts: [AppendReceipt] = []
            for var batch in encoded {
                let segment = try segmentWithRoom(for: batch.bytes.count)
                let sequence = nextSequence
                finishFrame(
                    &batch.bytes, sequence: sequence, recordCount: batch.recordCount, kind: Format.frameKindBatch,
                    payloadHash: batch.payloadHash)
                let offset = segment.end
                try writeFrame(batch.bytes, to: segment)
                nextSequence += 1
                lastWritten = sequence
                segment.end += batch.bytes.count
                indexWrittenFrame(segment, offset: offset)
                if options.durability == .always {
                    do throws(StoreError) {
                        try sys.fdatasync(segment.fd, path: segment.path)
                    } catch {
                        failure = error
                        throw error
                    }
                    commit.markDurable(sequence)
                }
                receipts.append(
                    AppendReceipt(
                        sequence: sequence, segment: segment.id, offset: UInt64(offset),
                        recordCount: batch.recordCount, isSynced: options.durability != .none))
            }
            return receipts
        }
        if options.durability == .batch, let last = receipts.last {
            try commit.waitDurable(last.sequence) { () throws(StoreError) -> UInt64 in
                try syncActive()
            }
        }
        return receipts
    }

    /// Returns once everything appended so far is durable under the store's mode (under `.batch` this may
    /// share or make one fdatasync). Throws when the store has failed closed, so a caller that found data in the
    /// index never acknowledges what may not be on disk.
    public func barrier() throws(StoreError) {
        let target = try lock.withLock { () throws(StoreError) -> UInt64 in
            try checkWritable()
            return lastWritten
        }
        if options.durability == .batch {
            try commit.waitDurable(target) { () throws(StoreError) -> UInt64 in try syncActive() }
        }
    }

    /// Syncs the active segment; returns the highest sequence the sync covers. Sealed segments were synced
    /// when sealed.
    private func syncActive() throws(StoreError) -> UInt64 {
        let (target, segment) = lock.withLock { (lastWritten, active) }
        if let segment {
            do throws(StoreError) {
                try sys.fdatasync(segment.fd, path: segment.path)
            } catch {
                lock.withLock { failure = error }
                throw error
            }
        }
        return target
    }

    private func checkWritable() throws(StoreError) {
        if isClosed { throw StoreError(.closed, "store is closed", path: directory) }
        if let failure {
            throw StoreError(
                .failedClosed,
                "store failed closed after an earlier error (\(failure.message)); nothing more is acknowledged until it is reopened",
                path: failure.path ?? directory, errno: failure.errno)
        }
    }

    private func segmentWithRoom(for size: Int) throws(StoreError) -> Segment {
        if let segment = active {
            if segment.end + size + Self.sealReserve <= Int(segment.capacity) { return segment }
            try seal(segment)
        }
        try createSegment(id: (segments.last?.id ?? 0) + 1)
        return segments.last!
    }

    private func indexWrittenFrame(_ segment: Segment, offset: Int) {
        let buf = segment.bytes
        // The frame was built by this process; the scan's checks are skipped, only its summary is computed.
        let header = buf.slice(offset, Format.frameHeaderSize)
        let payloadLength = Int(header.u32(4))
        let payload = buf.slice(offset + Format.frameHeaderSize, payloadLength)
        var minTs = Int64.max
        var maxTs = Int64.min
        var it = RecordIterator(payload)
        while let r = it.next() {
            let ts = payload.i64(r.offset + 24)
            minTs = min(minTs, ts)
            maxTs = max(maxTs, ts)
        }
        segment.memoryIndex?.indexFrame(
            frameOffset: offset, payload: payload, minTimestamp: minTs, maxTimestamp: maxTs,
            recordCount: Int(header.u32(16)), isKnown: { isKnown($0, indexing: segment) })
    }

    /// The concept record at `loc`, bounds-checked against its segment.
    func conceptView(_ loc: Location) -> ConceptView? {
        guard let segment = segmentById[loc.segment], let r = segment.record(at: loc.offset, cache: cache),
            r.bytes.u8(0) == Format.recordKindConcept
        else { return nil }
        let length = r.bytes.count
        let idLength = Int(r.bytes.u16(8))
        let payloadLength = Int(r.bytes.u32(12))
        guard Format.recordHeaderSize + idLength + payloadLength <= length else { return nil }
        return ConceptView(bytes: r.bytes, owner: r.owner)
    }

    // MARK: Closing

    /// Syncs (unless the store failed) and releases every file, mapping and the directory lock. Idempotent.
    public func close() {
        maintenanceThread?.stop()
        // A segment sealed moments ago would otherwise be rescanned on the next open: write its index file now
        // (fast; compaction can wait for the next run).
        // Under the maintenance lock: an explicit `runMaintenance()` on another thread reads segment mappings
        // outside the store's lock, so none may be unmapped while it runs.
        maintenanceLock.withLock {
            if !options.readOnly, lock.withLock({ !isClosed && failure == nil }) {
                var report = MaintenanceReport()
                try? writeIndexFiles(&report)
            }
            closeFiles()
        }
    }

    private func closeFiles() {
        lock.withLock {
            if isClosed { return }
            isClosed = true
            if !options.readOnly, failure == nil, let segment = active {
                try? sys.fdatasync(segment.fd, path: segment.path)
            }
            for s in segments { s.close(sys) }
            maintenanceThread = nil
            segments = []
            segmentById = [:]
            if lockFd >= 0 {
                sys.close(lockFd)
                lockFd = -1
            }
        }
    }
}

extension String {
    var trimmingWhitespace: String {
        var s = Substring(self)
        while let c = s.first, c.isWhitespace { s.removeFirst() }
        while let c = s.last, c.isWhitespace { s.removeLast() }
        return String(s)
    }
}
