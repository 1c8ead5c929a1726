import Foundation
import Testing
#if canImport(Glibc)
import Glibc
#endif
@_spi(Testing) import EventStore

/// Power loss, not just SIGKILL: every call of the store that changes disk state is recorded
/// (`SystemCallRecorder`), replayed into a model that keeps what is durable apart from what is only written
/// (`FileSystemModel`), and the run is crashed after sampled calls into the states a power cut could leave
/// (lost, kept and torn 4 KiB pages, file sizes, directory operations applied or not). Each state is opened
/// and checked (`CrashExplorer.check`): every acknowledged batch is there, nothing served is corrupt or partial,
/// damage is reported and never served, the store takes appends, maintains, reopens and verifies clean; some
/// states are crashed again during that session. Knobs: `CRASHSTATES_SEED`, `CRASHSTATES_STATES` (per run),
/// `CRASHSTATES_SECONDS` and `CRASHSTATES_COUNT` (the long exploration, `make crashstates`), `CRASHSTATES_REPLAY`,
/// `CRASHSTATES_DUMP`, `CRASHSTATES_FAILURES`. The model and its assumptions: docs/FORMAT.md ("Durability and the
/// crash model").
@Suite("Crash states: power loss", .serialized)
struct CrashStateTests {
    static let seed = UInt64(environmentInt("CRASHSTATES_SEED") ?? 2026)
    static let statesPerRun = environmentInt("CRASHSTATES_STATES") ?? 80

