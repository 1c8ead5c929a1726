import EventRecords
import EventStore
import Foundation
import GridEvents
import QueryOracle
import Testing
@testable import EventQuery

@Suite("Query engine against a generated fixture")
struct QueryEngineTests {
    let f: Fixture
    init() throws { f = try Fixture() }

    func all(_ q: EventQuery) throws -> [GridEvent] {
        var q = q
        q.limit = 200
        var out: [GridEvent] = []
        while true {
            let page = try f.engine.find(q)
            out += page.events
            guard let next = page.nextCursor else { return out }
            q.cursor = next
        }
    }

    /// Same events; order checked by timestamp (ties may be in any order).
    func same(_ a: [GridEvent], _ b: [GridEvent], newestFirst: Bool = true) -> Bool {
        Set(a.map(\.id)) == Set(b.map(\.id)) && a.count == b.count
            && a.map(\.timestamp) == (newestFirst ? a.map(\.timestamp).sorted(by: >) : a.map(\.timestamp).sorted())
    }

    @Test func filtersCombineFreely() throws {
        let hour: Int64 = 3_600_000_000
        let window = (Fixture.dayStart + 3 * hour)..<(Fixture.dayStart + 9 * hour)
        let cases: [(EventQuery, [GridEvent])] = [
            (EventQuery(types: [.spawnFailed]), f.expected(types: [.spawnFailed])),
            (EventQuery(types: [.nodeCrashed, .stopFailed], since: window.lowerBound, until: window.upperBound),
             f.expected(types: [.nodeCrashed, .stopFailed], range: window)),
            (EventQuery(entity: "agent-003"), f.expected(entity: "agent-003")),
            (EventQuery(types: [.agentHeartbeat], entity: "agent-005", since: window.lowerBound, until: window.upperBound),
             f.expected(types: [.agentHeartbeat], entity: "agent-005", range: window)),
            (EventQuery(idPrefix: "event-spawn_*"), f.expected(prefix: "event-spawn_")),
            (EventQuery(since: window.lowerBound, idPrefix: "event-stop_failed-"), f.expected(range: window.lowerBound..<Int64.max, prefix: "event-stop_failed-")),
            (EventQuery(since: window.lowerBound, until: window.upperBound), f.expected(range: window)),
            (EventQuery(entity: "cluster", since: window.lowerBound), f.expected(entity: "cluster", range: window.lowerBound..<Int64.max)),
        ]
        for (q, expected) in cases {
            let got = try all(q)
            #expect(!expected.isEmpty, "fixture should exercise \(q)")
            #expect(same(got, expected), "\(q): got \(got.count), expected \(expected.count)")
            var oldest = q
            oldest.newestFirst = false
            let gotOldest = try all(oldest)
            #expect(same(gotOldest, expected, newestFirst: false), "oldest first \(q)")
        }
    }

    @Test func cursorStaysValidWhileEventsArrive() throws {
        var q = EventQuery(types: [.agentHeartbeat], limit: 100)
        let first = try f.engine.find(q)
        #expect(first.events.count == 100)
        // New events (newer than everything) arrive between pages.
        let late = (0..<50).map { i in
            GridEvent(id: "event-agent_heartbeat-ffffffffffff-\(i)", timestamp: Fixture.dayStart + 90_000_000_000 + Int64(i),
                      kind: .agentHeartbeat(agentId: "agent-001", storageNodeCount: 1))
        }
        try f.store.append(late.flatMap { $0.records() })
        var seen = first.events.map(\.id)
        q.cursor = first.nextCursor
        while let cursor = q.cursor {
            let page = try f.engine.find(q)
            seen += page.events.map(\.id)
            q.cursor = page.nextCursor
            _ = cursor
        }
        let expected = f.expected(types: [.agentHeartbeat])
        #expect(seen.count == expected.count, "every original event exactly once, none of the late ones")
        #expect(Set(seen) == Set(expected.map(\.id)))
    }

    @Test func badLimitsAndCursorsAreRefused() {
        #expect(throws: QueryError.self) { try f.engine.find(EventQuery(limit: 0)) }
        #expect(throws: QueryError.self) { try f.engine.find(EventQuery(limit: 5000)) }
        #expect(throws: QueryError.self) { try f.engine.find(EventQuery(cursor: "garbage")) }
    }

