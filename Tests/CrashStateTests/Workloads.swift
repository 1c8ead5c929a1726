import Foundation
#if canImport(Glibc)
import Glibc
#endif
@_spi(Testing) import EventStore

/// One appended batch of synthetic events (`SyntheticEvents.batch(run:batch:events:)`) and when, in the record,
/// it was begun and returned.
struct BatchRecord {
    let run: String
    let batch: Int
    let events: Int
    /// Calls recorded before the append began: a crash state taken after fewer calls cannot hold the batch.
    let begun: Int
    /// Calls recorded when the append returned (nil: it threw or never returned).
    var returned: Int?
    /// Whether returning meant durable (`always`, `batch`; never under `none`).
    var promisesDurability: Bool
    /// The segment the receipt named.
    var segment: UInt64?

    var key: String { "\(run)-\(batch)" }

    /// Whether the batch was acknowledged as durable before the crash after `calls` recorded calls.
    func acknowledged(at calls: Int) -> Bool { promisesDurability && (returned.map { $0 <= calls } ?? false) }
}

/// A recorded run of the store: where it ran, what the directory held before, every call that changed disk
/// state, and what it promised when.
struct RecordedRun {
    let name: String
    /// The recording root (absolute); the store's data directory is `root/data`.
    let root: String
    let baseline: TreeState
    var calls: [RecordedCall]
    var batches: [BatchRecord]
    /// How a crash state is opened (durability, segment capacity, compression; no retention, no background
    /// thread).
    var options: StoreOptions
    /// Crash points start here (a run that begins with a killed session explores only the session after it).
    var firstCrashPoint = 0
    /// Where recovery may find damage after a power loss in this run.
    var damage: DamagePolicy
    /// Segments already reported damaged in the state the run started from (a session after a crash).
    var knownDamage: Set<UInt64> = []
}

/// Where recovery may report damage (a gap of lost or torn frames followed by a good one; a segment cut short)
/// after a power loss. A torn tail is not damage: it is cut off and reported as truncated.
enum DamagePolicy {
    /// Nowhere: under `always` every frame is synced before the next is written, so a crash can cut only the
    /// frame being written, at the tail.
    case none
    /// In the segment that was active at the crash: under `batch` one append writes several frames before its
    /// one fdatasync, and under `none` nothing waits for a sync before the seal, so a later frame can reach the
    /// disk while an earlier one does not. Every other segment was sealed, and synced, first.
    case activeSegment
}

/// Runs the store with its system calls recorded, and keeps the ledger of batches.
final class WorkloadDriver {
    let name: String
    let root: TempDir
    let recorder = SystemCallRecorder()
    var options: StoreOptions
    private(set) var store: EventStore?
    private(set) var faults: FaultInjector?
    private(set) var batches: [BatchRecord] = []
    private let baseline: TreeState
    /// Syncs to drop (a deliberately broken store), applied to every session.
    var dropSyncs: (@Sendable (String) -> Bool)?
    var dataPath: String { root.path + "/data" }

    init(_ name: String, durability: Durability, compression: Compression = .none, maxBytes: Int? = nil) {
        self.name = name
        root = TempDir("cs-run")
        var o = StoreOptions(durability: durability, segmentCapacity: 64 << 10)
        o.compression = compression
        o.maxBytes = maxBytes
        o.backgroundMaintenance = false
        options = o
        baseline = TreeState()
    }

    /// Opens a session (a process): the store creates `root/data` on the first.
    func open() throws {
        let f = FaultInjector(recorder: recorder)
        f.dropSyncs(matching: dropSyncs)
        var o = options
        o.faults = f
        faults = f
        store = try EventStore.open(at: dataPath, options: o)
    }

    /// Appends one batch per entry of `batchNumbers` (one frame each, one durability wait); throws what the
    /// store throws, with the batches left unreturned.
    func append(_ run: String, _ batchNumbers: [Int], events: Int = 20) throws {
        let begun = recorder.count
        let first = batches.count
        for b in batchNumbers {
            batches.append(BatchRecord(
                run: run, batch: b, events: events, begun: begun, returned: nil,
                promisesDurability: options.durability != .none, segment: nil))
        }
        let receipts = try store!.append(batches: batchNumbers.map { SyntheticEvents.batch(run: run, batch: $0, events: events) })
        let returned = recorder.count
        for (i, r) in receipts.enumerated() {
            batches[first + i].returned = returned
            batches[first + i].segment = r.segment
        }
    }

    func maintain() throws { try store!.runMaintenance() }

    /// A clean close (it writes pending index files and syncs the active segment).
    func close() {
        store?.close()
        store = nil
    }