    /// The model is only as good as the record: after each workload, the model's "everything written" state
    /// must be the directory the store left, byte for byte.
    @Test(arguments: Workloads.names)
    func recordRebuildsTheDirectory(_ workload: String) throws {
        let (run, driver) = try Workloads.record(workload)
        let model = FileSystemModel(root: run.root, baseline: run.baseline)
        for call in run.calls { try model.replay(call) }
        #expect(model.openDescriptors == 0, "every descriptor the store opened was closed")
        let onDisk = try TreeState.read(from: driver.root.path)
        let rebuilt = model.crashState(.everything)
        #expect(rebuilt.directories == onDisk.directories)
        #expect(rebuilt.files.keys.sorted() == onDisk.files.keys.sorted())
        for (name, bytes) in onDisk.files { #expect(rebuilt.files[name] == bytes, "\(workload): \(name) differs") }
        // The record is not trivial: it syncs files and directories, renames and writes.
        let syncs = run.calls.filter { if case .sync = $0 { return true } else { return false } }.count
        let renames = run.calls.filter { if case .rename = $0 { return true } else { return false } }.count
        #expect(syncs > 10 && renames > 2, "\(workload): \(syncs) syncs, \(renames) renames")
        #expect(run.batches.contains { $0.returned != nil })
    }

    /// `CRASHSTATES_DUMP=RUN` prints a run's record, one call a line, numbered as crash points are (the crash
    /// "after call K" is after line K), with the batches each call's return acknowledged.
    @Test(.enabled(if: ProcessInfo.processInfo.environment["CRASHSTATES_DUMP"] != nil))
    func dumpRecord() throws {
        let (run, _) = try Workloads.record(ProcessInfo.processInfo.environment["CRASHSTATES_DUMP"]!)
        var paths: [Int32: String] = [:]
        for (i, call) in run.calls.enumerated() {
            if case .open(let path, _, let fd) = call { paths[fd] = path }
            if case .rename(let from, let to) = call { for (fd, p) in paths where p == from { paths[fd] = to } }
            let acked = run.batches.filter { $0.returned == i + 1 }.map(\.key)
            print("\(i + 1): \(describe(call, paths))" + (acked.isEmpty ? "" : "  -> returned \(acked)"))
        }
        print("first crash point \(run.firstCrashPoint)")
    }

    /// `CRASHSTATES_REPLAY="WORKLOAD@K@CHOICE"` checks the one state a failure names (`killed-in-seal@57@random(42)`;
    /// CHOICE is `durableOnly`, `everything` or `random(N)`) and prints every problem. A failure inside the session
    /// after a state ("... / after call K") is found again by running with the seed it printed.
    @Test(.enabled(if: ProcessInfo.processInfo.environment["CRASHSTATES_REPLAY"] != nil))
    func replayOneState() throws {
        let parts = ProcessInfo.processInfo.environment["CRASHSTATES_REPLAY"]!.split(separator: "@").map(String.init)
        try #require(parts.count == 3, "CRASHSTATES_REPLAY=WORKLOAD@K@CHOICE")
        let k = try #require(Int(parts[1]))
        let choice: CrashChoice
        switch parts[2] {
        case "durableOnly": choice = .durableOnly
        case "everything": choice = .everything
        default:
            let digits = parts[2].filter(\.isNumber)
            choice = .random(try #require(UInt64(digits), "CHOICE is durableOnly, everything or random(N)"))
        }
        let (run, _) = try Workloads.record(parts[0])
        let found = try problems(run, at: k, choice)
        for p in found { print("crashstates: replay: \(p)") }
        #expect(found.isEmpty)
    }

    /// The exploration `make test` runs: per run, `statesPerRun` distinct states at sampled crash points (seeded
    /// by `CRASHSTATES_SEED` and the run's name), every tenth one's next session crashed too.
    @Test(arguments: Workloads.names)
    func powerLossKeepsEveryPromise(_ workload: String) throws {
        let started = monotonicNanos()
        let (run, _) = try Workloads.record(workload)
        let explorer = CrashExplorer(.init(seed: stableSeed(Self.seed, workload), statesPerRun: Self.statesPerRun, nestedEvery: 10))
        explorer.explore(run)
        let seconds = Double(monotonicNanos() - started) / 1e9
        print(
            "crashstates: \(workload): seed \(Self.seed), \(explorer.statesChecked) states at \(explorer.crashPoints) crash points of \(run.calls.count - run.firstCrashPoint) calls, \(explorer.nestedStatesChecked) nested, \(explorer.duplicates) duplicates skipped, \(explorer.failures.count) failing, \(String(format: "%.1f", seconds)) s")
        for f in explorer.failures.prefix(5) { Issue.record("\(f)") }
        saveFailures(explorer.failures)
        #expect(explorer.failures.isEmpty)
        #expect(explorer.statesChecked >= min(Self.statesPerRun, 20), "too few distinct states to mean anything")
    }

    /// `make crashstates`: explores for `CRASHSTATES_SECONDS` (or until `CRASHSTATES_COUNT` states), going round
    /// the workloads and, each round, a few sessions killed at random syncs; new random states each time
    /// (states already checked are skipped). The seed is printed; `CRASHSTATES_SEED=N` runs the same sequence.
    @Test(.enabled(if: environmentInt("CRASHSTATES_SECONDS") != nil || environmentInt("CRASHSTATES_COUNT") != nil))
    func longExploration() throws {
        let started = monotonicNanos()
        let seconds = environmentInt("CRASHSTATES_SECONDS") ?? 24 * 3600
        let count = environmentInt("CRASHSTATES_COUNT") ?? Int.max
        let seed = environmentInt("CRASHSTATES_SEED").map(UInt64.init) ?? (UInt64(time(nil)) &* 2_654_435_761 % 1_000_000)
        print("crashstates: long exploration, seed \(seed) (CRASHSTATES_SEED=\(seed) repeats it), \(seconds) s or \(count) states")
        let explorer = CrashExplorer(.init(
            seed: seed, statesPerRun: 150, randomPerPoint: 4, nestedEvery: 8,
            deadline: started + UInt64(seconds) * 1_000_000_000))
        var rng = SplitMix64(seed: seed)
        let syncs = try Workloads.firstSessionSyncs()
        var runs: [String: RecordedRun] = [:]
        var drivers: [WorkloadDriver] = []
        var perWorkload: [String: Int] = [:]
        var round = 0
        while !explorer.timeIsUp, explorer.statesChecked + explorer.nestedStatesChecked < count {
            var names = Workloads.names
            for _ in 0..<3 { names.append("killed-at-sync-\(rng.next() % UInt64(syncs))") }
            for name in names where !explorer.timeIsUp && explorer.statesChecked + explorer.nestedStatesChecked < count {
                if runs[name] == nil {
                    let (run, driver) = try Workloads.record(name)
                    runs[name] = run
                    drivers.append(driver)
                }
                let before = explorer.statesChecked
                let left = count - explorer.statesChecked - explorer.nestedStatesChecked
                explorer.explore(runs[name]!, budget: min(explorer.config.statesPerRun, left))
                perWorkload[name.hasPrefix("killed-at-sync-") ? "killed-at-sync-N" : name, default: 0] += explorer.statesChecked - before
            }
            round += 1
        }
        let elapsed = Double(monotonicNanos() - started) / 1e9
        for (name, n) in perWorkload.sorted(by: { $0.key < $1.key }) { print("crashstates:   \(name): \(n) states") }
        print(
            "crashstates: seed \(seed): \(explorer.statesChecked) states at \(explorer.crashPoints) crash points, \(explorer.nestedStatesChecked) more in the sessions after them, \(explorer.duplicates) duplicates skipped, \(round) rounds, \(runs.count) recorded runs, \(explorer.failures.count) failing, \(String(format: "%.0f", elapsed)) s")
        for f in explorer.failures.prefix(20) { Issue.record("\(f)") }
        saveFailures(explorer.failures)
        #expect(explorer.failures.isEmpty)
    }

    // MARK: The explorer catches a broken store

    /// A store with a sync removed must fail: the explorer is only worth something if it finds what it looks for.
    /// Each variant drops one kind of sync (`FaultInjector.dropSyncs`: the call returns success, syncs nothing and
    /// is not recorded, so the model keeps those writes pending).
    @Test(arguments: ["segment fdatasync", "directory fsync", "temporary file fsync"])
    func explorerCatchesAStoreWithASyncRemoved(_ variant: String) throws {
        let workload: String
        let drop: @Sendable (String) -> Bool
        switch variant {
        case "segment fdatasync":
            workload = "appends-batch"
            drop = { $0.hasSuffix(".sgs") }
        case "directory fsync":
            workload = "appends-always"
            drop = { path in
                var st = stat()
                return stat(path, &st) == 0 && (st.st_mode & S_IFMT) == S_IFDIR
            }
        default:
            workload = "maintenance"
            drop = { $0.hasSuffix(".tmp") && !$0.hasSuffix(".sgs.tmp") }
        }
        let (run, _) = try Workloads.record(workload, dropSyncs: drop)
        let explorer = CrashExplorer(.init(seed: stableSeed(Self.seed, variant), statesPerRun: 40))
        explorer.explore(run)
        print("crashstates: broken store (\(variant) removed), \(workload): \(explorer.failures.count) of \(explorer.statesChecked) states fail; first: \(explorer.failures.first.map { String(describing: $0).prefix(300) } ?? "none")")
        #expect(!explorer.failures.isEmpty, "the explorer missed a store without its \(variant)")
    }

    // MARK: Regressions: the states that exposed durability bugs

    /// Checks one state of `workload`'s run: the crash after `at` calls, drawn as `choice`.
    func problems(_ run: RecordedRun, at k: Int, _ choice: CrashChoice) throws -> [String] {
        let model = FileSystemModel(root: run.root, baseline: run.baseline)
        for call in run.calls.prefix(k) { try model.replay(call) }
        let explorer = CrashExplorer(.init(seed: Self.seed, statesPerRun: 1))
        return explorer.check(model.crashState(choice), run, at: k)
    }

    /// Bug 1 (fixed in `SystemCalls.makeDirectory`): the store created its data directory without syncing the
    /// parent directory, so the new directory's entry was not durable: a power loss after the first
    /// acknowledged append could take the whole data directory with it. The state: right after the first append
    /// was acknowledged, only what was synced.
    @Test func dataDirectoryCreatedByTheStoreSurvivesAPowerLoss() throws {
        let (run, _) = try Workloads.record("appends-always")
        let k = try #require(run.batches.compactMap(\.returned).min())
        let found = try problems(run, at: k, .durableOnly)
        #expect(found.isEmpty, "\(found)")
    }

    /// Bug 2 (fixed in `EventStore.recover`): a writer killed in the seal frame's fdatasync leaves the seal frame
    /// in the page cache; the next open read it, took the segment as sealed and created the next segment without
    /// syncing it. A power loss then left the segment without its seal frame: reported damaged ("cut short") on
    /// every open, never given an index file nor compacted. The state: the second session has just made its new
    /// segment durable (its directory fsync), only what was synced.
    @Test func sealFrameReadFromThePageCacheIsMadeDurable() throws {
        let (run, _) = try Workloads.record("killed-in-seal")
        let calls = run.calls
        let rename = try #require(calls.indices.first { i in
            guard i >= run.firstCrashPoint, case .rename(_, let to) = calls[i] else { return false }
            return to.hasSuffix(".sgs")
        })
        let sync = try #require(calls.indices.first { i in
            guard i > rename, case .sync = calls[i] else { return false }
            return true
        })
        let found = try problems(run, at: sync + 1, .durableOnly)
        #expect(found.isEmpty, "\(found)")
    }

    /// Bug 3 (fixed in `EventStore.recover`): a writer killed in the directory fsync that follows a new
    /// segment's rename leaves the rename only in memory; the next open listed `seg-2.sgs`, appended to it and
    /// acknowledged (the file's bytes synced, its name never): a power loss then took the name, and the
    /// acknowledged batches with it. The state: the second session's second acknowledgement, only what was
    /// synced.
    @Test func newSegmentNamedOnlyInMemoryIsMadeDurableBeforeAppending() throws {
        let (run, _) = try Workloads.record("killed-in-directory-segment")
        let k = try #require(run.batches.filter { $0.run == "s" }.compactMap(\.returned).sorted().dropFirst().first)
        let found = try problems(run, at: k, .durableOnly)
        #expect(found.isEmpty, "\(found)")
    }

    /// Bug 4 (fixed in `EventStore.recover`, as bug 3): a writer killed in the directory fsync after
    /// retention's manifest rename; the next open read the new manifest and unlinked the deleted segment's files.
    /// A power loss that keeps those unlinks but not the earlier rename (POSIX orders neither) leaves the old
    /// manifest, which still names the segment, and no file for it: acknowledged batches gone. The state: right
    /// after the second session's unlinks, what was synced plus those unlinks.
    @Test func manifestReadFromMemoryIsMadeDurableBeforeRetentionFinishes() throws {
        let (run, _) = try Workloads.record("killed-in-directory-retention")
        let calls = run.calls
        let lastUnlink = try #require(calls.indices.last { i in
            guard i >= run.firstCrashPoint, i < run.firstCrashPoint + 20, case .unlink = calls[i] else { return false }
            return true
        })
        let found = try problems(run, at: lastUnlink + 1, .durablePlus(directoryOps: { op in
            if case .unlink = op { return true }
            return false
        }))
        #expect(found.isEmpty, "\(found)")
    }
}

/// Appends every failure, one a line, to the file `CRASHSTATES_FAILURES` names (when set).
func saveFailures(_ failures: [CrashExplorer.Failure]) {
    guard let path = ProcessInfo.processInfo.environment["CRASHSTATES_FAILURES"], !failures.isEmpty else { return }
    let text = Data(failures.map { "\($0)\n" }.joined().utf8)
    if let h = FileHandle(forWritingAtPath: path) {
        h.seekToEndOfFile()
        h.write(text)
        h.closeFile()
    } else {
        FileManager.default.createFile(atPath: path, contents: text)
    }
}
