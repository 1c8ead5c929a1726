import EventRecords
import EventStore
import Foundation
import GridEvents
import QueryOracle
import Testing
@testable import EventQuery

/// The differential test of the query engine: random stores (skewed types and entities, a hot agent above every
/// internal cap, equal timestamps, late and resent batches, many segments), random queries of every kind, each
/// answer compared with the oracle's plain scan over the same events: raw, then compacted, then reopened.
///
/// `make test` runs one world (seed printed; `DIFFTEST_SEED=N` replays it); `make difftest SECONDS=600` keeps
/// building worlds with new seeds for that long.
@Suite("Differential: engine against a plain scan", .serialized)
struct DifferentialTests {
    /// Every failure names the world (seed) and the query.
    struct Checker {
        let world: DiffWorld
        var phase: String
        var failures = 0
        var checks = 0

        mutating func check(_ ok: Bool, _ what: @autoclosure () -> String, sourceLocation: SourceLocation = #_sourceLocation) {
            checks += 1
            guard !ok else { return }
            failures += 1
            if failures <= 25 {
                Issue.record("[\(phase)] \(what()) — \(world.description)", sourceLocation: sourceLocation)
            } else {
                print("difftest: also failed: [\(phase)] \(what())")
            }
        }
    }

    @Test func engineAnswersLikeAPlainScan() throws {
        let deadline = Date().addingTimeInterval(DiffSettings.seconds)
        var seed = DiffSettings.firstSeed
        var round = 0
        var seeds = SeededRandom(seed: seed)
        repeat {
            let shape = round == 0 ? DiffShape.standard : DiffShape.random(&seeds)
            print("difftest: world \(round + 1), seed \(seed) (replay with DIFFTEST_SEED=\(seed))")
            let built = Date()
            let world = try DiffWorld(seed: seed, shape: shape)
            print("difftest: built \(world.events.count) events in \(Int(-built.timeIntervalSinceNow * 1000)) ms")
            var c = Checker(world: world, phase: "raw")
            let budget = round == 0 ? 1.0 : 4.0
            try runAll(&c, seconds: budget, thorough: true)
            try world.compact()
            c.phase = "compacted"
            try runAll(&c, seconds: budget / 2, thorough: round > 0, gridState: round > 0)
            try world.reopen()
            c.phase = "reopened"
            try runAll(&c, seconds: budget / 2, thorough: round > 0)
            print("difftest: seed \(seed): \(c.checks) checks, \(c.failures) failures, \(world.events.count) events")
            if c.failures > 0 { return }
            round += 1
            seed = seeds.next() >> 1
        } while Date() < deadline
    }

    /// Paging while events arrive, between pages and from another thread at the same time: every event that
    /// matched when paging began comes exactly once, nothing comes twice, order holds, and anything else that
    /// comes is an event appended meanwhile.
    @Test func pagesStayWholeWhileEventsArrive() throws {
        let seed = DiffSettings.firstSeed ^ 0xA11CE
        let shape = DiffShape(events: 6_000, hotEvents: 1_000, agents: 20, nodes: 120, segmentCapacity: 256 << 10)
        let world = try DiffWorld(seed: seed, shape: shape)
        var c = Checker(world: world, phase: "appending")
        var rng = SeededRandom(seed: seed)
        // The other writer: its own events, ids remembered.
        let writer = ConcurrentWriter(store: world.store, template: world.freshEvents(4000))
        writer.start()
        defer { writer.stop() }
        for _ in 0..<20 {
            var q = randomQuery(world, &rng)
            q.limit = 1 + Int(rng.next() % 300)
            let before = world.expected(q).map(\.event.id)
            var got: [GridEvent] = []
            var page = q
            var pages = 0
            while pages < 60 {
                let result = try world.engine.find(page)
                got += result.events
                pages += 1
                try world.append(world.freshEvents(1 + Int(rng.next() % 50)))
                guard let next = result.nextCursor else { break }
                page.cursor = next
            }
            if pages >= 60 { continue }
            let after = Set(world.expected(q).map(\.event.id)).union(writer.written)
            let ids = got.map(\.id)
            c.check(Set(ids).count == ids.count, "\(ids.count - Set(ids).count) events came twice: \(q)")
            c.check(Set(before).isSubset(of: Set(ids)), "\(Set(before).subtracting(ids).count) of \(before.count) events that matched at the start never came: \(q)")
            c.check(Set(ids).isSubset(of: after), "\(Set(ids).subtracting(after).count) events came that were never appended: \(q)")
            let times = got.map(\.timestamp)
            c.check(times == (q.newestFirst ? times.sorted(by: >) : times.sorted()), "out of order: \(q)")
        }
        print("difftest: paging while appending, seed \(seed): \(c.checks) checks, \(c.failures) failures")
    }

