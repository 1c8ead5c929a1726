import EventStore
import Foundation
import GridEvents
import QueryOracle
import Testing
@testable import EventQuery

@Suite("Plain-English questions with a fixed clock")
struct TranslatorTests {
    /// 2025-11-29T18:30:00Z (a Saturday; the week began Monday 2025-11-24).
    static let now: Int64 = 1_764_441_000_000_000
    static let midnight: Int64 = 1_764_374_400_000_000
    static let monday: Int64 = 1_763_942_400_000_000
    let translator = Translator(now: { TranslatorTests.now })
    let hour: Int64 = 3_600_000_000

    func interpret(_ q: String) throws -> Interpretation { try translator.interpret(q) }

    @Test func spawnFailuresToday() throws {
        let i = try interpret("show spawn failures today")
        #expect(i.action == .list)
        #expect(i.query.types == [.spawnFailed])
        #expect(i.query.since == Self.midnight)
        #expect(i.query.until == nil)
        #expect(i.sentence == "Spawn failures today, newest first.")
    }

    @Test func textSearches() throws {
        let failures: Set<EventType> = [.spawnFailed, .stopFailed, .nodeCrashed]
        let disk = try interpret("show errors mentioning disk full today")
        #expect(disk.action == .list)
        #expect(Set(disk.query.types) == failures)
        #expect(disk.query.text == "disk full")
        #expect(disk.query.since == Self.midnight)
        #expect(disk.sentence == "Failures (spawn failures, stop failures, crashes) mentioning disk full today, newest first.")
        let refused = try interpret("which nodes failed with connection refused this week")
        #expect(refused.action == .group(.node, top: nil))
        #expect(Set(refused.query.types) == failures)
        #expect(refused.query.text == "connection refused")
        #expect(refused.query.since == Self.monday)
        // Quoted words stay a phrase; a filler word after "with" is skipped; "for <entity>" ends the text.
        let quoted = try interpret("show crashes with the error \"Connection Refused\" timeout for node-7 yesterday")
        #expect(quoted.query.text == "\"connection refused\" timeout")
        #expect(quoted.query.entity == "node-7")
        #expect(quoted.query.types == [.nodeCrashed])
        #expect(quoted.query.until == Self.midnight)
        let count = try interpret("how many events mention /dev/sda1")
        #expect(count.action == .count)
        #expect(count.query.text == "/dev/sda1")
        let which = try interpret("which agents mention out of memory")
        #expect(which.action == .group(.agent, top: nil))
        #expect(which.query.text == "out of memory")
        let logs = try interpret("show logs mentioning connection refused today")
        #expect(logs.action == .list)
        #expect(logs.query.types == [.log])
        #expect(logs.query.text == "connection refused")
        #expect(throws: TranslationError.self) { try interpret("show errors mentioning") }
        #expect(throws: TranslationError.self) { try interpret("show errors mentioning ...") }
        // "with" after words that are not failures is not a search.
        #expect(try interpret("top 5 agents by failures this week").query.text == nil)
    }

    @Test func spawnEventsToday() throws {
        let i = try interpret("spawn events today")
        #expect(i.action == .list)
        #expect(Set(i.query.types) == [.spawnRequested, .spawnSucceeded, .spawnFailed])
        #expect(i.query.since == Self.midnight)
    }

    @Test func countSpawnFailuresThisWeek() throws {
        let i = try interpret("count spawn failures this week")
        #expect(i.action == .count)
        #expect(i.query.types == [.spawnFailed])
        #expect(i.query.since == Self.monday)
    }

    @Test func entityTimelines() throws {
        for q in ["what happened to agent-001", "agent-001 timeline", "What happened to agent-001?"] {
            let i = try interpret(q)
            #expect(i.action == .list, "\(q)")
            #expect(i.query.entity == "agent-001")
            #expect(i.query.types.isEmpty)
        }
        let crash = try interpret("what's the crash history of node-abc123")
        #expect(crash.action == .list)
        #expect(crash.query.entity == "node-abc123")
        #expect(crash.query.types == [.nodeCrashed])
    }

