import Foundation
#if canImport(Glibc)
import Glibc
#endif
@_spi(Testing) import EventStore
import Synchronization

/// Crashes a recorded run at sampled points, builds the states a power loss could leave there
/// (`FileSystemModel.crashState`), opens each and checks the store's promises (`check`). Deterministic for a
/// seed. See docs/FORMAT.md ("Crash model") for what is modelled.
final class CrashExplorer {
    struct Config {
        var seed: UInt64
        /// Distinct states to check per run (crash points are sampled to fit).
        var statesPerRun: Int
        /// Random states per crash point, besides "only what was synced" and "everything written".
        var randomPerPoint = 2
        /// Every this many checked states, the session that opened the state (recovery, an append,
        /// maintenance, close) is itself recorded and crashed at `nestedPoints` points (0: never).
        var nestedEvery = 0
        var nestedPoints = 4
        /// Stop when the monotonic clock passes this (nanoseconds; nil: no limit).
        var deadline: UInt64?
    }

    struct Failure: CustomStringConvertible {
        let run: String
        let crashPoint: Int
        let calls: Int
        let lastCall: String
        let choice: String
        let problems: [String]
        var description: String {
            "\(run): crash after call \(crashPoint) of \(calls) (\(lastCall)), state \(choice): " + problems.joined(separator: "; ")
        }
    }

    var config: Config
    private var rng: SplitMix64
    private(set) var statesChecked = 0
    private(set) var nestedStatesChecked = 0
    private(set) var crashPoints = 0
    private var nestedDepth = 0
    /// States already checked, per run (a state is the same check only with the same promises: the digest is
    /// kept with the counts of acknowledged and begun batches).
    private var seen: [String: Set<[Int]>] = [:]
    private(set) var duplicates = 0
    private(set) var failures: [Failure] = []

    init(_ config: Config) {
        self.config = config
        rng = SplitMix64(seed: config.seed)
    }

    var timeIsUp: Bool { config.deadline.map { monotonicNanos() > $0 } ?? false }

    /// Explores `run`: crash points from `run.firstCrashPoint` to the end, sampled to fit the budget.
    func explore(_ run: RecordedRun, budget: Int? = nil, nested: Bool = true) {
        let budget = budget ?? config.statesPerRun
        let model = FileSystemModel(root: run.root, baseline: run.baseline)
        let total = run.calls.count
        let candidates = Array(run.firstCrashPoint...total)
        let perPoint = 2 + config.randomPerPoint
        var points = candidates
        if candidates.count * perPoint > budget * 2 {
            // Sample crash points (deterministically for the seed); identical states are skipped below, so
            // about twice the budget in points keeps the distinct states near it.
            var pool = candidates
            points = []
            for _ in 0..<max(1, budget * 2 / perPoint) where !pool.isEmpty {
                points.append(pool.remove(at: Int(rng.next() % UInt64(pool.count))))
            }
            points.sort()
        }
        var seen = self.seen[run.name] ?? []
        defer { self.seen[run.name] = seen }
        var applied = 0
        var paths: [Int32: String] = [:]
        var checkedHere = 0
        for k in points {
            do {
                while applied < k {
                    let call = run.calls[applied]
                    if case .open(let path, _, let fd) = call { paths[fd] = path }
                    if case .rename(let from, let to) = call { for (fd, p) in paths where p == from { paths[fd] = to } }
                    try model.replay(call)
                    applied += 1
                }
            } catch {
                failures.append(Failure(
                    run: run.name, crashPoint: applied, calls: total, lastCall: describe(run.calls[applied], paths),
                    choice: "-", problems: ["the model cannot replay the record: \(error)"]))
                return
            }
            if nestedDepth == 0 { crashPoints += 1 }
            var choices: [CrashChoice] = [.durableOnly]
            if model.hasPending {
                choices.append(.everything)
                for _ in 0..<config.randomPerPoint { choices.append(.random(rng.next())) }
            }
            let ledger = [run.batches.filter { $0.acknowledged(at: k) }.count, run.batches.filter { $0.begun < k }.count]
            for choice in choices {
                let state = model.crashState(choice)
                guard seen.insert([state.digest] + ledger).inserted else {
                    duplicates += 1
                    continue
                }
                statesChecked += 1
                checkedHere += 1
                let nestedHere = nested && config.nestedEvery > 0 && statesChecked % config.nestedEvery == 0
                let problems = check(state, run, at: k, nested: nestedHere)
                if !problems.isEmpty {
                    failures.append(Failure(
                        run: run.name, crashPoint: k, calls: total,
                        lastCall: k == 0 ? "before any call" : describe(run.calls[k - 1], paths), choice: "\(choice)",
                        problems: problems))
                }
                if checkedHere >= budget || timeIsUp { return }
            }
        }
    }

