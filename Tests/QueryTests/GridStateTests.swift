@_spi(Testing) import EventStore
import Foundation
import GridEvents
import QueryOracle
import Testing
@testable import EventQuery

/// The grid state kept as events arrive (`GridFold`, `GridStateKeeper`) against the oracle's forward replay of the
/// world's events (`DiffWorld.replayGridState`): random worlds with events arriving out of time order, late, in
/// bursts of equal timestamps and resent; the keeper rebuilt from checkpoints and their tails, from damaged
/// checkpoints, after retention; and the state as of random moments against the replay of only the events up to
/// each. Every check names the world's seed (`DIFFTEST_SEED=N` replays it).
@Suite("Grid state kept as events arrive", .serialized)
struct GridStateKeptTests {
    // 512 KiB segments: several per world. (With 256 KiB some seeds end in a segment of nothing but resent
    // duplicates, whose index file the engine then refuses on compaction: "counts in the header do not fit the
    // file", an engine bug reported separately.)
    static let shape = DiffShape(events: 7_000, hotEvents: 1_200, agents: 25, nodes: 260, segmentCapacity: 512 << 10)

    /// A notice sink the keeper's options can hold.
    final class Notices: @unchecked Sendable {
        private let lock = NSLock()
        private var lines: [String] = []
        func add(_ s: String) { lock.withLock { lines.append(s) } }
        var all: [String] { lock.withLock { lines } }
    }

    static func options(interval: Int, maxBytes: Int = 256 << 20, notices: Notices? = nil) -> GridStateKeeper.Options {
        var o = GridStateKeeper.Options(interval: interval, maxBytes: maxBytes)
        o.writeInBackground = false
        if let notices { o.onNotice = { notices.add($0) } }
        return o
    }

    /// Whether two answers are equal; records the first difference.
    static func same(_ got: (agents: [AgentState], nodes: [NodeState]), _ want: (agents: [AgentState], nodes: [NodeState]),
                     _ what: String, _ w: DiffWorld) {
        #expect(got.nodes.count == want.nodes.count, "\(what): \(got.nodes.count) nodes, the replay has \(want.nodes.count); \(w.description)")
        if got.nodes != want.nodes {
            let first = zip(got.nodes, want.nodes).first { $0 != $1 }
            Issue.record("\(what): node states differ, first \(first.map { "\($0.0) vs \($0.1)" } ?? "-"); \(w.description)")
        }
        #expect(got.agents.count == want.agents.count, "\(what): \(got.agents.count) agents, the replay has \(want.agents.count); \(w.description)")
        if got.agents != want.agents {
            let first = zip(got.agents, want.agents).first { $0 != $1 }
            Issue.record("\(what): agent states differ, first \(first.map { "\($0.0) vs \($0.1)" } ?? "-"); \(w.description)")
        }
    }

    /// The world's events appended in batches like a daemon's groups, each followed by `observe` of exactly the
    /// events the store kept (the world's list grows by those, in arrival order). Some are late (timestamps in the
    /// middle of the world), some batches resent.
    static func appendLive(_ w: DiffWorld, _ keeper: GridStateKeeper?, batches: Int, size: Int) throws {
        var rng = SeededRandom(seed: w.seed ^ 0x5eed)
        for i in 0..<batches {
            var batch = w.freshEvents(size)
            if i % 4 == 3 {
                // A resend of events already stored, mixed with new ones: the store keeps the first copies.
                batch += w.events.suffix(Int(rng.next() % 40)) + w.events.prefix(Int(rng.next() % 5))
            }
            let before = w.events.count
            try w.append(batch)
            keeper?.observe(w.events[before...])
        }
    }

    @Test func foldInArrivalOrderEqualsTheReplay() throws {
        let w = try DiffWorld(seed: DiffSettings.firstSeed, shape: Self.shape)
        var fold = GridFold()
        for e in w.events { fold.apply(e) }
        let want = w.replayGridState()
        #expect(want.agents.count > 10 && want.nodes.count > 100, "fixture: a grid worth checking; \(w.description)")
        Self.same(fold.states(), want, "fold of every event in arrival order", w)
        Self.same((w.engine.agentStates(), w.engine.nodeStates()), want, "today's replay (QueryEngine)", w)
        Self.same(GridFold.replay(w.store).states(), want, "fold in position order (GridFold.replay)", w)
        // Every event applied twice in a row changes nothing (the same event at the same place in the order).
        var twice = GridFold()
        for e in w.events {
            twice.apply(e)
            twice.apply(e)
        }
        #expect(twice == fold, "applying an event again at once must change nothing; \(w.description)")
    }