    /// Every kind of check against one world, random ones for about `seconds` per kind. `thorough` adds whole
    /// pagings of the largest lists (the hot agent both ways, every heartbeat), which take most of the time.
    func runAll(_ c: inout Checker, seconds: Double, thorough: Bool, gridState: Bool = true) throws {
        var t = Date()
        func lap(_ what: String) {
            print("difftest: [\(c.phase)] \(what) \(Int(-t.timeIntervalSinceNow * 1000)) ms")
            t = Date()
        }
        try fixedChecks(&c, thorough: thorough)
        lap("fixed checks")
        let world = c.world
        var rng = SeededRandom(seed: world.seed ^ 0x5EED ^ UInt64(c.checks))
        let least = thorough ? 12 : 6
        for check in [checkFind, checkCount, checkGroup] as [(inout Checker, inout SeededRandom) throws -> Void] {
            let until = Date().addingTimeInterval(seconds)
            var n = 0
            while n < least || Date() < until {
                try check(&c, &rng)
                n += 1
                if n > 5000 { break }
            }
            lap("\(n) random")
        }
        let until = Date().addingTimeInterval(seconds)
        var n = 0
        while n < 2 * least || Date() < until {
            try checkQuestion(&c, &rng)
            n += 1
        }
        lap("\(n) questions")
        try checkTraversals(&c, &rng, count: least)
        lap("traversals")
        if gridState {
            checkGridState(&c)
            lap("grid state")
        }
    }

    // MARK: Queries

    /// A random structured query: every filter combination, both orders, limits 1 to 1,000.
    func randomQuery(_ w: DiffWorld, _ rng: inout SeededRandom) -> EventQuery {
        func pick<T>(_ a: [T]) -> T { a[Int(rng.next() % UInt64(a.count))] }
        func chance(_ percent: UInt64) -> Bool { rng.next() % 100 < percent }
        let types = EventType.allCases.filter { $0 != .eventsDropped }
        var q = EventQuery()
        if chance(45) {
            let n = chance(70) ? 1 : 2 + Int(rng.next() % 2)
            q.types = Array(Set((0..<n).map { _ in chance(30) ? EventType.agentHeartbeat : pick(types) }))
        }
        if chance(5) {
            q.customName = pick(DiffWorld.customNames)
            if chance(50) { q.types = [.custom] }
        }
        if chance(45) {
            q.entity = pick([DiffWorld.hotAgent, DiffWorld.hotAgent, pick(w.agents), pick(w.agents), pick(w.nodes), pick(w.nodes), "cluster", "node-none"])
        }
        let span = w.now - w.start
        func someTime() -> Int64 {
            // Often exactly an event's own timestamp: the boundary of equal timestamps.
            chance(40) ? w.events[Int(rng.next() % UInt64(w.events.count))].timestamp : w.start + Int64(rng.next() % UInt64(span))
        }
        if chance(45) { q.since = someTime() }
        if chance(35) { q.until = someTime() }
        if chance(15) {
            let producer = pick(w.producers)
            let type = pick(types).name
            q.idPrefix = pick([
                "event-\(type)-", "event-\(type)-\(producer)", "event-spawn_*", "event-agent_", "event-\(pick(DiffWorld.customNames))",
                "event-\(type)-\(producer)-1", "event-agent_heartbeat-\(producer)-2", "event-",
            ])
        }
        if chance(25) {
            let long = String(repeating: "x", count: 70)
            q.text = pick([
                "disk full", "DISK", "\"disk full\"", "\"full disk\"", "connection refused", "\"connection refused\"",
                "\"refused connection\"", "refused", "sda1", "50051 in use", "\"already in use\"", "out of memory",
                "übergrösse", "ÄRGER zugriff", "\(long)a", "\(long)b", "\"token \(long)b expired\"", "expired",
                "agents not healthy", "\"not healthy\"", "majority", "host \(pick(w.agents))", "linux", "data",
                pick(w.nodes), "\(pick(w.nodes)) \"disk full\"", "10 0 0 7", "zebra", "\"disk\" \"full\"", "1 5", "file system",
                "\"read only file system\" full", "\"connection refused", pick(w.agents),
                "istanbul", "İstanbul", "café", "cafe\u{301}", "restarting \"disk full\"", "grid agent", "\"restarting node\"",
            ])
        }
        q.newestFirst = chance(60)
        let r = rng.next() % 10
        q.limit = r < 3 ? 1 + Int(rng.next() % 10) : r < 7 ? 11 + Int(rng.next() % 290) : 301 + Int(rng.next() % 700)
        return q
    }

