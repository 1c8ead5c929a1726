// Over 400 lines: keeping, checkpointing, rebuilding and time travel share the keeper's lock and queues.
import Dispatch
import EventStore
import GridEvents

/// Keeps the grid state (`GridFold`) current as events are stored, writes checkpoints of it beside the store
/// (`DIR/gridstate/`), rebuilds it on open from the newest checkpoint plus the events stored after it, and answers
/// the state as of any past moment from the nearest checkpoint at or before it.
///
/// The owner must hand every event it stores to `observe` (or `enqueue`) once, in the order they were stored,
/// leaving out events the store ignored as duplicates (see `GridFold` for why). The daemon's single writer does,
/// through `enqueue`, so folding is off its path.
///
/// Retention: the state remembers what it has folded. Deleting old segments does not change the current state
/// (an agent that registered before the retention horizon keeps its host); a moment whose events retention has
/// deleted cannot be travelled to (`GridStateError.historyDeleted`).
public final class GridStateKeeper: @unchecked Sendable {
    public struct Options: Sendable {
        /// Grid events folded between two checkpoints. Time travel reads at most about this many events after
        /// its checkpoint; each checkpoint costs about 40 bytes per node and agent on disk.
        public var interval = 10_000
        /// Disk budget of all checkpoint files; past it the checkpoint whose loss leaves the smallest gap in time
        /// is deleted (never the newest or the oldest), so checkpoints thin out evenly.
        public var maxBytes = 512 << 20
        /// Write checkpoints on a background queue (the daemon); false writes them inside `observe` (tests).
        public var writeInBackground = true
        /// Receives one-line notices (checkpoint used, damaged or ahead of the store, full replay, write failures).
        public var onNotice: (@Sendable (String) -> Void)?

        public init(interval: Int = 10_000, maxBytes: Int = 512 << 20) {
            self.interval = interval
            self.maxBytes = maxBytes
        }
    }

    /// What opening found and did.
    public struct OpenReport: Sendable {
        /// The checkpoint the state was rebuilt from (nil: a full replay).
        public var checkpoint: String?
        /// Events read after it (or by the full replay).
        public var eventsRead = 0
        /// Checkpoints not used (damaged, ahead of the store), with the reason.
        public var rejected: [String] = []
        public var seconds = 0.0
    }

    /// One checkpoint file on disk.
    struct Entry: Equatable {
        var name: String
        var asOf: Int64
        var storedThrough: UInt64
        var firstLocation: UInt64
        var complete: Bool
        var bytes: Int

        func usable(first: UInt64) -> Bool {
            GridCheckpoint.usable(storedThrough: storedThrough, firstLocation: firstLocation, complete: complete, first: first)
        }
    }

    public let store: EventStore
    public let options: Options
    public let directory: String
    public private(set) var openReport = OpenReport()

    private let lock = ConditionLock()
    private var fold = GridFold()
    /// The newest timestamp folded (`Int64.min`: none).
    private var newest: Int64 = .min
    private var sinceCheckpoint = 0
    /// The newest checkpoint taken (or found on open): once retention deletes past it, time travel and a restart
    /// after a crash could not use it, so the next grid events folded take a new one at once.
    private var lastTaken: (storedThrough: UInt64, firstLocation: UInt64, complete: Bool)?
    private var entries: [Entry] = []
    private var cache: [(name: String, checkpoint: GridCheckpoint)] = []
    private var answer: (version: UInt64, states: (agents: [AgentState], nodes: [NodeState]))?
    private var version: UInt64 = 0
    private let writes = DispatchQueue(label: "grid-state-checkpoints")
    /// Where events handed over by `enqueue` are folded, in order.
    private let folding = DispatchQueue(label: "grid-state-fold")
    private var closed = false

    public static let directoryName = "gridstate"
    static let types = GridFold.typeCodes

    private init(store: EventStore, options: Options, directory: String) {
        self.store = store
        self.options = options
        self.directory = directory
    }

    // MARK: Opening

