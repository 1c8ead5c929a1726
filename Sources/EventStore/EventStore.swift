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
    var segmentsGeneration = 0
    /// Time spans of the segments, as plain values (the duplicate check looks at every segment per event).
    var spans: [(min: Int64, max: Int64, position: Int)] = []
    var spansGeneration = -1
    var segmentById: [UInt64: Segment] = [:]
    var nextSequence: UInt64 = 1
    var lastWritten: UInt64 = 0
    var failure: StoreError?
    var isClosed = false
    private var lockFd: Int32 = -1
    var manifest = Manifest()
    let cache: BlockCache
    /// Guards the active segment's in-memory index: the writer inserts under it (holding the store's lock too),
    /// readers copy positions out under it, a few hundred at a time, and never decode under it.
    let activeLock = ConditionLock()
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
        guard options.compactionBlockBytes >= StoreOptions.minCompactionBlockBytes,
            options.compactionBlockBytes <= StoreOptions.maxCompactionBlockBytes
        else {
            throw StoreError.invalid(
                "compaction block size \(options.compactionBlockBytes) is outside \(StoreOptions.minCompactionBlockBytes)...\(StoreOptions.maxCompactionBlockBytes) bytes"
            )
        }
        let sys = SystemCalls(faults: options.faults)
        let started = GridClock.nowMicros()
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
        report.elapsedSeconds = Double(GridClock.nowMicros() - started) / 1e6
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
            // Mappings and files are released with the last reference (a read in progress may still hold some).
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
