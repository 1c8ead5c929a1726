import GridEvents

/// Realistic generated grid events for tests, fixtures and benchmarks: the 17 catalogue types in proportions a
/// running grid produces (heartbeats dominate, failures are rare), about 100 agents and 2,000 nodes, real-looking
/// error strings, timestamps spread over a window. Deterministic for a given seed.
public struct SampleGrid: Sendable {
    public var agents: Int
    public var nodes: Int
    public var start: Int64
    public var span: Int64
    private var state: UInt64

    public init(seed: UInt64 = 42, agents: Int = 100, nodes: Int = 2000, start: Int64 = 1_764_374_400_000_000,
                span: Int64 = 86_400_000_000) {
        self.agents = agents
        self.nodes = nodes
        self.start = start
        self.span = span
        self.state = seed &* 0x9E37_79B9_7F4A_7C15 | 1
    }

    private mutating func next() -> UInt64 {
        state ^= state << 13
        state ^= state >> 7
        state ^= state << 17
        return state
    }

    private mutating func below(_ n: Int) -> Int { Int(next() % UInt64(max(n, 1))) }

    static let errors = [
        "port 50051 already in use", "storage path /data/nodes/n-17 is not writable", "out of memory: limit 2048 MB",
        "binary /opt/grid/bin/storage-node not found", "timed out after 10 s waiting for readiness",
        "disk full on /dev/nvme0n1p3", "permission denied opening /var/lib/grid/lock", "agent at its node limit (8)",
    ]

    /// Cumulative weights per type: heartbeats ~60%, spawn/stop lifecycle ~25%, failures and health ~15%.
    static let mix: [(EventType, Int)] = [
        (.agentHeartbeat, 600), (.spawnRequested, 60), (.spawnSucceeded, 55), (.spawnFailed, 8), (.stopRequested, 45),
        (.stopSucceeded, 42), (.stopFailed, 4), (.nodeCrashed, 12), (.nodeRestarted, 11), (.agentRegistered, 20),
        (.agentDegraded, 30), (.agentOffline, 15), (.agentRecovered, 25), (.agentUnregistered, 10),
        (.clusterHealthy, 30), (.clusterDegraded, 22), (.clusterCritical, 11),
    ]

    public func agentId(_ i: Int) -> String {
        let s = String(i + 1)
        return "agent-" + String(repeating: "0", count: max(0, 3 - s.count)) + s
    }

    public func nodeId(_ i: Int) -> String { "node-" + String(i + 1) }

    /// Event `index` of `count`, timestamps increasing over the span (with a little jitter).
    public mutating func event(index: Int, count: Int, producerTag: String = "5a3c9e0d7b21") -> GridEvent {
        let total = Self.mix.reduce(0) { $0 + $1.1 }
        var pick = below(total)
        var type = EventType.agentHeartbeat
        for (t, w) in Self.mix {
            if pick < w { type = t; break }
            pick -= w
        }
        let a = agentId(below(agents))
        let n = nodeId(below(nodes))
        let ts = start + span * Int64(index) / Int64(max(count, 1)) + Int64(below(1000))
        let kind: GridEventKind
        switch type {
        case .agentRegistered: kind = .agentRegistered(agentId: a, hostname: "host-\(a)", platform: "linux-x86_64", agentEndpoint: "10.0.\(below(255)).\(below(255)):7100", maxStorageNodes: 32)
        case .agentHeartbeat: kind = .agentHeartbeat(agentId: a, storageNodeCount: below(32))
        case .agentDegraded: kind = .agentDegraded(agentId: a, secondsSinceHeartbeat: 15 + Double(below(15)))
        case .agentOffline: kind = .agentOffline(agentId: a, lastSeen: ts - 30_000_000 - Int64(below(10_000_000)))
        case .agentRecovered: kind = .agentRecovered(agentId: a, downtimeSeconds: 30 + Double(below(600)))
        case .agentUnregistered: kind = .agentUnregistered(agentId: a)
        case .spawnRequested: kind = .spawnRequested(nodeId: n, agentId: a, port: 50000 + below(1000), storagePath: "/data/nodes/\(n)", memoryLimitMb: 2048)
        case .spawnSucceeded: kind = .spawnSucceeded(nodeId: n, agentId: a, pid: 1000 + below(60000), port: 50000 + below(1000))
        case .spawnFailed: kind = .spawnFailed(nodeId: n, agentId: a, error: Self.errors[below(Self.errors.count)])
        case .stopRequested: kind = .stopRequested(nodeId: n, agentId: a)
        case .stopSucceeded: kind = .stopSucceeded(nodeId: n, agentId: a)
        case .stopFailed: kind = .stopFailed(nodeId: n, agentId: a, error: Self.errors[below(Self.errors.count)])
        case .nodeCrashed: kind = below(2) == 0 ? .nodeCrashed(nodeId: n, agentId: a, exitCode: nil, signal: 9) : .nodeCrashed(nodeId: n, agentId: a, exitCode: 1 + below(3), signal: nil)
        case .nodeRestarted: kind = .nodeRestarted(nodeId: n, agentId: a, restartCount: 1 + below(5), newPid: 1000 + below(60000))
        case .clusterHealthy: kind = .clusterHealthy(totalAgents: agents, healthyAgents: agents, totalNodes: nodes, runningNodes: nodes - below(20))
        case .clusterDegraded: kind = .clusterDegraded(totalAgents: agents, healthyAgents: agents - 1 - below(10), reason: "\(1 + below(10)) agent(s) not healthy")
        case .clusterCritical: kind = .clusterCritical(totalAgents: agents, healthyAgents: below(agents / 2), reason: "majority of agents offline")
        default: kind = .agentHeartbeat(agentId: a, storageNodeCount: 0)
        }
        return GridEvent(id: GridEvent.makeId(typeName: kind.typeName, producerTag: producerTag, sequence: UInt64(index)), timestamp: ts, kind: kind)
    }