    @Test func aResentDuplicateAppliedAgainWouldBeWrong() {
        // Why the caller must leave duplicates out: the same timestamp, a later copy, flips the tie.
        let t: Int64 = 1_795_392_000_000_000
        let a = GridEvent(id: "event-agent_degraded-aaaaaaaaaaaa-1", timestamp: t, kind: .agentDegraded(agentId: "agent-1", secondsSinceHeartbeat: 16))
        let b = GridEvent(id: "event-agent_recovered-aaaaaaaaaaaa-2", timestamp: t, kind: .agentRecovered(agentId: "agent-1", downtimeSeconds: 3))
        var f = GridFold()
        f.apply(a)
        f.apply(b)
        #expect(f.states().agents.first?.health == .healthy)
        f.apply(a)
        #expect(f.states().agents.first?.health == .degraded, "a re-applied older copy wins the tie: the fold is not idempotent for resends")
        // Restart count ties: the later of spawn_succeeded and node_restarted at one timestamp decides.
        var g = GridFold()
        g.apply(GridEvent(id: "event-node_restarted-aaaaaaaaaaaa-3", timestamp: t, kind: .nodeRestarted(nodeId: "node-1", agentId: "agent-1", restartCount: 2, newPid: 7)))
        g.apply(GridEvent(id: "event-spawn_succeeded-aaaaaaaaaaaa-4", timestamp: t, kind: .spawnSucceeded(nodeId: "node-1", agentId: "agent-1", pid: 8, port: 9)))
        #expect(g.nodeStates().first?.restartCount == 0 && g.nodeStates().first?.pid == 8)
        var h = GridFold()
        h.apply(GridEvent(id: "event-spawn_succeeded-aaaaaaaaaaaa-4", timestamp: t, kind: .spawnSucceeded(nodeId: "node-1", agentId: "agent-1", pid: 8, port: 9)))
        h.apply(GridEvent(id: "event-node_restarted-aaaaaaaaaaaa-3", timestamp: t, kind: .nodeRestarted(nodeId: "node-1", agentId: "agent-1", restartCount: 2, newPid: 7)))
        #expect(h.nodeStates().first?.restartCount == 2 && h.nodeStates().first?.pid == 7)
    }