    /// Rebuilds the state of `store`: from the newest usable checkpoint plus every grid event stored after it,
    /// or, when there is none, by a full replay (which writes checkpoints as it goes). A damaged checkpoint (it
    /// does not decode or fails its checksum), or one that counts frames the store no longer has (a crash under
    /// `--sync none` cut them), is reported and deleted, and the next older one is tried. One the file system
    /// would not read (an I/O error, too many open files) may be whole: it is reported and skipped, not deleted.
    /// - Throws: nothing today (`StoreError` is kept for the signature's sake: reading never fails the open).
    /// - Complexity: the events stored after the checkpoint used (all grid events on a full replay).
    public static func open(_ store: EventStore, options: Options = Options()) throws(StoreError) -> GridStateKeeper {
        let started = GridClock.nowMicros()
        // Created with the first checkpoint (opening a store writes nothing here).
        let keeper = GridStateKeeper(store: store, options: options, directory: store.directory + "/" + directoryName)
        keeper.load()
        keeper.openReport.seconds = Double(GridClock.nowMicros() - started) / 1e6
        return keeper
    }

    private func notice(_ s: String) { options.onNotice?("grid state: " + s) }

    private func load() {
        var found: [Entry] = []
        for name in store.listSideFiles(directory) {
            if name.hasSuffix(".tmp") {
                try? store.removeSideFile(directory, name)
                continue
            }
            guard let n = GridCheckpoint.parseName(name) else { continue }
            found.append(Entry(name: name, asOf: n.asOf, storedThrough: n.storedThrough, firstLocation: n.firstLocation,
                               complete: n.complete, bytes: store.sideFileDiskBytes(directory, name) ?? 0))
        }
        found.sort { ($0.asOf, $0.storedThrough) < ($1.asOf, $1.storedThrough) }
        let bounds = store.logBounds
        var report = OpenReport()
        var base: GridCheckpoint?
        // Newest first: the first that reads back whole and does not count more than the store holds.
        for entry in found.reversed() where base == nil {
            var reason: String?
            let read: [UInt8]?
            do throws(StoreError) {
                read = try store.readSideFile(directory, entry.name)
            } catch {
                let why = "cannot be read now (\(error))"
                report.rejected.append("\(entry.name): \(why)")
                notice("checkpoint \(entry.name) not used, \(why); kept, trying an older one")
                continue
            }
            if let bytes = read {
                do throws(GridCheckpoint.Problem) {
                    let cp = try GridCheckpoint.decode(bytes)
                    if cp.fileName != entry.name {
                        reason = "its header does not match its name"
                    } else if cp.storedThrough > bounds.end || cp.lastSequence > bounds.lastSequence {
                        reason = "it counts events the store no longer has (sequence \(cp.lastSequence), the store's is \(bounds.lastSequence))"
                    } else {
                        base = cp
                        report.checkpoint = entry.name
                    }
                } catch {
                    reason = error.description
                }
            } else {
                reason = "was deleted while opening"
            }
            if let reason {
                report.rejected.append("\(entry.name): \(reason)")
                notice("checkpoint \(entry.name) not used, \(reason); deleted, trying an older one")
                try? store.removeSideFile(directory, entry.name)
                found.removeAll { $0 == entry }
            }
        }
        entries = found
        if let base {
            if base.storedThrough < bounds.first {
                notice("retention deleted events stored after checkpoint \(report.checkpoint!) before they were folded; they are missing from the state")
            }
            fold = base.fold
            newest = base.asOf
            report.eventsRead = Self.extend(&fold, from: base, through: .max, store: store) { newest = max(newest, $0) }
            sinceCheckpoint = report.eventsRead
            notice("rebuilt from checkpoint \(base.fold.agents.count) agents, \(base.fold.nodes.count) nodes as of \(TimeText.format(base.asOf)) plus \(report.eventsRead) events stored after it")
        } else {
            if bounds.first > 1 << 32 {
                notice("no usable checkpoint: replaying the events retention has left (older history is gone)")
            } else if !found.isEmpty || !report.rejected.isEmpty {
                notice("no usable checkpoint: replaying every stored event")
            }
            replayAll(&report, bounds: bounds)
        }
        openReport = report
        pruneLocked(first: bounds.first)
        if lastTaken == nil, let e = entries.last { lastTaken = (e.storedThrough, e.firstLocation, e.complete) }
    }

