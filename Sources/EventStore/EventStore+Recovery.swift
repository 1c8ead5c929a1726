#if canImport(Glibc)
import Glibc
#endif

/// Opening a store: carrying out the recovery plan (RecoveryPlan decides from the file names and the manifest;
/// this checks each file's contents as it opens it), index files, rebuilds of damaged indexes.
extension EventStore {
    func recover(into report: inout RecoveryReport) throws(StoreError) {
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
        // What to do with each file is decided from the names and the manifest alone (RecoveryPlan's table); the
        // files' contents are checked below as each is opened.
        let plan = RecoveryPlan.make(
            names: try sys.listDirectory(directory), firstSegment: manifest.firstSegment, compacted: manifest.compacted)
        if writable {
            for name in plan.deleteTemporary { try sys.unlink(directory + "/" + name) }
        }
        var indexFiles = Set<UInt64>()
        for s in plan.segments where s.files.index { indexFiles.insert(s.id) }
        var opened: [(id: UInt64, useCompacted: Bool)] = []
        for s in plan.segments {
            switch s.action {
            case .deleteAll:
                // A retention pass a crash interrupted: the manifest already says these are gone.
                if writable { try removeFiles(of: s.id) }
            case .deleteIndex:
                if writable { try sys.unlink(directory + "/" + IndexFile.fileName(s.id)) }
            case .openRaw(let deleteCompacted):
                if deleteCompacted, writable { try sys.unlink(directory + "/" + CompactedFormat.fileName(s.id)) }
                opened.append((s.id, false))
            case .openCompacted(let deleteRaw):
                if deleteRaw, writable { try sys.unlink(directory + "/" + Format.segmentFileName(s.id)) }
                opened.append((s.id, true))
            }
        }
        let ids = opened.map(\.id)
        var maxSequence: UInt64 = 0
        var newestFromIndex: Segment?
        var lastUsable = true
        for (i, (id, useCompacted)) in opened.enumerated() {
            let isLast = i == opened.count - 1
            let segment: Segment
            var scanned = false
            if useCompacted {
                do throws(StoreError) {
                    let file = try CompactedFile(path: directory + "/" + CompactedFormat.fileName(id), segment: id, sys: sys)
                    segment = Segment(id: id, compacted: file, created: 0, capacity: 0, text: options.text)
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
                    id: id, path: path, raw: RawMapping(fd: fd, base: base, length: size, sys: sys), created: h.created,
                    capacity: h.capacity, end: size, sealed: true, text: options.text)
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
                    if segment.sealed { segment.memoryIndex?.freeze() }
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
    func openIndexFile(_ id: UInt64, into report: inout RecoveryReport) -> MappedIndex? {
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
    func indexMatches(_ mapped: MappedIndex, _ segment: Segment, into report: inout RecoveryReport) -> Bool {
        let available = segment.compacted?.header.rawLength ?? segment.bytes.count
        let expected = mapped.header.segmentEnd
        let ok = segment.isCompacted ? expected == available : expected <= available
        if !ok {
            report.notices.append(
                "index file of segment \(segment.id) covers \(expected) bytes, the segment holds \(available); rebuilt it from the segment")
            return false
        }
        // Words taken under another text scheme (or none) would answer searches from another reading of the payloads.
        if let text = options.text, mapped.textScheme != text.scheme {
            report.notices.append(
                "index file of segment \(segment.id) has \(mapped.textScheme == 0 ? "no word index" : "words of text scheme \(mapped.textScheme)"), this store indexes text scheme \(text.scheme); rebuilt it from the segment")
            return false
        }
        return true
    }

    /// The sequence of the last frame of a sealed segment (its seal frame when it has one), read from its data.
    func lastSequence(of segment: Segment) throws(StoreError) -> UInt64 {
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
    func scanAndIndex(_ segment: Segment, into report: inout RecoveryReport) -> SegmentScanResult {
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
                segment.memoryIndex?.freeze()
                return scan
            }
        }
        segment.needsFrameChecks = false
        let scan = scanAndIndex(segment, into: &report)
        segment.releaseResidentPages()
        // Sealed: reads use this index without a lock from now on.
        segment.memoryIndex?.freeze()
        return scan
    }

    /// Scans `bytes` (the segment's raw byte space) into a fresh in-memory index for `segment`.
    func index(_ segment: Segment, bytes: UnsafeRawBufferPointer) -> SegmentScanResult {
        let memory = MemoryIndex(segment: segment.id, text: options.text)
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
    func repairIndex(_ segment: Segment) {
        guard let mapped = segment.mappedIndex, let problem = mapped.damage else { return }
        var report = RecoveryReport()
        _ = rebuildIndex(segment, into: &report)
        // The damaged mapping is released with the last read that still holds it.
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

}
