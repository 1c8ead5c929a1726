import EventEmitter
import Foundation
import GridBase
import GridControl
import GridEvents
import Logging

/// How the master judges agents.
public struct MasterConfig: Sendable {
    public var host = "127.0.0.1"
    public var port = 7000
    /// An agent silent this long is degraded, then offline.
    public var degradedAfterSeconds = 15.0
    public var offlineAfterSeconds = 30.0
    /// How often health is checked (well below the thresholds, so degraded is never skipped).
    public var checkIntervalSeconds = 1.0
    /// At most one agent_heartbeat event per agent per this many seconds.
    public var heartbeatEventIntervalSeconds = 60.0
    /// How long the master waits for an agent to spawn or stop a node (above the agent's 8 s start deadline).
    public var agentTimeoutSeconds = 15.0
    /// The control plane's token, sent as `Authorization: Bearer` when the master calls agents (`ControlToken`).
    public var token: String?

    public init() {}
}

/// What the master knows of one agent.
public struct AgentRecord: Sendable {
    public enum Health: String, Sendable { case healthy, degraded, offline }
    public var agentId: String
    public var hostname: String
    public var platform: String
    public var endpoint: String
    public var maxNodes: Int
    public var health: Health
    public var lastHeartbeat: Int64
    public var lastHeartbeatEvent: Int64
    public var nodes: [String: NodeRecord]
}

/// What the master knows of one storage node.
public struct NodeRecord: Sendable {
    public var nodeId: String
    public var agentId: String
    public var port: Int
    public var storagePath: String
    public var pid: Int?
    public var state: String
}