    /// Ends the session the way SIGKILL does: from now on every call fails, so closing changes nothing on disk
    /// and whatever was written but not synced stays only in the page cache (the model keeps it pending).
    func kill() {
        for c in FaultInjector.Call.allCases { faults?.fail(c, errno: EIO, times: Int.max) }
        store?.close()
        store = nil
    }

    /// Makes the `n`th fdatasync/fsync from now fail as if the process died in it (then call `kill`).
    func dieInSync(after n: Int) {
        faults?.fail(.fdatasync, errno: EIO, after: n, times: Int.max)
    }

    func finish(firstCrashPoint: Int = 0) -> RecordedRun {
        var o = options
        o.maxBytes = nil
        o.faults = nil
        return RecordedRun(
            name: name, root: root.path, baseline: baseline, calls: recorder.calls, batches: batches, options: o,
            firstCrashPoint: firstCrashPoint, damage: options.durability == .always ? .none : .activeSegment)
    }
}

/// The runs the explorer crashes. Each seals segments (64 KiB capacity, batches of about 6 KiB).
enum Workloads {
    static let names = [
        "appends-always", "appends-batch", "appends-none", "maintenance", "retention", "killed-in-seal",
        "killed-in-append", "killed-in-create", "killed-in-index", "killed-in-compacted", "killed-in-manifest",
        "killed-in-retention", "killed-in-directory-segment", "killed-in-directory-compacted",
        "killed-in-directory-manifest", "killed-in-directory-retention", "killed-in-directory-unlink",
    ]

    static func record(_ name: String, dropSyncs: (@Sendable (String) -> Bool)? = nil) throws -> (RecordedRun, WorkloadDriver) {
        let d: WorkloadDriver
        switch name {
        case "appends-always", "appends-batch", "appends-none":
            let mode: Durability = name == "appends-always" ? .always : name == "appends-batch" ? .batch : .none
            d = WorkloadDriver(name, durability: mode)
            d.dropSyncs = dropSyncs
            try d.open()
            try appendSome(d, run: "a", from: 0, count: 24)
            d.close()
            // A second session appends to the segment the first left active.
            try d.open()
            try appendSome(d, run: "b", from: 0, count: 4)
            d.close()
            return (d.finish(), d)
        case "maintenance":
            // Index files, LZ4 compaction and the manifest switch after every few batches.
            d = WorkloadDriver(name, durability: .batch, compression: .fast)
            d.dropSyncs = dropSyncs
            try d.open()
            for round in 0..<4 {
                try appendSome(d, run: "m", from: round * 8, count: 8)
                try d.maintain()
            }
            d.close()
            return (d.finish(), d)
        case "retention":
            d = WorkloadDriver(name, durability: .batch, compression: .fast, maxBytes: 90_000)
            d.dropSyncs = dropSyncs
            try d.open()
            for round in 0..<5 {
                try appendSome(d, run: "r", from: round * 8, count: 8)
                try d.maintain()
            }
            d.close()
            return (d.finish(), d)
        case _ where name.hasPrefix("killed-"):
            return try killed(name, dropSyncs: dropSyncs)
        default:
            throw ModelError("unknown workload \(name)")
        }
    }

    /// `count` batches of run `run`, numbered from `from`; every fifth call appends two batches at once (two
    /// frames, one durability wait).
    static func appendSome(_ d: WorkloadDriver, run: String, from: Int, count: Int) throws {
        var b = from
        while b < from + count {
            if (b - from) % 5 == 4, b + 1 < from + count {
                try d.append(run, [b, b + 1])
                b += 2
            } else {
                try d.append(run, [b])
                b += 1
            }
        }
    }