    /// Pages through `q` to the end (or through the first 10,000 answers) and compares with the oracle.
    func checkFind(_ c: inout Checker, _ rng: inout SeededRandom) throws {
        let q = randomQuery(c.world, &rng)
        try compareFind(&c, q, cap: 10_000)
    }

    func compareFind(_ c: inout Checker, _ q: EventQuery, cap: Int) throws {
        let expected = c.world.expected(q).map(\.event.id)
        var got: [String] = []
        var page = q
        var pages = 0
        while true {
            let result = try c.world.engine.find(page)
            pages += 1
            got += result.events.map(\.id)
            guard let next = result.nextCursor else { break }
            c.check(result.events.count == page.limit, "a page with a next cursor holds \(result.events.count) of \(page.limit): \(q)")
            if got.count >= cap { break }
            page.cursor = next
            if pages > 100_000 { break }
        }
        if got.count >= cap, expected.count > got.count {
            c.check(Array(expected.prefix(got.count)) == got, "the first \(got.count) of \(expected.count) differ: \(q) \(firstDifference(expected, got))")
        } else {
            c.check(expected == got, "got \(got.count) events, expected \(expected.count): \(q) \(firstDifference(expected, got))")
        }
    }

    func firstDifference(_ a: [String], _ b: [String]) -> String {
        for i in 0..<min(a.count, b.count) where a[i] != b[i] { return "(first difference at \(i): expected \(a[i]), got \(b[i]))" }
        return a.count == b.count ? "" : "(one is a prefix of the other)"
    }

    func checkCount(_ c: inout Checker, _ rng: inout SeededRandom) throws {
        let q = randomQuery(c.world, &rng)
        let got = c.world.engine.count(q)
        let expected = c.world.expected(q).count
        c.check(got == expected, "count \(got), expected \(expected): \(q)")
    }

    func checkGroup(_ c: inout Checker, _ rng: inout SeededRandom) throws {
        let q = randomQuery(c.world, &rng)
        let key = GroupKey.allCases[Int(rng.next() % UInt64(GroupKey.allCases.count))]
        let top: Int? = rng.next() % 3 == 0 ? 1 + Int(rng.next() % 10) : nil
        let got = c.world.engine.group(q, by: key, top: top)
        let expected = c.world.expectedGroups(q, by: key, top: top)
        c.check(got == expected, "group by \(key) top \(top.map(String.init) ?? "-"): \(got.count) buckets (sum \(got.reduce(0) { $0 + $1.count })), expected \(expected.count) (sum \(expected.reduce(0) { $0 + $1.count })): \(q)")
    }