/// The master's state and every decision that emits an event. An actor: requests and the health checker
/// never race.
public actor Master {
    public let config: MasterConfig
    let events: EventEmitter
    let logger: Logger
    let client: ControlClient
    var agents: [String: AgentRecord] = [:]
    var clusterState: EventType?
    let clock: @Sendable () -> Int64

    public init(config: MasterConfig, events: EventEmitter, logger: Logger, clock: @escaping @Sendable () -> Int64 = { GridClock.nowMicros() }) {
        self.config = config
        self.events = events
        self.logger = logger
        self.client = ControlClient(timeoutSeconds: config.agentTimeoutSeconds, token: config.token)
        self.clock = clock
    }

    // MARK: Agents

    public func register(agentId: String, hostname: String, platform: String, endpoint: String, maxNodes: Int, nodes: [NodeRecord]) throws(ControlError) {
        try validate(agentId, "agent_id")
        guard (0...10_000).contains(maxNodes) else { throw ControlError(status: 400, code: "bad_request", message: "max_storage_nodes must be 0 to 10000") }
        let now = clock()
        var record = AgentRecord(agentId: agentId, hostname: hostname, platform: platform, endpoint: endpoint, maxNodes: maxNodes,
                                 health: .healthy, lastHeartbeat: now, lastHeartbeatEvent: now, nodes: [:])
        for n in nodes { record.nodes[n.nodeId] = n }
        let previous = agents[agentId]
        agents[agentId] = record
        events.emit(.agentRegistered(agentId: agentId, hostname: hostname, platform: platform, agentEndpoint: endpoint, maxStorageNodes: maxNodes))
        if let previous, previous.health != .healthy {
            events.emit(.agentRecovered(agentId: agentId, downtimeSeconds: Double(now - previous.lastHeartbeat) / 1e6))
        }
        logger.info("agent \(agentId) registered from \(endpoint)")
        updateClusterState()
    }

    /// A heartbeat; throws `unknown_agent` (404) for an agent the master does not know, so it re-registers.
    public func heartbeat(agentId: String, nodeCount: Int, nodes: [NodeRecord]?) throws(ControlError) {
        guard var record = agents[agentId] else {
            throw ControlError(status: 404, code: "unknown_agent", message: "agent \(agentId) is not registered; register again")
        }
        let now = clock()
        if record.health != .healthy {
            events.emit(.agentRecovered(agentId: agentId, downtimeSeconds: Double(now - record.lastHeartbeat) / 1e6))
            logger.info("agent \(agentId) recovered")
            record.health = .healthy
        }
        record.lastHeartbeat = now
        if let nodes {
            var map: [String: NodeRecord] = [:]
            for n in nodes { map[n.nodeId] = n }
            record.nodes = map
        }
        if Double(now - record.lastHeartbeatEvent) / 1e6 >= config.heartbeatEventIntervalSeconds {
            events.emit(.agentHeartbeat(agentId: agentId, storageNodeCount: nodeCount))
            record.lastHeartbeatEvent = now
        }
        agents[agentId] = record
        updateClusterState()
    }

    public func unregister(agentId: String) throws(ControlError) {
        guard agents.removeValue(forKey: agentId) != nil else {
            throw ControlError(status: 404, code: "unknown_agent", message: "agent \(agentId) is not registered")
        }
        events.emit(.agentUnregistered(agentId: agentId))
        logger.info("agent \(agentId) unregistered")
        updateClusterState()
    }

    /// Marks silent agents degraded, then offline; called every `checkIntervalSeconds`.
    public func checkHealth() {
        let now = clock()
        for (id, var record) in agents {
            let silent = Double(now - record.lastHeartbeat) / 1e6
            if record.health == .healthy, silent >= config.degradedAfterSeconds {
                record.health = .degraded
                events.emit(.agentDegraded(agentId: id, secondsSinceHeartbeat: (silent * 10).rounded() / 10))
                logger.warning("agent \(id) degraded: no heartbeat for \(Int(silent)) s")
            }
            if record.health == .degraded, silent >= config.offlineAfterSeconds {
                record.health = .offline
                events.emit(.agentOffline(agentId: id, lastSeen: record.lastHeartbeat))
                logger.warning("agent \(id) offline: no heartbeat for \(Int(silent)) s")
            }
            agents[id] = record
        }
        updateClusterState()
    }

    func updateClusterState() {
        let total = agents.count
        let healthy = agents.values.filter { $0.health == .healthy }.count
        let offline = agents.values.filter { $0.health == .offline }.count
        let nodes = agents.values.flatMap { $0.nodes.values }
        let running = nodes.filter { $0.state == "running" || $0.state == "restarted" }.count
        let state: EventType
        let reason: String
        if total > 0, offline * 2 > total || healthy == 0 {
            state = .clusterCritical
            reason = healthy == 0 ? "no healthy agents (\(offline) offline)" : "\(offline) of \(total) agents offline"
        } else if healthy < total {
            state = .clusterDegraded
            let names = agents.values.filter { $0.health != .healthy }.map { "\($0.agentId) \($0.health.rawValue)" }.sorted()
            reason = names.joined(separator: ", ")
        } else {
            state = .clusterHealthy
            reason = ""
        }
        guard state != clusterState else { return }
        if clusterState == nil, state == .clusterHealthy, total == 0 { return }
        clusterState = state
        switch state {
        case .clusterCritical: events.emit(.clusterCritical(totalAgents: total, healthyAgents: healthy, reason: reason))
        case .clusterDegraded: events.emit(.clusterDegraded(totalAgents: total, healthyAgents: healthy, reason: reason))
        default: events.emit(.clusterHealthy(totalAgents: total, healthyAgents: healthy, totalNodes: nodes.count, runningNodes: running))
        }
    }

    // MARK: Nodes

    /// Routes a spawn to the agent and waits for it; every failure gives `spawn_failed` and an error.
    public func spawn(agentId: String, nodeId: String, port: Int, storagePath: String, memoryLimitMb: Int) async throws(ControlError) -> NodeRecord {
        try validate(agentId, "agent_id")
        try validate(nodeId, "node_id")
        guard (1...65535).contains(port) else { throw ControlError(status: 400, code: "bad_request", message: "port must be 1 to 65535") }
        guard !storagePath.isEmpty, storagePath.utf8.count <= 1024 else { throw ControlError(status: 400, code: "bad_request", message: "storage_path must be 1 to 1024 bytes") }
        events.emit(.spawnRequested(nodeId: nodeId, agentId: agentId, port: port, storagePath: storagePath, memoryLimitMb: memoryLimitMb))
        func fail(_ status: Int, _ code: String, _ message: String) -> ControlError {
            events.emit(.spawnFailed(nodeId: nodeId, agentId: agentId, error: message))
            logger.warning("spawn of \(nodeId) on \(agentId) failed: \(message)")
            return ControlError(status: status, code: code, message: message)
        }
        guard let record = agents[agentId] else { throw fail(404, "unknown_agent", "agent \(agentId) is not registered") }
        guard record.health != .offline else { throw fail(409, "agent_offline", "agent \(agentId) is offline") }
        guard record.nodes[nodeId] == nil else { throw fail(409, "node_exists", "node \(nodeId) already exists on \(agentId)") }
        guard record.nodes.count < record.maxNodes else {
            throw fail(409, "agent_full", "agent \(agentId) is at its limit of \(record.maxNodes) storage nodes")
        }
        let body = SpawnRequest(agentId: nil, nodeId: nodeId, port: port, storagePath: storagePath, memoryLimitMb: memoryLimitMb).json
        // Reserve the node across the await so a concurrent spawn of the same id is refused.
        agents[agentId]?.nodes[nodeId] = NodeRecord(nodeId: nodeId, agentId: agentId, port: port, storagePath: storagePath, pid: nil, state: "starting")
        let answer: JSONValue
        do {
            answer = try await client.call("POST", record.endpoint + ControlRoute.spawn, body: body)
        } catch let failure {
            agents[agentId]?.nodes.removeValue(forKey: nodeId)
            let (status, code, message) = agentFailure(failure, agentId)
            throw fail(status, code, message)
        }
        let pid = answer["pid"]?.intValue.map { Int($0) } ?? 0
        // The agent answers with the path it resolved below its storage_root (an older agent does not).
        let path = answer["storage_path"]?.stringValue ?? storagePath
        let node = NodeRecord(nodeId: nodeId, agentId: agentId, port: port, storagePath: path, pid: pid, state: "running")
        agents[agentId]?.nodes[nodeId] = node
        events.emit(.spawnSucceeded(nodeId: nodeId, agentId: agentId, pid: pid, port: port))
        logger.info("node \(nodeId) running on \(agentId), pid \(pid)")
        updateClusterState()
        return node
    }

    /// Routes a stop to the agent; every failure gives `stop_failed` and an error.
    public func stop(agentId: String, nodeId: String) async throws(ControlError) {
        try validate(agentId, "agent_id")
        try validate(nodeId, "node_id")
        events.emit(.stopRequested(nodeId: nodeId, agentId: agentId))
        func fail(_ status: Int, _ code: String, _ message: String) -> ControlError {
            events.emit(.stopFailed(nodeId: nodeId, agentId: agentId, error: message))
            logger.warning("stop of \(nodeId) on \(agentId) failed: \(message)")
            return ControlError(status: status, code: code, message: message)
        }
        guard let record = agents[agentId] else { throw fail(404, "unknown_agent", "agent \(agentId) is not registered") }
        guard record.nodes[nodeId] != nil else { throw fail(404, "unknown_node", "node \(nodeId) is not known on \(agentId)") }
        guard record.health != .offline else { throw fail(409, "agent_offline", "agent \(agentId) is offline") }
        do {
            _ = try await client.call("POST", record.endpoint + ControlRoute.stop, body: StopRequest(agentId: nil, nodeId: nodeId).json)
        } catch let failure {
            let (status, code, message) = agentFailure(failure, agentId)
            throw fail(status, code, message)
        }
        agents[agentId]?.nodes.removeValue(forKey: nodeId)
        events.emit(.stopSucceeded(nodeId: nodeId, agentId: agentId))
        logger.info("node \(nodeId) on \(agentId) stopped")
        updateClusterState()
    }

    /// The status, code and message of a spawn or stop the agent failed: a timeout (504), an agent that cannot be
    /// reached (502), one that refused the master's token (502 `agent_unauthorized`), or the agent's own error (422).
    func agentFailure(_ failure: ControlClient.Failure, _ agentId: String) -> (Int, String, String) {
        if failure.code == "timeout" { return (504, "timeout", "agent \(agentId) did not answer within \(config.agentTimeoutSeconds) s") }
        if failure.status == 401 {
            return (502, "agent_unauthorized", "agent \(agentId) refused the master's token (401): give the agent the master's --token (token in its config or $\(ControlToken.environmentVariable))")
        }
        return (failure.status == 0 ? 502 : 422, "agent_error", "agent \(agentId): \(failure.message)")
    }

    func validate(_ id: String, _ what: String) throws(ControlError) {
        do {
            try GridEvent.validateId(id, what: what)
        } catch {
            throw ControlError(status: 400, code: "bad_request", message: error.message)
        }
    }

    public var agentList: [AgentRecord] { agents.values.sorted { $0.agentId < $1.agentId } }

    public var status: (state: String, total: Int, healthy: Int, nodes: Int) {
        (clusterState?.name ?? "cluster_healthy", agents.count, agents.values.filter { $0.health == .healthy }.count,
         agents.values.reduce(0) { $0 + $1.nodes.count })
    }
}
