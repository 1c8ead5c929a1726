#if canImport(Glibc)
import Glibc
#endif

/// What one maintenance pass did.
public struct MaintenanceReport: Sendable, Equatable {
    /// Segments whose index file was written.
    public var indexesWritten: [UInt64] = []
    /// Segments compacted, with their data bytes before (written frames) and after (the compacted file).
    public var compacted: [UInt64] = []
    public var bytesBeforeCompaction = 0
    public var bytesAfterCompaction = 0
    public var compactionSeconds = 0.0
    /// Time spent writing index files, and the part of it that held the store's lock (encoding).
    public var indexSeconds = 0.0
    public var indexLockedSeconds = 0.0
    /// Segments deleted by retention.
    public var deleted: [UInt64] = []
    public var deletedEvents = 0
    public var deletedBytes = 0

    public var didWork: Bool { !indexesWritten.isEmpty || !compacted.isEmpty || !deleted.isEmpty }

    /// One line for the log.
    public var summary: String {
        var parts: [String] = []
        if !indexesWritten.isEmpty {
            parts.append(
                "wrote \(indexesWritten.count) index file(s) in \(format3(indexSeconds))s (\(format3(indexLockedSeconds))s holding the store lock)")
        }
        if !compacted.isEmpty {
            parts.append(
                "compacted \(compacted.count) segment(s), \(bytesBeforeCompaction) -> \(bytesAfterCompaction) bytes in \(format3(compactionSeconds))s")
        }
        if !deleted.isEmpty { parts.append("retention deleted \(deleted.count) segment(s)") }
        return "maintenance: " + (parts.isEmpty ? "nothing to do" : parts.joined(separator: "; "))
    }
}

extension EventStore {
    /// Does the pending background work now: writes the index file of every sealed segment still indexed in
    /// memory, compacts sealed segments (unless `compression` is `.none`), and applies retention. Appends and
    /// reads continue meanwhile; each swap of old files for new is atomic (see docs/FORMAT.md).
    /// The background thread calls this; so can tests and tools (one pass runs at a time).
    /// - Throws: `StoreError` from the file system; what was finished before the error stays done.
    @discardableResult
    public func runMaintenance() throws(StoreError) -> MaintenanceReport {
        try maintenanceLock.withLock { () throws(StoreError) -> MaintenanceReport in
            var report = MaintenanceReport()
            try writeIndexFiles(&report)
            if options.compression != .none { try compactSealed(&report) }
            try applyRetention(&report)
            if report.didWork { options.onNotice?(report.summary) }
            return report
        }
    }

    /// Sealed segments, under the lock.
    private func sealedSegments() -> [Segment] {
        lock.withLock { isClosed ? [] : segments.filter { $0.sealed && $0 !== active } }
    }

    func writeIndexFiles(_ report: inout MaintenanceReport) throws(StoreError) {
        guard !options.readOnly else { return }
        // Index files that reads found damaged: rebuilt from the data, then written below like any new index.
        for segment in sealedSegments() where segment.health.damagedIndex != nil {
            lock.withLock {
                if segment.mappedIndex != nil { repairIndex(segment) }
                segment.health.clearIndexFlag()
            }
        }
        for segment in sealedSegments() {
            // A sealed segment's in-memory index is frozen: no more inserts, and reads no longer write, so it is
            // encoded without the store's lock while readers keep using it.
            let started = monotonicNanos()
            let found: (MemoryIndex, Int)? = lock.withLock {
                guard let memory = segment.memoryIndex, segment.sealed, !segment.damaged else { return nil }
                if !memory.frozen { memory.freeze() }
                return (memory, segment.end)
            }
            report.indexLockedSeconds += Double(monotonicNanos() - started) / 1e9
            defer { report.indexSeconds += Double(monotonicNanos() - started) / 1e9 }
            guard let (memory, end) = found else { continue }
            let bytes = IndexFile.encode(memory, segmentEnd: end)
            let path = directory + "/" + IndexFile.fileName(segment.id)
            try writeFileAtomically(path, bytes, directory: directory, sys)
            let mapped = try MappedIndex(path: path, segment: segment.id, sys: sys)
            let adopted = lock.withLock { () -> Bool in
                guard !isClosed, segment.index === memory else { return false }
                segment.index = mapped
                return true
            }
            if adopted { report.indexesWritten.append(segment.id) }
        }
    }