    /// Checks every world is built to exercise: the hot agent's events both ways (whole, when `thorough`; else its
    /// first and last pages), every spawn request, counts and time groups of the biggest lists.
    func fixedChecks(_ c: inout Checker, thorough: Bool) throws {
        let w = c.world
        for newest in [true, false] {
            try compareFind(&c, EventQuery(entity: DiffWorld.hotAgent, newestFirst: newest, limit: 1000), cap: thorough ? .max : 1000)
            try compareFind(&c, EventQuery(types: [.spawnRequested], newestFirst: newest, limit: 1000), cap: 2000)
        }
        for q in [EventQuery(entity: DiffWorld.hotAgent), EventQuery(types: [.spawnRequested]), EventQuery(),
                  EventQuery(idPrefix: "event-agent_heartbeat-"), EventQuery(types: [.nodeCrashed], entity: w.nodes[0])] {
            c.check(w.engine.count(q) == w.expected(q).count, "count of \(q): \(w.engine.count(q)), expected \(w.expected(q).count)")
        }
        for key in [GroupKey.minute, .hour, .day, .type] {
            let q = EventQuery(types: [.spawnRequested])
            c.check(w.engine.group(q, by: key) == w.expectedGroups(q, by: key), "group spawn requests by \(key)")
        }
        // Text: the commonest words (every hot spawn request has "data" in its storage path), phrases both ways,
        // words the index cannot tell apart, paged whole both ways.
        for text in ["data", "disk full", "\"connection refused\"", "\"refused connection\"", String(repeating: "x", count: 70) + "b"] {
            for newest in [true, false] {
                try compareFind(&c, EventQuery(newestFirst: newest, limit: 1000, text: text), cap: thorough ? 4000 : 2000)
            }
            let q = EventQuery(entity: DiffWorld.hotAgent, text: text)
            c.check(w.engine.count(q) == w.expected(q).count, "count of \(q): \(w.engine.count(q)), expected \(w.expected(q).count)")
        }
    }

    // MARK: Questions

