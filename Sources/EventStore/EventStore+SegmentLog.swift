#if canImport(Glibc)
import Glibc
#endif

/// The segment-log writer: creating segments, framing and writing batches, sealing, and the durability of
/// appends (one fdatasync per call under `always`, group commit under `batch`, outside the store's lock).
extension EventStore {
    // MARK: Segments

    var active: Segment? {
        guard let last = segments.last, !last.sealed else { return nil }
        return last
    }

    /// Creates a segment: preallocate a temporary file, write and sync its header, rename it into place,
    /// sync the directory. A crash at any point leaves either no segment or a complete empty one.
    func createSegment(id: UInt64) throws(StoreError) {
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
            id: id, path: path, raw: RawMapping(fd: fd, base: mapped!, length: Int(capacity), sys: sys),
            created: options.clock(), capacity: capacity, end: Format.segmentHeaderSize, sealed: false, text: options.text)
        segments.append(segment)
        segmentById[id] = segment
    }

    /// Writes the seal frame (a summary of the segment), syncs, and marks the segment immutable.
    func seal(_ segment: Segment) throws(StoreError) {
        var w = BinaryWriter(capacity: Format.frameHeaderSize + Format.sealPayloadSize)
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
        activeLock.withLock { segment.memoryIndex?.freeze() }
        lastWritten = sequence
        commit.markDurable(sequence)
        maintenanceThread?.wake()
    }

    /// Fills in a frame header (magic, length, sequence, count, kind, checksum) for `frame`, whose first 32 bytes
    /// are reserved for it and whose payload follows.
    func finishFrame(_ frame: inout [UInt8], sequence: UInt64, recordCount: Int, kind: UInt16, payloadHash: UInt64? = nil) {
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
    func writeFrame(_ bytes: [UInt8], to segment: Segment) throws(StoreError) {
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
        /// The word hashes of each concept record, in order, when the store indexes text: taken here, outside the
        /// lock, so the index is extended under it without tokenizing.
        var words: [[UInt64]]? = nil
        /// Encoded size in bytes.
        public var size: Int { bytes.count }
    }

    /// Validates and encodes a batch without taking the store's lock.
    /// - Throws: `.invalidArgument` (empty batch, invalid id, oversized record), `.batchTooLarge`.
    public func prepare(_ records: [Record]) throws(StoreError) -> PreparedBatch {
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
        var w = BinaryWriter(capacity: Format.aligned(size))
        w.zeros(Format.frameHeaderSize)
        var words: [[UInt64]]? = options.text == nil ? nil : []
        var hashes: [UInt64] = []
        var scratch: [UInt8] = []
        for record in records {
            switch record {
            case .concept(let c):
                Format.encode(c, into: &w)
                if let text = options.text {
                    c.payload.withUnsafeBytes { text.wordHashes(typeCode: c.typeCode, payload: $0, into: &hashes, scratch: &scratch) }
                    words?.append(hashes)
                }
            case .adjacency(let a): Format.encode(a, into: &w)
            }
        }
        let payloadHash = w.bytes.withUnsafeBytes { Hash.bytes(UnsafeRawBufferPointer(rebasing: $0[Format.frameHeaderSize...])) }
        return PreparedBatch(bytes: w.bytes, recordCount: records.count, payloadHash: payloadHash, words: words)
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
        for b in batches { encoded.append(try prepare(b)) }
        return try append(prepared: encoded)
    }

    /// Appends batches made by `prepare`, each its own frame, with one shared durability wait.
    public func append(prepared encoded: [PreparedBatch]) throws(StoreError) -> [AppendReceipt] {
        guard !options.readOnly else { throw StoreError(.notWritable, "store was opened read-only", path: directory) }
        guard !encoded.isEmpty else { throw StoreError.invalid("no batches to append") }
        for batch in encoded where batch.bytes.count > options.segmentCapacity - Format.segmentHeaderSize - Self.sealReserve {
            throw StoreError(.batchTooLarge, "a prepared batch of \(batch.bytes.count) bytes does not fit a segment of \(options.segmentCapacity) bytes")
        }
        // Under `.always` the fdatasync runs after the lock is released (readers and other appenders go on); the
        // mapping is held so its descriptor stays open even if the segment is sealed and compacted meanwhile.
        var toSync: [(RawMapping, String)] = []
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
                indexWrittenFrame(segment, offset: offset, words: batch.words)
                if options.durability == .always, let raw = segment.raw, toSync.last?.0 !== raw {
                    toSync.append((raw, segment.path))
                }
                receipts.append(
                    AppendReceipt(
                        sequence: sequence, segment: segment.id, offset: UInt64(offset),
                        recordCount: batch.recordCount, isSynced: options.durability != .none))
            }
            return receipts
        }
        if options.durability == .always, let last = receipts.last {
            for (raw, path) in toSync {
                do throws(StoreError) {
                    try sys.fdatasync(raw.fd, path: path)
                } catch {
                    lock.withLock { failure = error }
                    throw error
                }
            }
            commit.markDurable(last.sequence)
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
    func syncActive() throws(StoreError) -> UInt64 {
        // The mapping is held so its descriptor stays open even if the segment is sealed and compacted meanwhile.
        let (target, raw, path) = lock.withLock { (lastWritten, active?.raw, active?.path ?? directory) }
        if let raw {
            do throws(StoreError) {
                try sys.fdatasync(raw.fd, path: path)
            } catch {
                lock.withLock { failure = error }
                throw error
            }
        }
        return target
    }

    func checkWritable() throws(StoreError) {
        if isClosed { throw StoreError(.closed, "store is closed", path: directory) }
        if let failure {
            throw StoreError(
                .failedClosed,
                "store failed closed after an earlier error (\(failure.message)); nothing more is acknowledged until it is reopened",
                path: failure.path ?? directory, errno: failure.errno)
        }
    }

    func segmentWithRoom(for size: Int) throws(StoreError) -> Segment {
        if let segment = active {
            if segment.end + size + Self.sealReserve <= Int(segment.capacity) { return segment }
            try seal(segment)
        }
        try createSegment(id: (segments.last?.id ?? 0) + 1)
        return segments.last!
    }

    func indexWrittenFrame(_ segment: Segment, offset: Int, words: [[UInt64]]?) {
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
        // The duplicate check (which reads the indexes under the store's lock, held here) runs first; the index
        // is then extended under `activeLock`, where readers copy from it, for as short a time as possible.
        var known: [Bool] = []
        var inFrame: [UInt64: [UnsafeRawBufferPointer]] = [:]
        var concepts = RecordIterator(payload)
        while let r = concepts.next() {
            guard r.kind == Format.recordKindConcept else { continue }
            let view = ConceptView(bytes: payload.slice(r.offset, r.length))
            let h = view.idHash
            // An id twice in one batch: the first copy is the event.
            let again = inFrame[h]?.contains { $0.elementsEqual(view.idBytes) } ?? false
            let isDuplicate = again || isKnown(view, indexing: segment)
            known.append(isDuplicate)
            if !isDuplicate { inFrame[h, default: []].append(view.idBytes) }
        }
        var k = 0
        activeLock.withLock {
            segment.memoryIndex?.indexFrame(
                frameOffset: offset, payload: payload, minTimestamp: minTs, maxTimestamp: maxTs,
                recordCount: Int(header.u32(16)), wordsOf: words, isKnown: { _ in
                    defer { k += 1 }
                    return k < known.count ? known[k] : false
                })
        }
    }

    /// The concept record at `loc`, bounds-checked against its segment. Call under the store's lock.
    func conceptView(_ loc: Location) -> ConceptView? {
        guard let segment = segmentById[loc.segment], let r = segment.view(active: false).record(at: loc.offset, cache: cache),
            r.bytes.u8(0) == Format.recordKindConcept
        else { return nil }
        let length = r.bytes.count
        let idLength = Int(r.bytes.u16(8))
        let payloadLength = Int(r.bytes.u32(12))
        guard Format.recordHeaderSize + idLength + payloadLength <= length else { return nil }
        return ConceptView(bytes: r.bytes, owner: r.owner)
    }

}