    /// The problems of one crash state: materialized in a fresh directory, opened read-only and writable,
    /// appended to, maintained, closed, reopened and verified.
    func check(_ state: TreeState, _ run: RecordedRun, at k: Int, nested: Bool = false) -> [String] {
        var problems: [String] = []
        let dir = TempDir("cs-state")
        do {
            try state.write(to: dir.path)
        } catch {
            return ["could not materialize the state: \(error)"]
        }
        let data = dir.path + "/data"
        let acked = run.batches.filter { $0.acknowledged(at: k) }
        var byKey: [String: BatchRecord] = [:]
        for b in run.batches { byKey[b.key] = b }
        guard state.directories.contains("data") else {
            if !acked.isEmpty {
                problems.append("the data directory did not survive: \(acked.count) acknowledged batch(es) lost")
            }
            return problems
        }

        // The manifest as the crash left it: written atomically, so never damaged; its first segment says
        // which acknowledged batches retention may have deleted.
        var firstSegment: UInt64 = 0
        do {
            if let m = try SegmentInspector.inspectManifest(in: data) {
                if let p = m.problem { problems.append("the crash left a damaged manifest (\(p))") }
                firstSegment = m.firstSegment
            }
        } catch {
            problems.append("manifest unreadable: \(error)")
        }

        // 1. Read-only: writes nothing, and serves what the writable open serves.
        let readOnlyCalls = SystemCallRecorder()
        var ro = run.options
        ro.readOnly = true
        ro.faults = FaultInjector(recorder: readOnlyCalls)
        var readOnlyIds: Set<String>?
        do {
            let s = try EventStore.open(at: data, options: ro)
            let served = Served(s)
            problems += served.problems.map { "read-only: " + $0 }
            readOnlyIds = Set(served.ids)
            s.close()
        } catch {
            problems.append("read-only open failed: \(error)")
        }
        let writes = readOnlyCalls.calls.filter(changesDisk)
        if !writes.isEmpty { problems.append("the read-only open changed the disk: \(writes.prefix(3))") }

        // 2. Recovery.
        let recoveryCalls = SystemCallRecorder()
        var rw = run.options
        rw.faults = FaultInjector(recorder: recoveryCalls)
        let store: EventStore
        do {
            store = try EventStore.open(at: data, options: rw)
        } catch {
            return problems + ["open failed: \(error)"]
        }
        let report = store.recovery
        let first = Served(store)
        problems += first.problems
        for b in acked {
            let n = first.perBatch[b.key]
            if let s = b.segment, s < firstSegment { continue }  // retention deleted its segment (checked below)
            if n != b.events {
                problems.append(
                    "acknowledged batch \(b.key) (segment \(b.segment.map(String.init) ?? "?"), acknowledged after call \(b.returned!)) has \(n ?? 0) of \(b.events) events")
            }
        }
        for (key, n) in first.perBatch.sorted(by: { $0.key < $1.key }) {
            guard let b = byKey[key] else {
                problems.append("batch \(key) is served but was never written")
                continue
            }
            if b.begun == Int.max {
                problems.append("batch \(key) is served, though the state this session started from did not serve it")
            } else if b.begun >= k {
                problems.append("batch \(key) is served but its append began after the crash point")
            }
            if n != b.events { problems.append("batch \(key) is served in part (\(n) of \(b.events) events)") }
            if let s = b.segment, s < firstSegment {
                problems.append("batch \(key) is served from segment \(s), below the manifest's first segment \(firstSegment)")
            }
        }
        let damagedSegments = Set(report.skipped.map(\.segment) + report.unreadableSegments.map(\.segment))
        var allowed = run.knownDamage
        if run.damage == .activeSegment, let last = state.lastSegment { allowed.insert(last) }
        let unexpected = damagedSegments.subtracting(allowed).sorted()
        if !unexpected.isEmpty || !report.unreadableSegments.isEmpty {
            problems.append(
                "recovery reports damage in segment(s) \(unexpected) that a power loss cannot damage (\(run.damage)): \(report.summary)")
        }
        if let readOnlyIds, readOnlyIds != Set(first.ids) {
            problems.append(
                "the read-only open serves \(readOnlyIds.count) events, the writable one \(first.ids.count) (\(readOnlyIds.symmetricDifference(first.ids).sorted().prefix(3)))")
        }
        // The id index finds what the scan serves.
        for b in acked where first.perBatch[b.key] != nil {
            for i in [0, b.events - 1] {
                let id = SyntheticEvents.id(run: b.run, batch: b.batch, index: i)
                guard let e = store.event(id: id) else {
                    problems.append("\(id) is served by a scan but not found by its id")
                    continue
                }
                if let p = Served.check(e) { problems.append("lookup: \(p)") }
            }
        }

        // 3. The recovered store takes appends and maintenance, and closes.
        // A session after a crash appends batch "post-N" (N: how many such sessions came before).
        let postBatch = run.batches.filter { $0.run == "post" }.count
        let postBegun = recoveryCalls.count
        var postSegment: UInt64?
        do {
            postSegment = try store.append(SyntheticEvents.batch(run: "post", batch: postBatch, events: 10)).segment
        } catch {
            problems.append("append after recovery failed: \(error)")
        }
        let postReturned = recoveryCalls.count
        if run.options.compression != .none {
            do { try store.runMaintenance() } catch { problems.append("maintenance after recovery failed: \(error)") }
        }
        store.close()

        // 4. It reopens with what it served, plus the new batch, and nothing more to repair.
        do {
            var plain = run.options
            plain.faults = nil
            let again = try EventStore.open(at: data, options: plain)
            let second = Served(again)
            problems += second.problems.map { "after reopening: " + $0 }
            var expected = Set(first.ids)
            if postSegment != nil { for i in 0..<10 { expected.insert(SyntheticEvents.id(run: "post", batch: postBatch, index: i)) } }
            if Set(second.ids) != expected {
                problems.append(
                    "after reopening, \(second.ids.count) events are served, \(expected.count) expected (\(expected.symmetricDifference(second.ids).sorted().prefix(3)))")
            }
            if !again.recovery.truncated.isEmpty { problems.append("reopening truncated again: \(again.recovery.summary)") }
            if again.recovery.skipped.count > report.skipped.count {
                problems.append("reopening found new damage: \(again.recovery.summary)")
            }
            again.close()
        } catch {
            problems.append("reopening failed: \(error)")
        }

        // 5. The directory verifies as `segdump --verify` does.
        // Damage found here must be damage that recovery reported (and did not serve).
        problems += verify(data, allowDamageIn: damagedSegments)

        // 6. Power loss during that session too: its record is explored like any run, from this state.
        if nested, problems.isEmpty {
            // What this state served was on disk when the session began: durable, whatever the mode promised.
            // What it did not serve is gone for good and must never come back.
            var batches = run.batches.filter { first.perBatch[$0.key] != nil }.map { b in
                BatchRecord(
                    run: b.run, batch: b.batch, events: b.events, begun: -1, returned: 0, promisesDurability: true,
                    segment: b.segment)
            }
            batches += run.batches.filter { first.perBatch[$0.key] == nil }.map { b in
                BatchRecord(
                    run: b.run, batch: b.batch, events: b.events, begun: Int.max, returned: nil,
                    promisesDurability: false, segment: b.segment)
            }
            if postSegment != nil {
                batches.append(BatchRecord(
                    run: "post", batch: postBatch, events: 10, begun: postBegun, returned: postReturned,
                    promisesDurability: run.options.durability != .none, segment: postSegment))
            }
            let session = RecordedRun(
                name: "\(run.name) / after call \(k)", root: dir.path, baseline: state, calls: recoveryCalls.calls,
                batches: batches, options: run.options, firstCrashPoint: 0,
                damage: run.damage, knownDamage: run.knownDamage.union(damagedSegments))
            let before = (statesChecked, failures.count)
            nestedDepth += 1
            explore(session, budget: config.nestedPoints, nested: false)
            nestedDepth -= 1
            nestedStatesChecked += statesChecked - before.0
            statesChecked = before.0
            if failures.count > before.1 { problems.append("a crash in the session after this state failed (below)") }
        }
        return problems
    }