    /// `count` events in time order.
    public mutating func events(_ count: Int, producerTag: String = "5a3c9e0d7b21") -> [GridEvent] {
        (0..<count).map { event(index: $0, count: count, producerTag: producerTag) }
    }

    /// One event of every catalogue type plus a custom one, for round-trip tests.
    public static func oneOfEach(timestamp: Int64 = 1_764_382_200_123_456) -> [GridEvent] {
        let kinds: [GridEventKind] = [
            .agentRegistered(agentId: "agent-001", hostname: "host-a", platform: "linux-x86_64", agentEndpoint: "127.0.0.1:7100", maxStorageNodes: 8),
            .agentHeartbeat(agentId: "agent-001", storageNodeCount: 3),
            .agentDegraded(agentId: "agent-001", secondsSinceHeartbeat: 16.5),
            .agentOffline(agentId: "agent-001", lastSeen: timestamp - 31_000_000),
            .agentRecovered(agentId: "agent-001", downtimeSeconds: 42.25),
            .agentUnregistered(agentId: "agent-001"),
            .spawnRequested(nodeId: "node-7", agentId: "agent-001", port: 50051, storagePath: "/tmp/node-7", memoryLimitMb: 2048),
            .spawnSucceeded(nodeId: "node-7", agentId: "agent-001", pid: 4242, port: 50051),
            .spawnFailed(nodeId: "node-7", agentId: "agent-001", error: "storage path \"/nope\" is not writable <b>"),
            .stopRequested(nodeId: "node-7", agentId: "agent-001"),
            .stopSucceeded(nodeId: "node-7", agentId: "agent-001"),
            .stopFailed(nodeId: "node-9", agentId: "agent-001", error: "unknown node node-9"),
            .nodeCrashed(nodeId: "node-7", agentId: "agent-001", exitCode: nil, signal: 9),
            .nodeRestarted(nodeId: "node-7", agentId: "agent-001", restartCount: 1, newPid: 4243),
            .clusterHealthy(totalAgents: 3, healthyAgents: 3, totalNodes: 5, runningNodes: 5),
            .clusterDegraded(totalAgents: 3, healthyAgents: 2, reason: "agent-001 degraded"),
            .clusterCritical(totalAgents: 3, healthyAgents: 0, reason: "no healthy agents"),
            .storageMetrics(events: 1000, bytesOnDisk: 65536, ingestRate: 12.5, ackP99Micros: 800, residentBytes: 50_000_000),
            .eventsDropped(producerId: "grid-master-1", dropped: 17),
            .custom(name: "deploy_finished", fields: ["version": .string("1.2.3"), "ok": .bool(true), "seconds": .double(12.5), "count": .int(3)],
                    entities: ["agent-001", "service-api"]),
        ]
        return kinds.enumerated().map { i, k in
            GridEvent(id: GridEvent.makeId(typeName: k.typeName, producerTag: "00000000abcd", sequence: UInt64(i)), timestamp: timestamp + Int64(i), kind: k)
        }
    }
}