    private func compactSealed(_ report: inout MaintenanceReport) throws(StoreError) {
        for segment in sealedSegments() {
            // Compact only once the index file exists, so the frame list and the index survive the swap.
            let frames: [FrameEntry]? = lock.withLock {
                guard !segment.isCompacted, segment.mappedIndex != nil else { return nil }
                return (0..<segment.index.frameCount).map { segment.index.frame(at: $0) }
            }
            guard let frames else { continue }
            let started = monotonicNanos()
            // The raw mapping stays valid here: only this pass swaps or deletes segments, and `close` waits for it.
            var copy = Array(segment.bytes[0..<segment.end])
            var infos: [FrameInfo] = []
            copy.withUnsafeMutableBytes { buf in
                let view = UnsafeRawBufferPointer(buf)
                for f in frames {
                    switch SegmentScanner.frame(at: Int(f.offset), in: view, segment: segment.id) {
                    case .success(let info): infos.append(info)
                    case .failure(let problem):
                        // A frame that rotted since it was written is not carried over: its bytes are zeroed, so
                        // its records read as absent, and the damage is reported.
                        guard Int(f.offset) < view.count else { break }  // an index that lies: nothing to zero
                        let n = min(Format.frameHeaderSize + Int(f.payloadLength), view.count - Int(f.offset))
                        buf.baseAddress!.advanced(by: Int(f.offset)).initializeMemory(as: UInt8.self, repeating: 0, count: n)
                        options.onNotice?(
                            "compaction of segment \(segment.id): frame at offset \(f.offset) fails its check (\(problem.reason)); not carried over")
                    }
                }
            }
            let compressed = copy.withUnsafeBytes {
                CompactedFormat.encode(
                    $0, segment: segment.id, end: segment.end, frames: infos, compression: options.compression,
                    blockSize: options.compactionBlockBytes)
            }
            let path = directory + "/" + CompactedFormat.fileName(segment.id)
            try writeFileAtomically(path, compressed, directory: directory, sys)
            // The manifest is the switch: from here on the compacted file is the segment.
            var next = lock.withLock { manifest }
            next.generation += 1
            next.compacted.insert(segment.id)
            try next.write(directory, sys)
            let file = try CompactedFile(path: path, segment: segment.id, sys: sys)
            let oldPath = segment.path
            let swapped = lock.withLock { () -> Bool in
                manifest = next
                guard !isClosed, segmentById[segment.id] === segment else { return false }
                segment.adoptCompacted(file)
                return true
            }
            guard swapped else { continue }
            try sys.unlink(oldPath)
            try sys.syncDirectory(directory)
            report.compacted.append(segment.id)
            report.bytesBeforeCompaction += segment.end
            report.bytesAfterCompaction += compressed.count
            report.compactionSeconds += Double(monotonicNanos() - started) / 1e9
        }
    }