    @Test func checkpointRoundTrips() throws {
        let w = try DiffWorld(seed: DiffSettings.firstSeed ^ 7, shape: Self.shape)
        var fold = GridFold()
        for e in w.events { fold.apply(e) }
        let cp = GridCheckpoint(asOf: w.now, storedThrough: 42 << 32 | 4096, lastSequence: 99, firstLocation: 1 << 32,
                                complete: true, fold: fold)
        let bytes = cp.encode()
        #expect(try GridCheckpoint.decode(bytes) == cp)
        #expect(GridCheckpoint.parseName(cp.fileName).map { "\($0.asOf) \($0.storedThrough) \($0.firstLocation) \($0.complete)" }
                == "\(w.now) \(42 << 32 | 4096) \(1 << 32) true")
        // Every single-byte change and every truncation is refused, never trapped on.
        var rng = SeededRandom(seed: w.seed)
        for _ in 0..<300 {
            var damaged = bytes
            let i = Int(rng.next() % UInt64(bytes.count))
            damaged[i] ^= UInt8(1 + rng.next() % 255)
            #expect(throws: GridCheckpoint.Problem.self) { try GridCheckpoint.decode(damaged) }
            let cut = Int(rng.next() % UInt64(bytes.count))
            #expect(throws: GridCheckpoint.Problem.self) { try GridCheckpoint.decode(Array(bytes[..<cut])) }
        }
    }

    @Test func keeperFoldsLiveEventsAndReopensFromCheckpointPlusTail() throws {
        let w = try DiffWorld(seed: DiffSettings.firstSeed ^ 1, shape: Self.shape)
        let notices = Notices()
        // The first open has no checkpoint: a full replay that writes checkpoints as it goes.
        var keeper: GridStateKeeper? = try GridStateKeeper.open(w.store, options: Self.options(interval: 1_500, notices: notices))
        #expect(keeper!.openReport.checkpoint == nil)
        #expect(keeper!.checkpoints.count >= 3, "the replay writes a checkpoint every 1,500 events: \(keeper!.checkpoints.count)")
        Self.same(keeper!.states(), w.replayGridState(), "after the full replay", w)

        try Self.appendLive(w, keeper, batches: 24, size: 150)
        Self.same(keeper!.states(), w.replayGridState(), "after live appends with late events and resends", w)

        // A crash: no last checkpoint. Reopening reads the newest checkpoint and only the events after it.
        keeper = nil
        let total = w.events.filter { GridFold.folds($0.type) }.count
        keeper = try GridStateKeeper.open(w.store, options: Self.options(interval: 1_500, notices: notices))
        #expect(keeper!.openReport.checkpoint != nil, "reopened from a checkpoint: \(notices.all)")
        #expect(keeper!.openReport.eventsRead < total / 2, "read \(keeper!.openReport.eventsRead) of \(total) grid events")
        Self.same(keeper!.states(), w.replayGridState(), "reopened from checkpoint + tail", w)

        // More events, then a clean close: its checkpoint leaves nothing to read on the next open.
        try Self.appendLive(w, keeper, batches: 6, size: 120)
        keeper!.close()
        try w.compact()
        try w.reopen()
        keeper = try GridStateKeeper.open(w.store, options: Self.options(interval: 1_500, notices: notices))
        #expect(keeper!.openReport.eventsRead == 0, "after a clean close the tail is empty: \(keeper!.openReport.eventsRead)")
        Self.same(keeper!.states(), w.replayGridState(), "reopened after a clean close, compacted store", w)
        try Self.appendLive(w, keeper, batches: 6, size: 120)
        Self.same(keeper!.states(), w.replayGridState(), "live again after reopening", w)
    }

    @Test func aCheckpointThatCannotBeReadNowIsSkippedNotDeleted() throws {
        let dir = NSTemporaryDirectory() + "state-io-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let faults = FaultInjector()
        var o = StoreOptions()
        o.faults = faults
        o.backgroundMaintenance = false
        let store = try EventStore.open(at: dir, options: o)
        defer { store.close() }
        let side = try store.sideDirectory(GridStateKeeper.directoryName)
        let b = store.logBounds
        let older = GridCheckpoint(asOf: 1, storedThrough: b.end, lastSequence: b.lastSequence, firstLocation: b.first,
                                   complete: true, fold: GridFold())
        let newer = GridCheckpoint(asOf: 2, storedThrough: b.end, lastSequence: b.lastSequence, firstLocation: b.first,
                                   complete: true, fold: GridFold())
        for cp in [older, newer] { try store.writeSideFile(side, cp.fileName, cp.encode()) }
        // The keeper's first open is of the newest checkpoint: EIO (a flaky disk, or EMFILE), not damage.
        faults.fail(.open, errno: EIO)
        let notices = Notices()
        let keeper = try GridStateKeeper.open(store, options: Self.options(interval: 1_000, notices: notices))
        let report = keeper.openReport
        #expect(report.checkpoint == older.fileName, "used \(report.checkpoint ?? "none")")
        #expect(report.rejected.count == 1 && report.rejected.first?.contains("cannot be read now") == true, "\(report.rejected)")
        #expect(notices.all.contains { $0.contains("kept") }, "\(notices.all)")
        #expect(try store.readSideFile(side, newer.fileName) == newer.encode(), "the unreadable checkpoint is kept")
        #expect(keeper.checkpoints.map(\.name) == [older.fileName, newer.fileName])
    }

    @Test func damagedOrAheadCheckpointsFallBackToOlderOnesOrAReplay() throws {
        let w = try DiffWorld(seed: DiffSettings.firstSeed ^ 2, shape: Self.shape)
        let notices = Notices()
        var keeper: GridStateKeeper? = try GridStateKeeper.open(w.store, options: Self.options(interval: 1_000, notices: notices))
        try Self.appendLive(w, keeper, batches: 30, size: 120)
        let dir = keeper!.directory
        let names = keeper!.checkpoints.map(\.name)
        #expect(names.count >= 5, "checkpoints: \(names.count)")
        keeper = nil
        let want = w.replayGridState()

        // The newest: one flipped bit in its body. The next: cut short. The next: its header says another moment
        // than its name. A checkpoint claiming more frames than the store has (a crash under --sync none).
        let newest = names[names.count - 1]
        var bytes = try #require(try w.store.readSideFile(dir, newest))
        bytes[bytes.count / 2] ^= 0x10
        try w.store.writeSideFile(dir, newest, bytes)
        let second = names[names.count - 2]
        let cut = try #require(try w.store.readSideFile(dir, second))
        try w.store.writeSideFile(dir, second, Array(cut.prefix(cut.count - 3)))
        let third = names[names.count - 3]
        var cp = try GridCheckpoint.decode(try #require(try w.store.readSideFile(dir, third)))
        let renamed = cp.fileName
        cp.asOf -= 1
        try w.store.writeSideFile(dir, renamed, cp.encode())
        let b = w.store.logBounds
        let ahead = GridCheckpoint(asOf: w.now + 10_000_000_000, storedThrough: b.end, lastSequence: b.lastSequence + 5,
                                   firstLocation: b.first, complete: true, fold: GridFold())
        try w.store.writeSideFile(dir, ahead.fileName, ahead.encode())

        keeper = try GridStateKeeper.open(w.store, options: Self.options(interval: 1_000, notices: notices))
        let report = keeper!.openReport
        #expect(report.rejected.count == 4, "rejected: \(report.rejected)")
        #expect(report.rejected.contains { $0.contains("no longer has") }, "\(report.rejected)")
        #expect(report.rejected.contains { $0.contains("checksum") }, "\(report.rejected)")
        #expect(report.checkpoint == names[names.count - 4], "used \(report.checkpoint ?? "none")")
        Self.same(keeper!.states(), want, "after falling back past damaged checkpoints", w)
        for name in [newest, second, ahead.fileName] {
            #expect(try w.store.readSideFile(dir, name) == nil, "\(name) deleted")
        }

        // Every checkpoint damaged: a full replay, still the right answer.
        keeper = nil
        for name in w.store.listSideFiles(dir) where name.hasPrefix("ckpt-") {
            var all = try #require(try w.store.readSideFile(dir, name))
            all[3] ^= 1
            try w.store.writeSideFile(dir, name, all)
        }
        keeper = try GridStateKeeper.open(w.store, options: Self.options(interval: 1_000, notices: notices))
        #expect(keeper!.openReport.checkpoint == nil)
        Self.same(keeper!.states(), want, "full replay after every checkpoint was damaged", w)
        #expect(notices.all.contains { $0.contains("bad magic") || $0.contains("not a grid-state checkpoint") }, "\(notices.all.suffix(3))")
    }

    @Test func stateAtRandomMomentsEqualsTheReplayUpToThem() throws {
        let w = try DiffWorld(seed: DiffSettings.firstSeed ^ 3, shape: Self.shape)
        let keeper = try GridStateKeeper.open(w.store, options: Self.options(interval: 900))
        try Self.appendLive(w, keeper, batches: 30, size: 100)
        var rng = SeededRandom(seed: w.seed ^ 0x7177)
        var moments: [Int64] = (0..<40).map { _ in w.start - 3_600_000_000 + Int64(rng.next() % UInt64(w.now - w.start + 7_200_000_000)) }
        for c in keeper.checkpoints.map(\.asOf) { moments += [c - 1, c, c + 1] }
        // Timestamps events have (ties at the moment itself).
        moments += (0..<10).map { _ in w.events[Int(rng.next() % UInt64(w.events.count))].timestamp }
        for t in moments {
            let got = try keeper.states(at: t)
            Self.same(got, w.replayGridState(through: t), "state at \(TimeText.format(t))", w)
        }
        Self.same(try keeper.states(at: .max), w.replayGridState(), "state at the end of time", w)
    }

    @Test func retentionLeavesTheStateAndRefusesDeletedMoments() throws {
        let w = try DiffWorld(seed: DiffSettings.firstSeed ^ 4, shape: Self.shape, maxBytes: 1_100_000)
        let keeper = try GridStateKeeper.open(w.store, options: Self.options(interval: 700))
        for _ in 0..<4 {
            try Self.appendLive(w, keeper, batches: 8, size: 150)
            try w.compact()  // applies retention
        }
        let deleted = w.store.stats.retention
        #expect(deleted.events > 1_000, "fixture: retention deleted events (\(deleted.events))")
        let want = w.replayGridState()
        Self.same(keeper.states(), want, "current state after retention (every event ever stored)", w)
        // Today's replay sees only what is stored: it forgot the agents and nodes whose history was deleted.
        let stored = (w.engine.agentStates(), w.engine.nodeStates())
        #expect(stored.0 != want.agents || stored.1 != want.nodes, "fixture: retention changed what a replay sees")

        // Reopened from its checkpoint, the state still remembers.
        keeper.close()
        let reopened = try GridStateKeeper.open(w.store, options: Self.options(interval: 700))
        Self.same(reopened.states(), want, "reopened after retention", w)

        // Moments before the oldest usable checkpoint are refused; moments after it are exact.
        let first = w.store.logBounds.first
        let usable = reopened.checkpoints.filter(\.usable).map(\.asOf)
        #expect(!usable.isEmpty)
        #expect(throws: GridStateError.self) { try reopened.states(at: w.start) }
        let oldest = try #require(usable.first)
        #expect(first > 1 << 32)
        var rng = SeededRandom(seed: w.seed)
        for _ in 0..<10 {
            let t = oldest + Int64(rng.next() % UInt64(max(1, w.now + 2_000_000 - oldest)))
            Self.same(try reopened.states(at: t), w.replayGridState(through: t), "state at \(TimeText.format(t)) after retention", w)
        }
    }

    /// Checkpoints are taken every `interval` grid events; when grid events are sparse, retention can delete
    /// past the newest one, which time travel and a restart after a crash could then not use. The next events
    /// folded take a new checkpoint at once.
    @Test func retentionPastTheNewestCheckpointTakesANewOne() throws {
        let w = try DiffWorld(seed: DiffSettings.firstSeed ^ 6, shape: Self.shape, maxBytes: 1_100_000)
        let keeper = try GridStateKeeper.open(w.store, options: Self.options(interval: 1_000_000))
        try Self.appendLive(w, keeper, batches: 4, size: 150)
        keeper.checkpointNow()
        #expect(keeper.checkpoints.count == 1 && keeper.checkpoints.allSatisfy(\.usable))
        var rounds = 0
        while keeper.checkpoints.last?.usable ?? false, rounds < 40 {
            // Appended without folding: the keeper sees nothing until retention has passed its checkpoint.
            try Self.appendLive(w, nil, batches: 4, size: 150)
            try w.compact()
            rounds += 1
        }
        #expect(keeper.checkpoints.last?.usable == false, "fixture: retention deleted past the only checkpoint")
        try Self.appendLive(w, keeper, batches: 1, size: 150)
        let newest = try #require(keeper.checkpoints.last)
        #expect(newest.usable, "a new checkpoint once retention passed the newest")
        // Later events make that moment the past: time travel to it starts from the new checkpoint (without one,
        // every past moment is refused as deleted history).
        try Self.appendLive(w, keeper, batches: 2, size: 150)
        let atCheckpoint = try keeper.states(at: newest.asOf)
        #expect(!atCheckpoint.nodes.isEmpty)
    }

    @Test func checkpointsStayWithinTheirByteBudget() throws {
        let w = try DiffWorld(seed: DiffSettings.firstSeed ^ 5, shape: Self.shape)
        let probe = try GridStateKeeper.open(w.store, options: Self.options(interval: 400))
        let each = probe.checkpoints.map(\.bytes).max() ?? 0
        #expect(probe.checkpoints.count > 10)
        let budget = each * 5
        for name in probe.checkpoints.map(\.name) { try w.store.removeSideFile(probe.directory, name) }
        let keeper = try GridStateKeeper.open(w.store, options: Self.options(interval: 400, maxBytes: budget))
        try Self.appendLive(w, keeper, batches: 20, size: 100)
        let kept = keeper.checkpoints
        #expect(kept.reduce(0) { $0 + $1.bytes } <= budget, "\(kept.count) checkpoints, \(kept.reduce(0) { $0 + $1.bytes }) bytes > \(budget)")
        #expect(kept.count >= 3)
        let onDisk = w.store.listSideFiles(keeper.directory).filter { $0.hasPrefix("ckpt-") }
        #expect(Set(onDisk) == Set(kept.map(\.name)))
        // Thinned evenly, and what is kept still answers exactly.
        for c in kept.map(\.asOf) {
            Self.same(try keeper.states(at: c + 1), w.replayGridState(through: c + 1), "state after thinning", w)
        }
    }
}
