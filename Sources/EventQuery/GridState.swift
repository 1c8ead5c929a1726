import EventStore
import GridEvents

/// An agent's state derived from its events alone.
public struct AgentState: Sendable, Equatable {
    public enum Health: String, Sendable { case healthy, degraded, offline, unregistered }
    public var agentId: String
    public var health: Health
    /// Time of the newest heartbeat (or registration/recovery) seen.
    public var lastHeartbeat: Int64?
    /// The newest event that set the state, and when.
    public var lastTransition: String
    public var lastTransitionAt: Int64
    public var hostname: String?
    public var endpoint: String?
    public var nodes: [NodeState]

    public init(agentId: String, health: Health, lastHeartbeat: Int64?, lastTransition: String, lastTransitionAt: Int64,
                hostname: String?, endpoint: String?, nodes: [NodeState]) {
        self.agentId = agentId
        self.health = health
        self.lastHeartbeat = lastHeartbeat
        self.lastTransition = lastTransition
        self.lastTransitionAt = lastTransitionAt
        self.hostname = hostname
        self.endpoint = endpoint
        self.nodes = nodes
    }
}

/// A storage node's state derived from its events alone.
public struct NodeState: Sendable, Equatable {
    public enum State: String, Sendable { case starting, running, restarted, stopping, stopped, crashed, failed }
    public var nodeId: String
    public var agentId: String
    public var state: State
    public var pid: Int?
    public var port: Int?
    public var restartCount: Int
    public var lastEvent: String
    public var lastEventAt: Int64
    /// The error or exit detail of the newest failure, if the state is crashed or failed.
    public var detail: String?

    public init(nodeId: String, agentId: String, state: State, pid: Int?, port: Int?, restartCount: Int, lastEvent: String,
                lastEventAt: Int64, detail: String?) {
        self.nodeId = nodeId
        self.agentId = agentId
        self.state = state
        self.pid = pid
        self.port = port
        self.restartCount = restartCount
        self.lastEvent = lastEvent
        self.lastEventAt = lastEventAt
        self.detail = detail
    }
}

extension QueryEngine {
    static let agentTypes: [EventType] = [.agentRegistered, .agentHeartbeat, .agentDegraded, .agentOffline, .agentRecovered, .agentUnregistered]
    static let nodeTypes: [EventType] = [.spawnRequested, .spawnSucceeded, .spawnFailed, .stopRequested, .stopSucceeded, .stopFailed, .nodeCrashed, .nodeRestarted]

    /// Distinct values of `field` among events of the given (rare) types.
    private func distinct(_ field: String, in types: [EventType]) -> [String] {
        var out = Set<String>()
        store.read(types.map { .type($0.rawValue) }, ReadBounds()) { stored in
            guard let e = try? GridEvent(stored: stored) else { return true }
            for (name, value) in e.kind.namedFields where name == field {
                if case .string(let s) = value { out.insert(s) }
            }
            return true
        }
        return out.sorted()
    }

    /// Every node's state, from its newest lifecycle event.
    public func nodeStates() -> [NodeState] {
        let ids = distinct("node_id", in: [.spawnRequested, .spawnSucceeded, .spawnFailed, .nodeCrashed, .nodeRestarted, .stopSucceeded])
        return ids.compactMap(nodeState)
    }

    /// One node's state, or nil when it has no lifecycle events.
    public func nodeState(_ nodeId: String) -> NodeState? {
        var state: NodeState?
        var pid: Int?
        var port: Int?
        var restarts: Int?
        var found = false
        scan(EventQuery(types: Self.nodeTypes, entity: nodeId), after: nil) { stored in
            guard let e = try? GridEvent(stored: stored) else { return true }
            if !found {
                found = true
                let (s, agent, detail) = Self.nodeTransition(e.kind)
                state = NodeState(nodeId: nodeId, agentId: agent, state: s, pid: nil, port: nil, restartCount: 0,
                                  lastEvent: e.typeName, lastEventAt: e.timestamp, detail: detail)
            }
            switch e.kind {
            case .spawnSucceeded(_, _, let p, let po):
                if pid == nil { pid = p }
                if port == nil { port = po }
                return false  // older events cannot change pid, port or the restart count
            case .nodeRestarted(_, _, let count, let newPid):
                if pid == nil { pid = newPid }
                if restarts == nil { restarts = count }
            case .spawnRequested(_, _, let po, _, _):
                if port == nil { port = po }
            default: break
            }
            return true
        }
        guard var result = state else { return nil }
        result.pid = [.stopped, .failed, .crashed].contains(result.state) ? nil : pid
        result.port = port
        result.restartCount = restarts ?? 0
        return result
    }

    /// The state, agent and detail a node's lifecycle event leaves it in.
    public static func nodeTransition(_ kind: GridEventKind) -> (NodeState.State, String, String?) {
        switch kind {
        case .spawnRequested(_, let a, _, _, _): return (.starting, a, nil)
        case .spawnSucceeded(_, let a, _, _): return (.running, a, nil)
        case .spawnFailed(_, let a, let error): return (.failed, a, error)
        case .stopRequested(_, let a): return (.stopping, a, nil)
        case .stopSucceeded(_, let a): return (.stopped, a, nil)
        case .stopFailed(_, let a, let error): return (.running, a, "stop failed: \(error)")
        case .nodeCrashed(_, let a, let code, let signal):
            return (.crashed, a, signal.map { "killed by signal \($0)" } ?? code.map { "exit code \($0)" })
        case .nodeRestarted(_, let a, _, _): return (.restarted, a, nil)
        default: return (.running, "", nil)
        }
    }

    /// Every agent's state, from its newest lifecycle event, with its nodes.
    public func agentStates() -> [AgentState] {
        let ids = distinct("agent_id", in: [.agentRegistered, .agentUnregistered, .agentOffline, .agentDegraded, .agentRecovered])
        let nodes = Dictionary(grouping: nodeStates(), by: \.agentId)
        return ids.compactMap { agentState($0, nodes: nodes[$0] ?? []) }
    }

    func agentState(_ agentId: String, nodes: [NodeState]) -> AgentState? {
        var newest: GridEvent?
        var transition: GridEvent?
        var heartbeat: Int64?
        var registration: (host: String, endpoint: String)?
        scan(EventQuery(types: Self.agentTypes, entity: agentId), after: nil) { stored in
            guard let e = try? GridEvent(stored: stored) else { return true }
            if newest == nil { newest = e }
            switch e.kind {
            case .agentHeartbeat:
                if heartbeat == nil { heartbeat = e.timestamp }
            case .agentRecovered:
                if heartbeat == nil { heartbeat = e.timestamp }
                if transition == nil { transition = e }
            case .agentRegistered(_, let host, _, let endpoint, _):
                if heartbeat == nil { heartbeat = e.timestamp }
                if transition == nil { transition = e }
                registration = (host, endpoint)
                return false  // everything older belongs to an earlier registration
            default:
                if transition == nil { transition = e }
            }
            return true
        }
        guard let newest else { return nil }
        let health: AgentState.Health
        switch newest.kind {
        case .agentDegraded: health = .degraded
        case .agentOffline: health = .offline
        case .agentUnregistered: health = .unregistered
        default: health = .healthy
        }
        let last = transition ?? newest
        return AgentState(agentId: agentId, health: health, lastHeartbeat: heartbeat, lastTransition: last.typeName,
                          lastTransitionAt: last.timestamp, hostname: registration?.host, endpoint: registration?.endpoint,
                          nodes: nodes)
    }
}
