import EventDaemon
import EventQuery
import EventStore
import Foundation
import GridEvents
import Hummingbird
import HummingbirdTesting
import Logging
import NIOCore
import QueryOracle
import Testing

/// A daemon serving a generated world (its newest events now), and the world's oracle to check answers with.
final class WorldAPI: @unchecked Sendable {
    let world: DiffWorld
    let daemon: GridEventDaemon
    let app: Application<RouterResponder<BasicRequestContext>>

    init(seed: UInt64, checkpointInterval: Int? = nil) throws {
        world = try DiffWorld(
            seed: seed, shape: DiffShape(events: 9_000, hotEvents: 400, agents: 25, nodes: 150, segmentCapacity: 512 << 10),
            now: StoreOptions.nowMicros())
        world.closeStore()
        var config = DaemonConfig(dataDirectory: world.dir)
        config.socketPath = world.dir + ".sock"
        config.metricsIntervalSeconds = 3600
        if let checkpointInterval { config.gridCheckpointInterval = checkpointInterval }
        var logger = Logger(label: "test")
        logger.logLevel = .warning
        daemon = GridEventDaemon(config: config, logger: logger)
        try daemon.start()
        app = Application(router: HTTPAPI.router(daemon.apiContext()!), configuration: .init(address: .hostname("127.0.0.1", port: 0)), logger: logger)
    }

    deinit {
        daemon.shutdown()
        unlink(world.dir + ".sock")
    }
}

/// Answers of the HTTP routes compared with the oracle's, value by value: the structured filter at every limit,
/// the derived agent and node states, traversals and the timeline chart.
@Suite("HTTP answers equal the oracle's", .serialized)
struct HTTPAnswersTests {
    func get(_ client: some TestClientProtocol, _ uri: String) async throws -> [String: Any] {
        let r = try await client.execute(uri: uri, method: .get)
        #expect(r.status == .ok, "\(uri): \(String(buffer: r.body).prefix(300))")
        return try #require(try JSONSerialization.jsonObject(with: Data(buffer: r.body)) as? [String: Any])
    }

