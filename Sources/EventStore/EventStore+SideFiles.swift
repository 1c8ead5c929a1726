#if canImport(Glibc)
import Glibc
#endif

/// What a layer above the store needs to keep derived state beside it (the grid state's checkpoints,
/// `EventQuery.GridStateKeeper`): where the log starts and ends, the events stored after a point of it, and small
/// files of its own in a subdirectory of the data directory, written atomically through the store's system
/// calls. Nothing here changes the store's own files.
extension EventStore {
    /// Where the log starts and ends, as locations: `first` is the first location retention has not deleted
    /// (segment `first >> 32` onwards is stored), `end` is past every location stored so far (an event stored
    /// later gets a location of at least `end`), `lastSequence` the newest frame's sequence number. Locations
    /// grow with arrival order. O(1).
    public var logBounds: (first: UInt64, end: UInt64, lastSequence: UInt64) {
        lock.withLock {
            let first = max(manifest.firstSegment, segments.first?.id ?? manifest.firstSegment, 1) << 32
            guard let last = segments.last else { return (first, first, lastWritten) }
            return (first, last.id << 32 | UInt64(UInt32(truncatingIfNeeded: last.end)), lastWritten)
        }
    }

    /// Calls `body` with every event of the given type codes whose location is `location` or more (stored then
    /// or later) and whose timestamp is inside `range`, oldest position first, until it returns false. Only the
    /// segments from `location`'s on are read, through their type lists (two binary searches each); in
    /// `location`'s own segment the positions before it that fall in `range` are skipped, not decoded. So the cost
    /// is that of the events stored since `location` plus at most one segment's positions, not the whole log.
    /// Reads a snapshot, like `read`.
    public func read(
        storedFrom location: UInt64, types: Set<UInt16>, in range: Range<Int64>, _ body: (StoredEvent) -> Bool
    ) {
        let firstSegment = location >> 32
        let bounds = ReadBounds(range: range, newestFirst: false)
        let snap = snapshot()
        var cursors: [any PositionCursor] = []
        for v in snap.views where v.id >= firstSegment {
            if v.isActive, let memory = v.index as? MemoryIndex {
                for t in types.sorted() {
                    cursors.append(ActiveCursor(index: memory, lock: activeLock, pick: { $0.typeRun(t) }, bounds: bounds,
                                                end: snap.activeEnd))
                }
                continue
            }
            guard v.index.hasTimeRange else { continue }
            if v.index.maxTimestamp < range.lowerBound || v.index.minTimestamp >= range.upperBound { continue }
            let index = readableIndex(v, snap)
            for t in types.sorted() {
                if let run = index.typeRun(t) { cursors.append(RunCursor(run, bounds: bounds)) }
            }
        }
        var it = MergingIterator(cursors, newestFirst: false)
        while let (p, _) = it.next() {
            guard p.location >= location, let e = materialize(Location(raw: p.location), snap) else { continue }
            if !body(e) { return }
        }
    }

    /// The directory `DIR/<name>` for files of a layer above the store, created when missing (and made durable:
    /// `SystemCalls.makeDirectory` fsyncs the data directory after creating it).
    /// - Throws: `StoreError` `.io` when it cannot be created.
    public func sideDirectory(_ name: String) throws(StoreError) -> String {
        precondition(!name.isEmpty && !name.contains("/") && !name.hasPrefix("."), "a plain directory name")
        let path = directory + "/" + name
        if sys.isDirectory(path) != true {
            try sys.makeDirectory(path)
        }
        return path
    }

    /// Writes `bytes` to `directory/name` atomically: `name.tmp` written and fsynced, renamed over `name`, the
    /// directory fsynced. A crash leaves the old file (or none) or the new one, never a part.
    /// - Throws: `StoreError` (`.io`, `.noSpace`); the temporary file is removed.
    public func writeSideFile(_ directory: String, _ name: String, _ bytes: [UInt8]) throws(StoreError) {
        try writeFileAtomically(directory + "/" + name, bytes, directory: directory, sys)
    }

    /// The largest side file `readSideFile` reads by default.
    public static let maxSideFileBytes = 1 << 30

    /// The whole file `directory/name`, or nil when there is no such file.
    /// - Throws: `StoreError` `.io` when it is there but cannot be opened or read (EIO, EMFILE, ...: the file may
    ///   be fine, so a caller must not take this for damage), `.invalidArgument` when it is larger than `maxBytes`
    ///   (nothing is read).
    public func readSideFile(_ directory: String, _ name: String, maxBytes: Int = EventStore.maxSideFileBytes)
        throws(StoreError) -> [UInt8]?
    {
        let path = directory + "/" + name
        switch try readWholeFile(path, maxBytes: maxBytes, sys) {
        case .missing: return nil
        case .tooLarge(let size):
            throw StoreError(.invalidArgument, "side file is \(size) bytes, more than the \(maxBytes) this read accepts", path: path)
        case .bytes(let bytes): return bytes
        }
    }

    /// The names in `directory` (none when it cannot be listed).
    public func listSideFiles(_ directory: String) -> [String] {
        (try? sys.listDirectory(directory)) ?? []
    }

    /// Deletes `directory/name` (nothing when it is not there), then fsyncs the directory.
    public func removeSideFile(_ directory: String, _ name: String) throws(StoreError) {
        try sys.unlink(directory + "/" + name)
        try sys.syncDirectory(directory)
    }

    /// Bytes the file `directory/name` occupies on disk (allocated blocks), or nil.
    public func sideFileDiskBytes(_ directory: String, _ name: String) -> Int? {
        sys.allocatedBytes(directory + "/" + name)
    }
}