    private func applyRetention(_ report: inout MaintenanceReport) throws(StoreError) {
        guard !options.readOnly, options.retainMicros != nil || options.maxBytes != nil else { return }
        let now = options.clock()
        var replicationLoss: ReplicationLoss?
        let (victims, next) = lock.withLock { () -> ([Segment], Manifest) in
            let sealed = segments.filter { $0.sealed && $0 !== active }
            var total = segments.reduce(0) { $0 + $1.diskBytes + ($1.mappedIndex?.fileBytes ?? 0) }
            var victims: [Segment] = []
            for s in sealed {
                let tooOld = options.retainMicros.map { s.index.hasTimeRange && s.index.maxTimestamp < now - $0 } ?? false
                let tooBig = options.maxBytes.map { total > $0 } ?? false
                guard tooOld || tooBig else { break }  // whole segments, oldest first
                // Not yet replicated: kept unless max_bytes forces it (EventStore+Replication.swift).
                guard retentionMayDelete(s, forcedBySize: tooBig, loss: &replicationLoss) else { break }
                victims.append(s)
                total -= s.diskBytes + (s.mappedIndex?.fileBytes ?? 0)
            }
            var m = manifest
            if let last = victims.last {
                m.generation += 1
                m.firstSegment = last.id + 1
                m.compacted.subtract(victims.map(\.id))
                m.retention.segments += victims.count
                m.retention.events += victims.reduce(0) { $0 + $1.index.conceptCount }
                m.retention.bytes += victims.reduce(0) { $0 + $1.diskBytes + ($1.mappedIndex?.fileBytes ?? 0) }
                m.retention.lastDeletion = now
                m.retention.lastSegment = last.id
            }
            return (victims, m)
        }
        guard !victims.isEmpty else { return }
        // The manifest is the switch: once it names the new first segment, the old files are gone for good
        // (a crash before they are unlinked finishes the job on the next open).
        try next.write(directory, sys)
        lock.withLock {
            let before = manifest.retention
            manifest = next
            for v in victims {
                segments.removeAll { $0 === v }
                segmentById[v.id] = nil
                cache.remove(segment: v.id)  // reads that still hold the segment keep its files mapped
            }
            report.deletedEvents += next.retention.events - before.events
            report.deletedBytes += next.retention.bytes - before.bytes
        }
        for v in victims {
            try removeFiles(of: v.id)
            report.deleted.append(v.id)
        }
        try sys.syncDirectory(directory)
        let why = [options.retainMicros.map { "older than \($0 / 1_000_000) s" }, options.maxBytes.map { "over \($0) bytes" }]
            .compactMap { $0 }.joined(separator: " or ")
        if let replicationLoss { options.onReplicationLoss?(replicationLoss) }
        options.onNotice?(
            "retention deleted segment(s) \(victims.map { String($0.id) }.joined(separator: ", ")) (\(report.deletedEvents) events, \(report.deletedBytes) bytes; store \(why))")
    }
}

/// The background thread that runs `EventStore.runMaintenance()` after each seal and every `interval` seconds.
final class MaintenanceThread: @unchecked Sendable {
    private let cond = ConditionLock()
    private var stopping = false
    private var wakeups = 0
    private weak var store: EventStore?
    private let interval: Double
    private var thread = pthread_t()
    private var started = false

    init(store: EventStore, interval: Double) {
        self.store = store
        self.interval = interval
        let box = Unmanaged.passRetained(self)
        let rc = pthread_create(&thread, nil, { raw in
            let me = Unmanaged<MaintenanceThread>.fromOpaque(raw!).takeRetainedValue()
            me.loop()
            return nil
        }, box.toOpaque())
        if rc == 0 { started = true } else { box.release() }
        wake()  // work found on open (segments to index or compact) starts right away
    }

    func wake() {
        cond.withLock {
            wakeups += 1
            cond.broadcast()
        }
    }

    func stop() {
        let join = cond.withLock { () -> Bool in
            let first = !stopping
            stopping = true
            cond.broadcast()
            return first && started
        }
        if join, pthread_equal(pthread_self(), thread) == 0 { pthread_join(thread, nil) }
    }

    private func loop() {
        // Below the writers and readers: compaction uses idle CPU first (appends never wait for it).
        _ = setpriority(__priority_which_t(PRIO_PROCESS.rawValue), id_t(currentThreadId()), 10)
        while true {
            cond.lock()
            while !stopping, wakeups == 0 {
                if !cond.wait(seconds: interval) { break }
            }
            if stopping {
                cond.unlock()
                return
            }
            wakeups = 0
            cond.unlock()
            guard let store else { return }
            do throws(StoreError) {
                try store.runMaintenance()
            } catch {
                store.options.onNotice?("maintenance failed (will retry): \(error)")
            }
        }
    }
}

/// gettid(2): the kernel's id of the calling thread (glibc 2.30+; not exposed by the Glibc overlay).
@_silgen_name("gettid") private func currentThreadId() -> Int32