    @Test func howManyNodesCrashedThisWeek() throws {
        let i = try interpret("how many nodes crashed this week")
        #expect(i.action == .countDistinct(.node))
        #expect(i.query.types == [.nodeCrashed])
        #expect(i.query.since == Self.monday)
    }

    @Test func whichAgentsWentOfflineInTheLastHour() throws {
        let i = try interpret("which agents went offline in the last hour")
        #expect(i.action == .group(.agent, top: nil))
        #expect(i.query.types == [.agentOffline])
        #expect(i.query.since == Self.now - hour)
        #expect(i.sentence.contains("in the last hour"))
    }

    @Test func eventsLeadingToACrash() throws {
        let i = try interpret("show the events leading to node-7 crash")
        #expect(i.action == .chain)
        #expect(i.query.entity == "node-7")
        #expect(i.query.types == [.nodeCrashed])
    }

    @Test func topAgentsByFailures() throws {
        let i = try interpret("top 5 agents by failures this week")
        #expect(i.action == .group(.agent, top: 5))
        #expect(Set(i.query.types) == [.spawnFailed, .stopFailed, .nodeCrashed])
        #expect(i.query.since == Self.monday)
    }

    @Test func timePhrases() throws {
        let cases: [(String, Int64, Int64?)] = [
            ("show crashes today", Self.midnight, nil),
            ("show crashes yesterday", Self.midnight - 24 * hour, Self.midnight),
            ("show crashes this week", Self.monday, nil),
            ("show crashes last week", Self.monday - 7 * 24 * hour, Self.monday),
            ("show crashes in the last 30 minutes", Self.now - 30 * 60_000_000, nil),
            ("show crashes last 6 hours", Self.now - 6 * hour, nil),
            ("show crashes in the past 2 days", Self.now - 48 * hour, nil),
            ("show crashes since 14:00", Self.midnight + 14 * hour, nil),
            ("show crashes since 20:00", Self.midnight + 20 * hour - 24 * hour, nil),
            ("show crashes between 09:30 and 11:00", Self.midnight + 9 * hour + 30 * 60_000_000, Self.midnight + 11 * hour),
        ]
        for (q, since, until) in cases {
            let i = try interpret(q)
            #expect(i.query.since == since, "\(q)")
            #expect(i.query.until == until, "\(q)")
            #expect(i.query.types == [.nodeCrashed], "\(q)")
        }
    }

    @Test func unreadableQuestionsGetSuggestions() {
        for q in ["", "tell me a joke", "what is the meaning of life", "count", "show crashes since teatime", String(repeating: "x", count: 600)] {
            do {
                let i = try translator.interpret(q)
                Issue.record("\"\(q)\" should not be understood, got \(i.sentence)")
            } catch {
                #expect(!error.suggestions.isEmpty, "\(q)")
                #expect(!error.message.isEmpty)
            }
        }
        do {
            _ = try translator.interpret("show me the crashes of the spaceship")
        } catch {
            Issue.record("a question with an event kind is readable: \(error.message)")
        }
    }