    @Test func countsAndGroupsMatchTheFixture() {
        let hour: Int64 = 3_600_000_000
        let window = (Fixture.dayStart + 5 * hour)..<(Fixture.dayStart + 6 * hour)
        for t in EventType.allCases where t != .custom {
            let q = EventQuery(types: [t], since: window.lowerBound, until: window.upperBound)
            #expect(f.engine.count(q) == f.expected(types: [t], range: window).count, "\(t)")
        }
        #expect(f.engine.count(EventQuery()) == f.events.count)
        #expect(f.engine.count(EventQuery(types: [.nodeCrashed], entity: "agent-002")) == f.expected(types: [.nodeCrashed], entity: "agent-002").count)

        let byType = f.engine.group(EventQuery(), by: .type)
        let expectedByType = Dictionary(grouping: f.events, by: \.typeName).mapValues(\.count)
        #expect(Dictionary(uniqueKeysWithValues: byType.map { ($0.key, $0.count) }) == expectedByType)
        #expect(byType.map(\.count) == byType.map(\.count).sorted(by: >))

        let failures: [EventType] = [.spawnFailed, .stopFailed, .nodeCrashed]
        let byAgent = f.engine.group(EventQuery(types: failures), by: .agent, top: 3)
        var expectedAgents: [String: Int] = [:]
        for e in f.events where failures.contains(e.type) {
            for (n, v) in e.kind.namedFields where n == "agent_id" { if case .string(let a) = v { expectedAgents[a, default: 0] += 1 } }
        }
        let top3 = expectedAgents.sorted { $0.value != $1.value ? $0.value > $1.value : $0.key < $1.key }.prefix(3)
        #expect(byAgent == top3.map { Bucket(key: $0.key, count: $0.value) })

        let byHour = f.engine.group(EventQuery(types: [.agentHeartbeat]), by: .hour)
        #expect(byHour.count == 24)
        let expectedHours = Dictionary(grouping: f.events.filter { $0.type == .agentHeartbeat }) { TimeText.format($0.timestamp / hour * hour) }.mapValues(\.count)
        #expect(Dictionary(uniqueKeysWithValues: byHour.map { ($0.key, $0.count) }) == expectedHours)

        // By hour with an entity filter: only that entity's events count (a `where` once covered `.day` alone, so
        // minute and hour groups ignored the entity).
        let agentHours = f.engine.group(EventQuery(types: [.agentHeartbeat], entity: "agent-002"), by: .hour)
        let expectedAgentHours = Dictionary(grouping: f.expected(types: [.agentHeartbeat], entity: "agent-002")) {
            TimeText.format($0.timestamp / hour * hour)
        }.mapValues(\.count)
        #expect(Dictionary(uniqueKeysWithValues: agentHours.map { ($0.key, $0.count) }) == expectedAgentHours)

        let byNode = f.engine.group(EventQuery(types: [.nodeCrashed]), by: .node)
        #expect(byNode.reduce(0) { $0 + $1.count } == f.expected(types: [.nodeCrashed]).count)
    }

    @Test func traversalReachesEventsNodesAndTheirEvents() throws {
        let one = try f.engine.neighbors(of: "agent-004", depth: 1, limit: 5000, perNode: 5000)
        let agentEvents = Set(f.expected(entity: "agent-004").map(\.id))
        #expect(Set(one.nodes.filter { $0.kind == .event }.map(\.id)) == agentEvents)
        #expect(one.edges.allSatisfy { $0.source == "agent-004" })

        let three = try f.engine.neighbors(of: "agent-004", depth: 3, limit: 5000, perNode: 5000)
        let crash = f.expected(types: [.spawnFailed], entity: "agent-004").first!
        guard case .spawnFailed(let node, _, _) = crash.kind else { return }
        #expect(three.nodes.contains { $0.id == node && $0.kind == .entity && $0.depth == 2 })
        let nodeEvents = Set(f.expected(entity: node).map(\.id))
        #expect(nodeEvents.isSubset(of: Set(three.nodes.map(\.id))))
        #expect(three.nodes.contains { $0.kind == .time })

        let ofEvent = try f.engine.neighbors(of: crash.id)
        #expect(Set(ofEvent.nodes.map(\.id)) == Set([crash.id, node, "agent-004", GridEvent.timeBucketId(crash.timestamp)]))
        #expect(throws: QueryError.self) { try f.engine.neighbors(of: "agent-004", depth: 9) }
    }

    @Test func chainLeadingToACrash() throws {
        let crash = f.expected(types: [.nodeCrashed]).first!
        let chain = try f.engine.chain(leadingTo: crash.id, limit: 10)
        #expect(chain.last?.id == crash.id)
        #expect(chain.count > 1)
        #expect(chain.map(\.timestamp) == chain.map(\.timestamp).sorted())
        let involved = Set(crash.entities)
        #expect(chain.dropLast().allSatisfy { !involved.isDisjoint(with: $0.entities) && $0.timestamp <= crash.timestamp })
        // The newest earlier events of those entities, nothing skipped in between.
        let expected = f.events.filter { $0.id != crash.id && !involved.isDisjoint(with: $0.entities) && $0.timestamp < crash.timestamp }
            .sorted { $0.timestamp > $1.timestamp }.prefix(9)
        #expect(Set(chain.dropLast().suffix(9).map(\.id)).isSuperset(of: Set(expected.prefix(5).map(\.id))))
        #expect(throws: QueryError.self) { try f.engine.chain(leadingTo: "event-nope-x-1") }
    }
}