    /// Folds every stored grid event in position order, writing a checkpoint each `interval` events (at a
    /// timestamp boundary, so each holds every event up to its moment).
    private func replayAll(_ report: inout OpenReport, bounds: (first: UInt64, end: UInt64, lastSequence: UInt64)) {
        let sources = Self.types.sorted().map { ReadSource.type($0) }
        store.read(sources, ReadBounds(newestFirst: false), types: Self.types) { stored in
            if sinceCheckpoint >= options.interval, stored.timestamp > newest {
                // Inside the store's read: nothing here may call back into the store's lock.
                writeCheckpoint(GridCheckpoint(asOf: newest, storedThrough: bounds.end, lastSequence: bounds.lastSequence,
                                               firstLocation: bounds.first, complete: false, fold: fold),
                                first: bounds.first)
                lastTaken = (bounds.end, bounds.first, false)
                sinceCheckpoint = 0
            }
            report.eventsRead += 1
            sinceCheckpoint += 1
            if let e = try? GridEvent(stored: stored) { apply(e) }
            return true
        }
    }

    @inline(__always) private func apply(_ e: GridEvent) {
        fold.apply(e)
        if e.timestamp > newest { newest = e.timestamp }
    }

    // MARK: Folding as events arrive

    /// Folds events just stored, in the order they were stored (duplicates the store ignored left out), and
    /// writes a checkpoint every `interval` grid events. O(events). The store must not have stored anything
    /// since (its `logBounds` now are what a checkpoint records); a writer that goes on appending uses `enqueue`.
    public func observe(_ events: some Sequence<GridEvent>) {
        observe(events, bounds: nil)
    }

    /// Hands events just stored to the keeper's own thread, with the store's `logBounds` right after storing them
    /// (what a checkpoint taken there records), and returns at once: the writer does not wait for the fold. Every
    /// read (`states`, `states(at:)`, `currentFold`) first waits for what was handed over before it began, so an
    /// event acknowledged before a request is in its answer.
    public func enqueue(_ events: [GridEvent], bounds: (first: UInt64, end: UInt64, lastSequence: UInt64)) {
        guard events.contains(where: { GridFold.folds($0.type) }) else { return }
        folding.async { self.observe(events, bounds: bounds) }
    }

    /// Waits until everything handed to `enqueue` so far is folded.
    public func settle() { folding.sync {} }

    private func observe(_ events: some Sequence<GridEvent>, bounds given: (first: UInt64, end: UInt64, lastSequence: UInt64)?) {
        var checkpoint: GridCheckpoint?
        lock.withLock {
            if closed { return }
            var n = 0
            for e in events where GridFold.folds(e.type) {
                apply(e)
                n += 1
            }
            if n == 0 { return }
            version &+= 1
            sinceCheckpoint += n
            let b = given ?? store.logBounds
            let overtaken = lastTaken.map {
                !GridCheckpoint.usable(storedThrough: $0.storedThrough, firstLocation: $0.firstLocation,
                                       complete: $0.complete, first: b.first)
            } ?? false
            if sinceCheckpoint >= options.interval || overtaken {
                checkpoint = GridCheckpoint(asOf: newest, storedThrough: b.end, lastSequence: b.lastSequence,
                                            firstLocation: b.first, complete: true, fold: fold)
                lastTaken = (b.end, b.first, true)
                sinceCheckpoint = 0
            }
        }
        if let checkpoint { write(checkpoint) }
    }

    /// Writes a checkpoint of the current state now (the daemon does at shutdown, so a restart reads nothing
    /// after it), and waits for every checkpoint write to finish.
    public func checkpointNow() {
        settle()
        let cp: GridCheckpoint? = lock.withLock {
            guard !closed, sinceCheckpoint > 0 || entries.isEmpty, newest > .min else { return nil }
            let b = store.logBounds
            sinceCheckpoint = 0
            lastTaken = (b.end, b.first, true)
            return GridCheckpoint(asOf: newest, storedThrough: b.end, lastSequence: b.lastSequence, firstLocation: b.first,
                                  complete: true, fold: fold)
        }
        if let cp { write(cp) }
        writes.sync {}
    }