    @Test func answersMatchTheFixture() throws {
        // The fixture's day is 2025-11-29, the same as `now`.
        let f = try Fixture()
        let clock = Translator(now: { Fixture.dayStart + 86_400_000_000 - 1 })
        let (_, countAnswer) = try f.engine.ask("count spawn failures today", translator: clock)
        guard case .count(let n, let breakdown) = countAnswer else { Issue.record("expected a count"); return }
        #expect(n == f.expected(types: [.spawnFailed]).count)
        #expect(breakdown == [Bucket(key: "spawn_failed", count: n)])

        let (_, crashed) = try f.engine.ask("how many nodes crashed today", translator: clock)
        guard case .count(let nodes, let perNode) = crashed else { Issue.record("expected a count"); return }
        let crashedNodes = Set(f.expected(types: [.nodeCrashed]).flatMap { $0.entities.filter { $0.hasPrefix("node-") } })
        #expect(nodes == crashedNodes.count)
        #expect(perNode.reduce(0) { $0 + $1.count } == f.expected(types: [.nodeCrashed]).count)

        let (_, timeline) = try f.engine.ask("what happened to agent-001", translator: clock)
        guard case .events(let page) = timeline else { Issue.record("expected events"); return }
        // The newest 100 of agent-001's events, newest first (events sharing a timestamp may come in any order).
        let expectedTimeline = f.expected(entity: "agent-001")
        #expect(page.events.count == min(100, expectedTimeline.count))
        #expect(page.events.map(\.timestamp) == Array(expectedTimeline.prefix(page.events.count)).map(\.timestamp))
        #expect(Set(page.events.map(\.id)).isSubset(of: Set(expectedTimeline.map(\.id))))

        let (_, top) = try f.engine.ask("top 3 agents by failures today", translator: clock)
        guard case .groups(let groups) = top else { Issue.record("expected groups"); return }
        #expect(groups.count == 3)
        #expect(groups.map(\.count) == groups.map(\.count).sorted(by: >))

        let (_, chain) = try f.engine.ask("show the events leading to node-7 crash", translator: clock)
        guard case .chain(let events) = chain else { Issue.record("expected a chain"); return }
        if let newestCrash = f.expected(types: [.nodeCrashed], entity: "node-7").first {
            #expect(events.last?.id == newestCrash.id)
        } else {
            #expect(events.isEmpty)
        }
    }
}

@Suite("Random questions: the translator never crashes and every answer is the oracle's")
struct TranslatorRobustnessTests {
    @Test func randomQuestions() throws {
        let world = try DiffWorld(seed: 99, shape: DiffShape(events: 3000, hotEvents: 500, agents: 8, nodes: 40, segmentCapacity: 256 << 10))
        var c = DifferentialTests.Checker(world: world, phase: "random questions")
        let vocabulary = ["show", "count", "how", "many", "which", "top", "5", "0", "1000", "agents", "nodes", "by", "spawn",
                          "failures", "crash", "crashed", "offline", "today", "yesterday", "this", "week", "last", "past",
                          "hour", "minutes", "99999999", "since", "14:00", "25:99", "between", "and", "10:00", "09:00",
                          "leading", "to", "before", "node-7", "agent-001", "cluster", "what", "happened", "timeline",
                          "history", "of", "events", "the", "in", "heartbeats", "restarts", "alerts", "-", "--", ":", "node-",
                          "agent-", "ñ", "🙂", "critical", "degraded"]
        var rng = SeededRandom(seed: 99)
        let translator = Translator(now: { [now = world.now] in now })
        var understood = 0
        for _ in 0..<500 {
            let n = 1 + Int(rng.next() % 8)
            let question = (0..<n).map { _ in vocabulary[Int(rng.next() % UInt64(vocabulary.count))] }.joined(separator: " ")
            guard let interpretation = try? translator.interpret(question) else { continue }
            understood += 1
            let answer = try world.engine.answer(interpretation)
            DifferentialTests().checkAnswer(&c, question, interpretation, answer)
            // Also page past the end with a cursor from the far past and one from before time began (no event has
            // either timestamp).
            guard case .list = interpretation.action else { continue }
            var q = interpretation
            q.query.cursor = "c1" + String(repeating: "f", count: 32)
            DifferentialTests().checkAnswer(&c, question + " (cursor at -1)", q, try world.engine.answer(q))
            q.query.cursor = "c1" + String(repeating: "0", count: 32)
            q.query.newestFirst = false
            DifferentialTests().checkAnswer(&c, question + " (oldest first from 0)", q, try world.engine.answer(q))
        }
        #expect(understood > 50, "the vocabulary makes questions the grammar reads")
        #expect(c.failures == 0)
        print("random questions: \(understood) understood, \(c.checks) answers checked")
    }
}