    /// Questions of the grammar with random entities and times; the interpretation must be the one the grammar
    /// says, and the answer the oracle's.
    func checkQuestion(_ c: inout Checker, _ rng: inout SeededRandom) throws {
        let w = c.world
        func pick<T>(_ a: [T]) -> T { a[Int(rng.next() % UInt64(a.count))] }
        let day = DiffWorld.day
        let midnight = w.now / day * day
        let monday = midnight - ((midnight / day + 3) % 7) * day
        let hours = 1 + Int64(rng.next() % 48)
        let minutes = 1 + Int64(rng.next() % 600)
        let agent = pick([DiffWorld.hotAgent, pick(w.agents)])
        let node = pick(w.nodes)
        let entity = pick([agent, node, "cluster"])
        let failures: [EventType] = [.spawnFailed, .stopFailed, .nodeCrashed]
        typealias Case = (String, Interpretation.Action, [EventType], String?, Range<Int64>?)
        let cases: [Case] = [
            ("show spawn failures today", .list, [.spawnFailed], nil, midnight..<Int64.max),
            ("how many nodes crashed this week", .countDistinct(.node), [.nodeCrashed], nil, monday..<Int64.max),
            ("how many agents went offline in the last \(hours) hours", .countDistinct(.agent), [.agentOffline], nil, (w.now - hours * 3_600_000_000)..<Int64.max),
            ("count heartbeats in the last \(minutes) minutes", .count, [.agentHeartbeat], nil, (w.now - minutes * 60_000_000)..<Int64.max),
            ("which agents went offline yesterday", .group(.agent, top: nil), [.agentOffline], nil, (midnight - day)..<midnight),
            ("top \(1 + hours % 9) agents by failures this week", .group(.agent, top: Int(1 + hours % 9)), failures, nil, monday..<Int64.max),
            ("which nodes failed last week", .group(.node, top: nil), failures, nil, (monday - 7 * day)..<monday),
            ("what happened to \(entity)", .list, [], entity, nil),
            ("what happened to \(entity) last week", .list, [], entity, (monday - 7 * day)..<monday),
            ("count spawn failures for \(agent) this week", .count, [.spawnFailed], agent, monday..<Int64.max),
            ("how many nodes restarted today", .countDistinct(.node), [.nodeRestarted], nil, midnight..<Int64.max),
            ("show the events leading to \(node) crash", .chain, [.nodeCrashed], node, nil),
            ("count heartbeats of \(DiffWorld.hotAgent)", .count, [.agentHeartbeat], DiffWorld.hotAgent, nil),
            ("show errors mentioning disk full today", .list, failures, nil, midnight..<Int64.max),
            ("which nodes failed with connection refused this week", .group(.node, top: nil), failures, nil, monday..<Int64.max),
            ("show events mentioning \"connection refused\" for \(agent)", .list, [], agent, nil),
            ("how many spawn failures mention out of memory last week", .count, [.spawnFailed], nil, (monday - 7 * day)..<monday),
            ("show logs mentioning disk full", .list, [.log], nil, nil),
        ]
        let texts = [
            "show errors mentioning disk full today": "disk full",
            "which nodes failed with connection refused this week": "connection refused",
            "show events mentioning \"connection refused\" for \(agent)": "\"connection refused\"",
            "how many spawn failures mention out of memory last week": "out of memory",
            "show logs mentioning disk full": "disk full",
        ]
        let (question, action, types, expectedEntity, range) = pick(cases)
        let translator = Translator(now: { [now = w.now] in now })
        let (interpretation, answer) = try w.engine.ask(question, translator: translator)
        let q = interpretation.query
        c.check(interpretation.action == action, "\"\(question)\": action \(interpretation.action), expected \(action)")
        c.check(Set(q.types) == Set(types), "\"\(question)\": types \(q.types), expected \(types)")
        c.check(q.entity == expectedEntity, "\"\(question)\": entity \(q.entity ?? "-"), expected \(expectedEntity ?? "-")")
        c.check(q.text == texts[question], "\"\(question)\": text \(q.text ?? "-"), expected \(texts[question] ?? "-")")
        c.check(q.since == range?.lowerBound && q.until == (range?.upperBound == Int64.max ? nil : range?.upperBound),
                "\"\(question)\": range \(q.since.map(TimeText.format) ?? "-")..<\(q.until.map(TimeText.format) ?? "-")")
        checkAnswer(&c, question, interpretation, answer)
    }

    /// Compares the answer to an interpreted question with the oracle's answer to the same query.
    func checkAnswer(_ c: inout Checker, _ question: String, _ interpretation: Interpretation, _ answer: Answer) {
        let w = c.world
        let q = interpretation.query
        switch answer {
        case .events(let page):
            let expected = w.expected(q)
            c.check(page.events.map(\.id) == expected.prefix(q.limit).map(\.event.id), "\"\(question)\": \(page.events.count) events, expected the first \(q.limit) of \(expected.count)")
            c.check((page.nextCursor != nil) == (expected.count > q.limit), "\"\(question)\": next cursor \(page.nextCursor == nil ? "missing" : "present") with \(expected.count) matching")
        case .count(let n, let breakdown):
            switch interpretation.action {
            case .countDistinct(let key):
                let groups = w.expectedGroups(q, by: key)
                c.check(n == groups.count, "\"\(question)\": \(n) distinct, expected \(groups.count)")
                c.check(breakdown == groups, "\"\(question)\": breakdown differs")
            default:
                let expected = w.expected(q).count
                c.check(n == expected, "\"\(question)\": count \(n), expected \(expected)")
                c.check(breakdown == w.expectedGroups(q, by: .type), "\"\(question)\": breakdown by type differs")
            }
        case .groups(let groups):
            if case .group(let key, let top) = interpretation.action {
                c.check(groups == w.expectedGroups(q, by: key, top: top), "\"\(question)\": groups differ (\(groups.count) vs \(w.expectedGroups(q, by: key, top: top).count))")
            }
        case .chain(let events):
            var target = q
            target.limit = 1
            let newest = w.expected(target).first
            let expected = newest.map { w.expectedChain($0.event.id) } ?? []
            c.check(events.map(\.id) == expected, "\"\(question)\": chain of \(events.count), expected \(expected.count)")
        }
    }