    /// A session killed (SIGKILL) inside one of its fdatasync/fsync calls, then a second session that recovers
    /// from what the page cache held, appends, maintains and applies retention. Crash points are the second
    /// session's: what the first left unsynced is still pending in the model, so a power loss in the second
    /// session can lose it. `killed-in-KIND` dies in the first sync of that kind (`syncKinds`) of the first
    /// session; `killed-at-sync-N` in its Nth sync.
    static func killed(_ name: String, dropSyncs: (@Sendable (String) -> Bool)?) throws -> (RecordedRun, WorkloadDriver) {
        // A dry run of the first session finds which sync to die in.
        let dry = WorkloadDriver(name + "-dry", durability: .batch, compression: .fast, maxBytes: 120_000)
        try dry.open()
        let opened = dry.recorder.count  // syncs are counted from here, as `dieInSync` counts them
        try firstSession(dry)
        dry.close()
        let kinds = syncKinds(dry.recorder.calls, from: opened)
        let target: Int?
        if name.hasPrefix("killed-at-sync-") {
            target = Int(name.dropFirst("killed-at-sync-".count)).flatMap { $0 < kinds.count ? $0 : nil }
        } else {
            let kind = String(name.dropFirst("killed-in-".count))
            // An append's sync late enough that the first session has sealed and compacted something.
            let skip = kind == "append" ? 12 : 0
            target = kinds.indices.filter { kinds[$0] == kind }.dropFirst(skip).first
        }
        guard let target else { throw ModelError("\(name): the dry run has no such sync to die in (\(kinds))") }

        let d = WorkloadDriver(name, durability: .batch, compression: .fast, maxBytes: 120_000)
        d.dropSyncs = dropSyncs
        try d.open()
        d.dieInSync(after: target)
        do { try firstSession(d) } catch {}
        d.kill()
        let second = d.recorder.count
        try d.open()
        for round in 0..<2 {
            try appendSome(d, run: "s", from: round * 8, count: 8)
            try d.maintain()
        }
        d.close()
        return (d.finish(firstCrashPoint: second), d)
    }

    /// How many syncs the first session of a killed workload makes (after its open).
    static func firstSessionSyncs() throws -> Int {
        let dry = WorkloadDriver("count-dry", durability: .batch, compression: .fast, maxBytes: 120_000)
        try dry.open()
        let opened = dry.recorder.count
        try firstSession(dry)
        dry.close()
        return syncKinds(dry.recorder.calls, from: opened).count
    }

    private static func firstSession(_ d: WorkloadDriver) throws {
        for round in 0..<3 {
            try appendSome(d, run: "k", from: round * 10, count: 10)
            try d.maintain()
        }
    }

    /// What each sync in `calls` from position `from` on makes durable: `seal` (a seal frame), `append` (a batch
    /// frame), `create` (a new segment's header), `index`, `compacted` (a compacted segment), `manifest`
    /// (compaction's switch), `retention` (retention's manifest), `directory` (a directory's entries), `other`.
    static func syncKinds(_ calls: [RecordedCall], from: Int) -> [String] {
        var paths: [Int32: String] = [:]
        var lastWrite: [Int32: [UInt8]] = [:]
        var deleted = 0
        var retention = false
        var kinds: [String] = []
        var lastRename = "unlink"
        for (i, call) in calls.enumerated() {
            if i < from, case .sync = call { continue }
            switch call {
            case .open(let path, _, let fd): paths[fd] = path
            case .rename(let from, let to):
                for (fd, p) in paths where p == from { paths[fd] = to }
                lastRename =
                    to.hasSuffix(".sgs") ? "segment" : to.hasSuffix(".sgi") ? "index" : to.hasSuffix(".sgc") ? "compacted"
                    : retention ? "retention" : "manifest"
            case .write(let fd, _, let bytes): lastWrite[fd] = bytes
            case .sync(let fd, _):
                let path = paths[fd] ?? ""
                let written = lastWrite[fd] ?? []
                lastWrite[fd] = nil
                if path.hasSuffix(".sgs") {
                    kinds.append(isSealFrame(written) ? "seal" : "append")
                } else if path.hasSuffix(".sgs.tmp") {
                    kinds.append("create")
                } else if path.hasSuffix(".sgi.tmp") {
                    kinds.append("index")
                } else if path.hasSuffix(".sgc.tmp") {
                    kinds.append("compacted")
                } else if path.hasSuffix("MANIFEST.tmp") {
                    let text = String(decoding: written, as: UTF8.self)
                    let line = text.split(separator: "\n").first { $0.hasPrefix("retention-deleted-segments ") }
                    let now = line.flatMap { Int($0.split(separator: " ").last ?? "") } ?? 0
                    retention = now > deleted
                    kinds.append(retention ? "retention" : "manifest")
                    deleted = now
                } else if path.hasSuffix("/data") {
                    // Named by what it makes durable: the last rename since the previous one, else unlinks.
                    kinds.append("directory-" + lastRename)
                    lastRename = "unlink"
                } else {
                    kinds.append("other")
                }
            default: break
            }
        }
        return kinds
    }

    /// Whether `bytes` are a seal frame (kind 2) as written.
    static func isSealFrame(_ bytes: [UInt8]) -> Bool {
        guard bytes.count >= 32 else { return false }
        let magic = UInt32(bytes[0]) | UInt32(bytes[1]) << 8 | UInt32(bytes[2]) << 16 | UInt32(bytes[3]) << 24
        return magic == 0x5247_4653 && bytes[20] == 2 && bytes[21] == 0
    }
}