    /// Writes a last checkpoint and stops taking events. Call before closing the store.
    public func close() {
        checkpointNow()
        lock.withLock { closed = true }
    }

    private func write(_ cp: GridCheckpoint) {
        if options.writeInBackground {
            writes.async { self.writeCheckpoint(cp, first: self.store.logBounds.first) }
        } else {
            writeCheckpoint(cp, first: store.logBounds.first)
        }
    }

    /// Encodes and writes one checkpoint atomically, then prunes (`first`: the store's `logBounds.first`). A
    /// failure is reported; the state goes on. Takes no store lock.
    private func writeCheckpoint(_ cp: GridCheckpoint, first: UInt64) {
        let bytes = cp.encode()
        do throws(StoreError) {
            _ = try store.sideDirectory(Self.directoryName)
            try store.writeSideFile(directory, cp.fileName, bytes)
        } catch {
            notice("checkpoint \(cp.fileName) not written: \(error)")
            return
        }
        lock.withLock {
            let entry = Entry(name: cp.fileName, asOf: cp.asOf, storedThrough: cp.storedThrough,
                              firstLocation: cp.firstLocation, complete: cp.complete,
                              bytes: store.sideFileDiskBytes(directory, cp.fileName) ?? bytes.count)
            entries.removeAll { $0.name == entry.name }
            let at = entries.firstIndex { ($0.asOf, $0.storedThrough) > (entry.asOf, entry.storedThrough) } ?? entries.count
            entries.insert(entry, at: at)
            pruneLocked(first: first)
        }
    }

    /// Deletes checkpoints that cannot be used any more (retention deleted events stored after them; the newest is
    /// kept), then thins the rest to the byte budget: the one whose loss leaves the smallest gap in time goes first.
    private func pruneLocked(first: UInt64) {
        var doomed: [Entry] = []
        var k = 0
        while k < entries.count - 1 {
            if entries[k].usable(first: first) {
                k += 1
            } else {
                doomed.append(entries.remove(at: k))
            }
        }
        var total = entries.reduce(0) { $0 + $1.bytes }
        while total > options.maxBytes, entries.count > 1 {
            var victim = 0
            if entries.count > 2 {
                var best = Int64.max
                for i in 1..<(entries.count - 1) {
                    let gap = entries[i + 1].asOf &- entries[i - 1].asOf
                    if gap < best {
                        best = gap
                        victim = i
                    }
                }
            }
            total -= entries[victim].bytes
            doomed.append(entries.remove(at: victim))
        }
        for e in doomed {
            try? store.removeSideFile(directory, e.name)
            cache.removeAll { $0.name == e.name }
        }
    }

    // MARK: Reading

    /// The current state: every listed agent with its nodes, and every listed node. O(agents + nodes), cached
    /// until the next event is folded.
    public func states() -> (agents: [AgentState], nodes: [NodeState]) {
        settle()
        return lock.withLock {
            if let answer, answer.version == version { return answer.states }
            let s = fold.states()
            answer = (version, s)
            return s
        }
    }

    /// The fold itself (tests compare it field by field).
    public var currentFold: GridFold {
        settle()
        return lock.withLock { fold }
    }

    /// The checkpoints on disk, oldest first: name, moment, bytes on disk, and whether time travel can start
    /// from it (retention has not deleted events it needs).
    public var checkpoints: [(name: String, asOf: Int64, bytes: Int, usable: Bool)] {
        let first = store.logBounds.first
        return lock.withLock { entries.map { ($0.name, $0.asOf, $0.bytes, $0.usable(first: first)) } }
    }