    /// What `segdump --verify` finds wrong in `data` (every frame, block, index file and the manifest), except
    /// damage in the segments listed.
    func verify(_ data: String, allowDamageIn allowed: Set<UInt64>) -> [String] {
        var problems: [String] = []
        do {
            let reports = try SegmentInspector.segmentFiles(in: data).map { try SegmentInspector.inspect(path: $0) }
            var ids = Set<UInt64>()
            for (i, r) in reports.enumerated() {
                if !ids.insert(r.id).inserted { problems.append("verify: segment \(r.id) has two data files") }
                if let h = r.headerProblem { problems.append("verify: segment \(r.id): \(h)") }
                if allowed.contains(r.id) { continue }
                for d in r.damage { problems.append("verify: \(d)") }
                if let t = r.tornTail { problems.append("verify: torn tail \(t)") }
                if !r.sealed, i != reports.count - 1 { problems.append("verify: segment \(r.id) has no seal frame") }
            }
            for path in try SegmentInspector.indexFiles(in: data) {
                let i = try SegmentInspector.inspectIndex(path: path)
                if let p = i.problem { problems.append("verify: index of segment \(i.segment): \(p)") }
                if let seg = reports.first(where: { $0.id == i.segment && $0.isClean }), i.events + i.duplicates != seg.concepts {
                    problems.append("verify: index of segment \(i.segment) counts \(i.events + i.duplicates) events, the segment \(seg.concepts)")
                }
            }
            if let m = try SegmentInspector.inspectManifest(in: data) {
                if let p = m.problem { problems.append("verify: manifest: \(p)") }
                for id in m.compacted where !reports.contains(where: { $0.id == id && $0.compressed != nil }) {
                    problems.append("verify: the manifest names segment \(id) compacted; its .sgc file is missing")
                }
                for r in reports where r.id < m.firstSegment {
                    problems.append("verify: segment \(r.id) is below the manifest's first segment \(m.firstSegment)")
                }
            }
        } catch {
            problems.append("verify failed: \(error)")
        }
        return problems
    }
}