    // MARK: Traversal and grid state

    func checkTraversals(_ c: inout Checker, _ rng: inout SeededRandom, count: Int) throws {
        let w = c.world
        let graph = w.graph
        func pick<T>(_ a: [T]) -> T { a[Int(rng.next() % UInt64(a.count))] }
        for _ in 0..<count {
            let someEvent = w.events[Int(rng.next() % UInt64(w.events.count))]
            let start = pick([pick(w.agents), pick(w.nodes), someEvent.id, GridEvent.timeBucketId(someEvent.timestamp)])
            let depth = 1 + Int(rng.next() % 3)
            let limit = pick([20, 200, 1000])
            let perNode = pick([5, 50, 500])
            let got = try w.engine.neighbors(of: start, depth: depth, limit: limit, perNode: perNode)
            let expected = w.expectedTraversal(from: start, depth: depth, limit: limit, perNode: perNode, graph: graph)
            let what = "traversal from \(start) depth \(depth) limit \(limit) per node \(perNode)"
            c.check(got.nodes == expected.nodes, "\(what): \(got.nodes.count) nodes, expected \(expected.nodes.count)")
            c.check(got.edges == expected.edges, "\(what): \(got.edges.count) edges, expected \(expected.edges.count)")
            c.check(got.truncated == expected.truncated, "\(what): truncated \(got.truncated), expected \(expected.truncated)")
        }
    }

    func checkGridState(_ c: inout Checker) {
        let w = c.world
        let (agents, nodes) = w.replayGridState()
        let gotNodes = w.engine.nodeStates()
        let gotAgents = w.engine.agentStates()
        c.check(gotNodes.count == nodes.count, "\(gotNodes.count) nodes in the grid state, replay finds \(nodes.count)")
        c.check(gotNodes == nodes, "node states differ from the replay: first \(zip(gotNodes, nodes).first { $0 != $1 }.map { "\($0.0) vs \($0.1)" } ?? "-")")
        c.check(gotAgents.count == agents.count, "\(gotAgents.count) agents in the grid state, replay finds \(agents.count)")
        c.check(gotAgents == agents, "agent states differ from the replay: first \(zip(gotAgents, agents).first { $0 != $1 }.map { "\($0.0.agentId): \($0.0.health) vs \($0.1.health)" } ?? "-")")
        // The fold the daemon keeps (GridStateKeeper), replayed in position order and in arrival order.
        let folded = GridFold.replay(w.store).states()
        c.check(folded.nodes == nodes && folded.agents == agents, "GridFold.replay differs from the replay")
        var arrival = GridFold()
        for e in w.events { arrival.apply(e) }
        c.check(arrival.states().nodes == nodes && arrival.states().agents == agents, "GridFold in arrival order differs from the replay")
    }
}

/// Appends copies of its template events (fresh ids) from its own thread until stopped, remembering the ids.
final class ConcurrentWriter: @unchecked Sendable {
    let store: EventStore
    let template: [GridEvent]
    private let lock = NSLock()
    private var ids: Set<String> = []
    private var running = true
    private var thread: Thread?
    private let done = DispatchSemaphore(value: 0)

    init(store: EventStore, template: [GridEvent]) {
        self.store = store
        self.template = template
    }

    var written: Set<String> { lock.withLock { ids } }

    func start() {
        let t = Thread { [self] in
            var round = 0
            while lock.withLock({ running }) {
                round += 1
                let batch = template.shuffled().prefix(20).map { e in
                    GridEvent(id: e.id + "w\(round)", timestamp: e.timestamp, kind: e.kind)
                }
                if (try? store.append(batch.flatMap { $0.records() })) != nil {
                    lock.withLock { for e in batch { ids.insert(e.id) } }
                }
                usleep(200)
            }
            done.signal()
        }
        thread = t
        t.start()
    }

    func stop() {
        lock.withLock { running = false }
        done.wait()
    }
}