    @Test func pagesOfEveryLimitAreWhole() async throws {
        let api = try WorldAPI(seed: DiffSettings.firstSeed)
        let w = api.world
        // The issue's case: a type with a few hundred events since a moment, asked with limit=1000.
        let counts = Dictionary(grouping: w.events, by: \.type).mapValues(\.count)
        let type = counts.filter { $0.value > 300 && $0.value < 1000 && $0.key != .custom }.keys.sorted { $0.rawValue < $1.rawValue }.first
            ?? counts.max { $0.value < $1.value }!.key
        let since = TimeText.format(w.start + 3_600_000_000)
        try await api.app.test(.live) { client in
            var q = EventQuery(types: [type], since: TimeText.parse(since))
            let expected = w.expected(q).map(\.event.id)
            #expect(expected.count > 256, "fixture: more events than the old 256-event chunk (\(expected.count))")
            for limit in [1000, 999, 300, 257, 256, 50, 7] {
                var got: [String] = []
                var cursor: String?
                var first = true
                repeat {
                    let uri = "/api/events?type=\(type.name)&since=\(since)&limit=\(limit)" + (cursor.map { "&cursor=\($0)" } ?? "")
                    let page = try await get(client, uri)
                    let ids = (page["events"] as? [[String: Any]] ?? []).compactMap { $0["id"] as? String }
                    if first { #expect(ids.count == min(limit, expected.count), "limit \(limit): first page \(ids.count)") }
                    first = false
                    got += ids
                    cursor = page["next_cursor"] as? String
                } while cursor != nil
                #expect(got == expected, "limit \(limit): \(got.count) of \(expected.count)")
            }
            q.newestFirst = false
            let oldest = try await get(client, "/api/events?type=\(type.name)&since=\(since)&limit=1000&order=oldest")
            #expect((oldest["events"] as? [[String: Any]])?.compactMap { $0["id"] as? String } == Array(w.expected(q).map(\.event.id).prefix(1000)))
            let stats = try await get(client, "/api/stats")
            #expect(stats["events"] as? Int == w.events.count)
            #expect(stats["types"] as? [String: Int] == Dictionary(grouping: w.events, by: \.type.name).mapValues(\.count))
        }
    }

    static func t(_ micros: Int64?) -> String? { micros.map(TimeText.format) }

    static func nodeJSON(_ n: NodeState) -> [String: String] {
        ["node_id": n.nodeId, "agent_id": n.agentId, "state": n.state.rawValue, "pid": n.pid.map(String.init) ?? "null",
         "port": n.port.map(String.init) ?? "null", "restart_count": String(n.restartCount), "last_event": n.lastEvent,
         "last_event_at": TimeText.format(n.lastEventAt), "detail": n.detail ?? "null"]
    }

    /// A JSON object's values as text (null as "null"), for comparing with expected values.
    static func strings(_ o: [String: Any]) -> [String: String] {
        o.compactMapValues { v in
            if v is NSNull { return "null" }
            if let s = v as? String { return s }
            if let n = v as? Int { return String(n) }
            return nil
        }
    }

    @Test func agentsAtAMomentAreTheReplayUpToIt() async throws {
        let api = try WorldAPI(seed: DiffSettings.firstSeed ^ 9, checkpointInterval: 800)
        let w = api.world
        #expect((api.daemon.gridState?.checkpoints.count ?? 0) >= 5, "fixture: the daemon's replay wrote checkpoints")
        var rng = SeededRandom(seed: w.seed)
        let moments = [w.start - 1] + (0..<7).map { _ in w.start + Int64(rng.next() % UInt64(w.now - w.start)) }
        try await api.app.test(.live) { client in
            for t in moments {
                let (agents, nodes) = w.replayGridState(through: t)
                let answer = try await get(client, "/api/grid/agents?at=" + TimeText.format(t))
                #expect(answer["at"] as? String == TimeText.format(t))
                let gotAgents = try #require(answer["agents"] as? [[String: Any]])
                let gotNodes = try #require(answer["nodes"] as? [[String: Any]])
                #expect(gotNodes.map(Self.strings) == nodes.map(Self.nodeJSON), "nodes at \(TimeText.format(t))")
                #expect(gotAgents.map { $0["agent_id"] as? String } == agents.map(\.agentId), "agents at \(TimeText.format(t))")
                for (got, a) in zip(gotAgents, agents) {
                    #expect(got["state"] as? String == a.health.rawValue, "\(a.agentId) at \(TimeText.format(t))")
                    #expect(got["last_transition"] as? String == a.lastTransition)
                    #expect(got["last_heartbeat"] as? String == Self.t(a.lastHeartbeat))
                    #expect((got["nodes"] as? [[String: Any]])?.map(Self.strings) == a.nodes.map(Self.nodeJSON))
                }
            }
            for bad in ["yesterday", "2026-13-01T00:00:00Z", "1795392000"] {
                let r = try await client.execute(uri: "/api/grid/agents?at=" + bad, method: .get)
                #expect(r.status == .badRequest, "at=\(bad)")
                let body = try JSONSerialization.jsonObject(with: Data(buffer: r.body)) as? [String: Any]
                #expect((body?["error"] as? [String: Any])?["code"] as? String == "bad_time", "at=\(bad): \(String(buffer: r.body))")
            }
        }
    }

    @Test func agentsAreTheReplayOfEveryEvent() async throws {
        let api = try WorldAPI(seed: DiffSettings.firstSeed ^ 1)
        let (agents, nodes) = api.world.replayGridState()
        #expect(agents.count > 10 && nodes.count > 50, "fixture: a grid worth checking (\(agents.count) agents, \(nodes.count) nodes)")
        try await api.app.test(.live) { client in
            let answer = try await get(client, "/api/grid/agents")
            let gotAgents = try #require(answer["agents"] as? [[String: Any]])
            let gotNodes = try #require(answer["nodes"] as? [[String: Any]])
            #expect(gotNodes.map(Self.strings) == nodes.map(Self.nodeJSON))
            #expect(gotAgents.count == agents.count)
            for (got, a) in zip(gotAgents, agents) {
                let expected: [String: String] = [
                    "agent_id": a.agentId, "state": a.health.rawValue, "last_heartbeat": Self.t(a.lastHeartbeat) ?? "null",
                    "last_transition": a.lastTransition, "last_transition_at": TimeText.format(a.lastTransitionAt),
                    "hostname": a.hostname ?? "null", "endpoint": a.endpoint ?? "null",
                ]
                #expect(Self.strings(got) == expected, "\(a.agentId)")
                #expect((got["nodes"] as? [[String: Any]])?.map(Self.strings) == a.nodes.map(Self.nodeJSON), "nodes of \(a.agentId)")
            }
        }
    }

    @Test func traversalsAndTheTimelineAreTheOracles() async throws {
        let api = try WorldAPI(seed: DiffSettings.firstSeed ^ 2)
        let w = api.world
        try await api.app.test(.live) { client in
            var rng = SeededRandom(seed: w.seed)
            for i in 0..<10 {
                let event = w.events[Int(rng.next() % UInt64(w.events.count))]
                let start = [w.agents[i % w.agents.count], w.nodes[i % w.nodes.count], event.id, GridEvent.timeBucketId(event.timestamp)][i % 4]
                let depth = 1 + i % 3
                let limit = [15, 150, 900][i % 3]
                let perNode = [4, 40, 400][(i / 3) % 3]
                let answer = try await get(client, "/api/graph/neighbors?id=\(start)&depth=\(depth)&limit=\(limit)&per_node=\(perNode)")
                let expected = w.expectedTraversal(from: start, depth: depth, limit: limit, perNode: perNode, graph: w.graph)
                let nodes = (answer["nodes"] as? [[String: Any]] ?? []).map { "\($0["id"] ?? "")|\($0["kind"] ?? "")|\($0["depth"] ?? "")" }
                #expect(nodes == expected.nodes.map { "\($0.id)|\($0.kind.rawValue)|\($0.depth)" }, "traversal from \(start)")
                let edges = (answer["edges"] as? [[String: Any]] ?? []).map { "\($0["source"] ?? "")>\($0["target"] ?? "")|\($0["edge_type"] ?? "")|\($0["timestamp"] ?? "")" }
                #expect(edges == expected.edges.map { "\($0.source)>\($0.target)|\($0.edgeType)|\(TimeText.format($0.timestamp))" }, "edges from \(start)")
                #expect(answer["truncated"] as? Bool == expected.truncated, "truncated from \(start)")
            }
            // The chart over the last week: every bucket's count per type, from the answer's own start and width.
            let chart = try await get(client, "/api/timeline?minutes=10080&buckets=500")
            let startText = try #require(chart["start"] as? String)
            let start = try #require(TimeText.parse(startText))
            let seconds = try #require(chart["bucket_seconds"] as? Double)
            let width = Int64((seconds * 1e6).rounded())
            var expected: [String: [Int]] = [:]
            for e in w.events where e.timestamp >= start && e.timestamp < start + 500 * width {
                expected[e.type.name, default: Array(repeating: 0, count: 500)][Int((e.timestamp - start) / width)] += 1
            }
            #expect(expected.values.reduce(0) { $0 + $1.reduce(0, +) } > 1000, "fixture: the chart's week holds events")
            #expect(chart["series"] as? [String: [Int]] == expected)
        }
    }
}