@Suite("State derived from events")
struct GridStateTests {
    @Test func agentAndNodeStatesFollowTheirNewestEvents() throws {
        let dir = NSTemporaryDirectory() + "state-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let store = try EventStore.open(at: dir)
        let t: Int64 = 1_764_374_400_000_000
        var n: UInt64 = 0
        func e(_ k: GridEventKind, _ dt: Int64) -> GridEvent {
            n += 1
            return GridEvent(id: GridEvent.makeId(typeName: k.typeName, producerTag: "aaaaaaaaaaaa", sequence: n), timestamp: t + dt * 1_000_000, kind: k)
        }
        let events = [
            e(.agentRegistered(agentId: "agent-a", hostname: "ha", platform: "linux", agentEndpoint: "127.0.0.1:1", maxStorageNodes: 4), 0),
            e(.agentRegistered(agentId: "agent-b", hostname: "hb", platform: "linux", agentEndpoint: "127.0.0.1:2", maxStorageNodes: 4), 1),
            e(.agentRegistered(agentId: "agent-c", hostname: "hc", platform: "linux", agentEndpoint: "127.0.0.1:3", maxStorageNodes: 4), 2),
            e(.spawnRequested(nodeId: "node-1", agentId: "agent-a", port: 5001, storagePath: "/d/1", memoryLimitMb: 256), 3),
            e(.spawnSucceeded(nodeId: "node-1", agentId: "agent-a", pid: 100, port: 5001), 4),
            e(.spawnRequested(nodeId: "node-2", agentId: "agent-a", port: 5002, storagePath: "/d/2", memoryLimitMb: 256), 5),
            e(.spawnSucceeded(nodeId: "node-2", agentId: "agent-a", pid: 101, port: 5002), 6),
            e(.nodeCrashed(nodeId: "node-2", agentId: "agent-a", exitCode: nil, signal: 9), 7),
            e(.nodeRestarted(nodeId: "node-2", agentId: "agent-a", restartCount: 1, newPid: 102), 8),
            e(.spawnRequested(nodeId: "node-3", agentId: "agent-b", port: 5003, storagePath: "/nope", memoryLimitMb: 256), 9),
            e(.spawnFailed(nodeId: "node-3", agentId: "agent-b", error: "not writable"), 10),
            e(.agentHeartbeat(agentId: "agent-a", storageNodeCount: 2), 20),
            e(.agentDegraded(agentId: "agent-b", secondsSinceHeartbeat: 16), 30),
            e(.agentOffline(agentId: "agent-b", lastSeen: t + 10_000_000), 45),
            e(.spawnRequested(nodeId: "node-4", agentId: "agent-c", port: 5004, storagePath: "/d/4", memoryLimitMb: 256), 50),
            e(.spawnSucceeded(nodeId: "node-4", agentId: "agent-c", pid: 103, port: 5004), 51),
            e(.stopRequested(nodeId: "node-4", agentId: "agent-c"), 52),
            e(.stopSucceeded(nodeId: "node-4", agentId: "agent-c"), 53),
            e(.agentUnregistered(agentId: "agent-c"), 54),
            e(.agentHeartbeat(agentId: "agent-a", storageNodeCount: 2), 80),
        ]
        try store.append(events.shuffled().flatMap { $0.records() })
        let engine = QueryEngine(store: store)
        let agents = Dictionary(uniqueKeysWithValues: engine.agentStates().map { ($0.agentId, $0) })
        #expect(agents.count == 3)
        #expect(agents["agent-a"]?.health == .healthy)
        #expect(agents["agent-a"]?.lastHeartbeat == t + 80_000_000)
        #expect(agents["agent-a"]?.hostname == "ha")
        #expect(agents["agent-b"]?.health == .offline)
        #expect(agents["agent-b"]?.lastTransition == "agent_offline")
        #expect(agents["agent-b"]?.lastHeartbeat == t + 1_000_000)
        #expect(agents["agent-c"]?.health == .unregistered)
        let nodes = Dictionary(uniqueKeysWithValues: engine.nodeStates().map { ($0.nodeId, $0) })
        #expect(nodes["node-1"]?.state == .running)
        #expect(nodes["node-1"]?.pid == 100)
        #expect(nodes["node-2"]?.state == .restarted)
        #expect(nodes["node-2"]?.pid == 102)
        #expect(nodes["node-2"]?.restartCount == 1)
        #expect(nodes["node-3"]?.state == .failed)
        #expect(nodes["node-3"]?.detail == "not writable")
        #expect(nodes["node-4"]?.state == .stopped)
        #expect(agents["agent-a"]?.nodes.map(\.nodeId).sorted() == ["node-1", "node-2"])
    }
}