/// Every event a store serves, checked byte for byte against the synthetic generator, per batch.
struct Served {
    var ids: [String] = []
    var perBatch: [String: Int] = [:]
    var problems: [String] = []

    init(_ store: EventStore) {
        var seen = Set<String>()
        store.forEachEvent { e in
            ids.append(e.id)
            if !seen.insert(e.id).inserted { problems.append("\(e.id) is served twice") }
            if let p = Served.check(e) {
                problems.append("corrupt event served: \(p)")
            } else {
                let parts = e.id.split(separator: "-")
                perBatch["\(parts[2])-\(parts[3])", default: 0] += 1
            }
            return true
        }
    }

    /// `SyntheticEvents.check`, with the expected event of each id kept (a debug build spends most of a state's
    /// time regenerating payloads otherwise). An event is expected only if it checked out once in full.
    private static let expected = Mutex<[String: StoredEvent]>([:])

    static func check(_ e: StoredEvent) -> String? {
        if let known = expected.withLock({ $0[e.id] }) {
            return known.payload == e.payload && known.entities == e.entities && known.typeCode == e.typeCode
                && known.timestamp == e.timestamp && known.idHash == e.idHash
                ? nil : SyntheticEvents.check(e) ?? "\(e.id) differs from its first reading"
        }
        if let p = SyntheticEvents.check(e) { return p }
        var copy = e
        copy.position = EventPosition(timestamp: 0, location: 0)
        expected.withLock { $0[e.id] = copy }
        return nil
    }
}

/// Whether a recorded call changes what is on disk (a read-only open must make none).
func changesDisk(_ call: RecordedCall) -> Bool {
    switch call {
    case .open(_, let flags, _): return flags & (O_CREAT | O_TRUNC) != 0 || flags & O_ACCMODE != O_RDONLY
    case .close: return false
    case .map(_, _, let writable): return writable
    default: return true
    }
}

/// One line about a recorded call, for failure messages.
func describe(_ call: RecordedCall, _ paths: [Int32: String]) -> String {
    func name(_ fd: Int32) -> String { paths[fd].map { String($0.split(separator: "/").last ?? "") } ?? "fd \(fd)" }
    func base(_ p: String) -> String { String(p.split(separator: "/").last ?? "") }
    switch call {
    case .open(let path, let flags, _):
        return "open \(base(path))" + (flags & O_CREAT != 0 ? " O_CREAT" : "") + (flags & O_TRUNC != 0 ? " O_TRUNC" : "")
    case .close(let fd): return "close \(name(fd))"
    case .write(let fd, let offset, let bytes):
        return "write \(bytes.count) bytes at \(offset) of \(name(fd))" + (Workloads.isSealFrame(bytes) ? " (seal frame)" : "")
    case .truncate(let fd, let length): return "truncate \(name(fd)) to \(length)"
    case .preallocate(let fd, let length): return "preallocate \(name(fd)) to \(length)"
    case .sync(let fd, let dataOnly): return (dataOnly ? "fdatasync " : "fsync ") + name(fd)
    case .rename(let from, let to): return "rename \(base(from)) to \(base(to))"
    case .unlink(let path): return "unlink \(base(path))"
    case .makeDirectory(let path): return "mkdir \(base(path))"
    case .map(let fd, _, let writable): return "mmap \(name(fd))" + (writable ? " writable" : "")
    }
}