    /// The state as of `moment`: the fold of every stored event with a timestamp at or before it (late arrivals
    /// included), built from the newest checkpoint at or before it, the events stored after that checkpoint with
    /// timestamps at or before the checkpoint's moment, and the events with timestamps between the checkpoint's
    /// moment and `moment`.
    /// - Throws: `GridStateError.historyDeleted` when retention deleted events that moment needs.
    /// - Complexity: O(agents + nodes) to read the checkpoint, plus the grid events read (about `interval`).
    public func states(at moment: Int64) throws(GridStateError) -> (agents: [AgentState], nodes: [NodeState]) {
        settle()
        let first = store.logBounds.first
        // Decided and read under one hold of the lock: between the two, the fold thread could fold an event
        // newer than `moment` into the live state.
        typealias Answer = (agents: [AgentState], nodes: [NodeState])
        let (live, entry) = lock.withLock { () -> (Answer?, Entry?) in
            guard moment < newest else {
                if let answer, answer.version == version { return (answer.states, nil) }
                let s = fold.states()
                answer = (version, s)
                return (s, nil)
            }
            return (nil, entries.last { $0.asOf <= moment && $0.usable(first: first) })
        }
        if let live { return live }
        if let entry {
            guard let cp = loadCheckpoint(entry) else { return try states(at: moment) }  // deleted meanwhile: pick again
            var f = cp.fold
            Self.extend(&f, from: cp, through: moment, store: store)
            return f.states()
        }
        if first > 1 << 32 {
            let oldest = lock.withLock { entries.first { $0.usable(first: first) }?.asOf }
            throw GridStateError.historyDeleted(oldest: oldest)
        }
        // Before the first checkpoint, with nothing deleted: a replay of the events up to the moment.
        return GridFold.replay(store, through: moment).states()
    }

    /// Brings a checkpoint's fold to `moment`: the events stored at or after its `storedThrough` with timestamps
    /// at or before its moment (late arrivals), then every event with a timestamp after its moment up to
    /// `moment`, each oldest position first. The two sets do not overlap and neither holds an event the checkpoint
    /// holds. Returns the number of grid events read; `saw` gets each one's timestamp.
    @discardableResult
    static func extend(_ f: inout GridFold, from cp: GridCheckpoint, through moment: Int64, store: EventStore,
                       saw: (Int64) -> Void = { _ in }) -> Int {
        var n = 0
        let asOf = cp.asOf
        store.read(storedFrom: cp.storedThrough, types: types, in: Int64.min..<(asOf == .max ? .max : asOf + 1)) { stored in
            n += 1
            if let e = try? GridEvent(stored: stored) {
                f.apply(e)
                saw(e.timestamp)
            }
            return true
        }
        guard asOf < moment else { return n }
        store.read(types.sorted().map { ReadSource.type($0) },
                   ReadBounds(range: (asOf + 1)..<(moment == .max ? .max : moment + 1), newestFirst: false),
                   types: types) { stored in
            n += 1
            if let e = try? GridEvent(stored: stored) {
                f.apply(e)
                saw(e.timestamp)
            }
            return true
        }
        return n
    }

    /// A checkpoint from the small cache of decoded ones, or read from disk; nil when it is gone, damaged or cannot
    /// be read now (then it is dropped from the list; the file itself is left alone, and the next open tries it
    /// again).
    private func loadCheckpoint(_ entry: Entry) -> GridCheckpoint? {
        if let hit = lock.withLock({ cache.first { $0.name == entry.name }?.checkpoint }) { return hit }
        var problem = "is gone"
        let read: [UInt8]?
        do throws(StoreError) {
            read = try store.readSideFile(directory, entry.name)
        } catch {
            read = nil
            problem = "cannot be read now (\(error))"
        }
        if let bytes = read {
            do throws(GridCheckpoint.Problem) {
                let cp = try GridCheckpoint.decode(bytes)
                lock.withLock {
                    cache.append((entry.name, cp))
                    if cache.count > 4 { cache.removeFirst() }
                }
                return cp
            } catch {
                problem = error.description
            }
        }
        notice("checkpoint \(entry.name) \(problem); not used")
        lock.withLock { entries.removeAll { $0.name == entry.name } }
        return nil
    }
}

/// Why the grid state as of a moment cannot be given.
public enum GridStateError: Error, Sendable, Equatable, CustomStringConvertible {
    /// Retention deleted events that moment needs; `oldest` is the earliest moment still answerable (nil: only
    /// the present).
    case historyDeleted(oldest: Int64?)

    public var description: String {
        switch self {
        case .historyDeleted(let oldest):
            let from = oldest.map { "the oldest moment still answerable is \(TimeText.format($0))" } ?? "only the present state is known"
            return "retention deleted the events of that moment; \(from)"
        }
    }
}
