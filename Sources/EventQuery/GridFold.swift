import EventStore
import GridEvents

/// The grid state (`AgentState`/`NodeState`, the answer of `/api/grid/agents`) kept as a fold over events, so
/// that it costs O(agents + nodes) to read instead of a replay of history.
///
/// Every field of the state is "the newest event by position among some event types" (position: timestamp, then
/// arrival). The fold keeps each field with the timestamp of the event that set it, and an event replaces a field
/// when its timestamp is at least the field's. That makes the result independent of the order events are applied
/// in, with one rule: **events with equal timestamps must be applied in arrival (location) order**, because the
/// later one wins a tie. Applying events as they are stored, or in position order, or a checkpoint's events first
/// and then any events stored after it (in position order) all keep that rule. Applying the same event twice at
/// the same place in that order changes nothing; a resent duplicate stored later must not be applied (the store
/// ignores it, and so must the caller; `GridStateKeeper` checks).
///
/// Semantics, the same as `QueryEngine.agentStates()`/`nodeStates()` and the test oracle's forward replay:
/// - agent: health from its newest agent event; `lastHeartbeat` from the newest heartbeat, recovery or
///   registration; the transition from the newest agent event that is not a heartbeat (else the newest);
///   host and endpoint from the newest registration. Listed when any agent event but a heartbeat names it.
/// - node: state, agent and detail from its newest node event; port from the newest spawn_succeeded or
///   spawn_requested; pid from the newest spawn_succeeded or node_restarted (none while stopped, failed or
///   crashed); the restart count of the newest node_restarted when it is newer than the newest spawn_succeeded,
///   else 0. Listed when a spawn, crash, restart or stop_succeeded names it.
public struct GridFold: Sendable, Equatable {
    /// What the fold keeps of one agent.
    public struct Agent: Sendable, Equatable {
        public var listed = false
        /// The newest agent event of any kind: its type and time.
        public var newestType: EventType = .agentHeartbeat
        public var newestAt: Int64 = .min
        /// The newest agent event that is not a heartbeat (`nil` type: none yet).
        public var transitionType: EventType?
        public var transitionAt: Int64 = .min
        /// The newest heartbeat, recovery or registration.
        public var heartbeatAt: Int64?
        /// The newest registration.
        public var registeredAt: Int64?
        public var hostname: String?
        public var endpoint: String?
    }

    /// What the fold keeps of one node.
    public struct Node: Sendable, Equatable {
        public var listed = false
        /// The newest node event: type, time, and the state, agent and detail it leaves.
        public var lastType: EventType = .spawnRequested
        public var lastAt: Int64 = .min
        public var state: NodeState.State = .starting
        public var agentId = ""
        public var detail: String?
        public var port: Int?
        public var portAt: Int64 = .min
        public var pid: Int?
        public var pidAt: Int64 = .min
        /// The newest spawn_succeeded's time.
        public var succeededAt: Int64?
        /// The newest node_restarted: its count and time, and whether it is newer than the newest spawn_succeeded.
        public var restartCount = 0
        public var restartAt: Int64 = .min
        public var restartIsNewest = false
    }

    public private(set) var agents: [String: Agent] = [:]
    public private(set) var nodes: [String: Node] = [:]
    /// Every key of `agents` and `nodes`, sorted (kept so that reading the state does not sort: a new agent or
    /// node costs one insertion, O(n), and is rare).
    public private(set) var agentOrder: [String] = []
    public private(set) var nodeOrder: [String] = []

    public init() {}

    /// A fold from its parts, ids given in increasing order (checkpoints are written so).
    /// - Returns: nil when the ids are not strictly increasing.
    init?(sortedAgents: [(String, Agent)], sortedNodes: [(String, Node)]) {
        for (i, (id, a)) in sortedAgents.enumerated() {
            if i > 0, !(sortedAgents[i - 1].0 < id) { return nil }
            agents[id] = a
        }
        for (i, (id, n)) in sortedNodes.enumerated() {
            if i > 0, !(sortedNodes[i - 1].0 < id) { return nil }
            nodes[id] = n
        }
        agentOrder = sortedAgents.map(\.0)
        nodeOrder = sortedNodes.map(\.0)
    }

    private static func insertSorted(_ id: String, into order: inout [String]) {
        var lo = 0
        var hi = order.count
        while lo < hi {
            let mid = (lo + hi) / 2
            if order[mid] < id { lo = mid + 1 } else { hi = mid }
        }
        order.insert(id, at: lo)
    }

    /// The type codes the fold reads; every other event leaves it unchanged.
    public static let typeCodes: Set<UInt16> = Set(
        (QueryEngine.agentTypes + QueryEngine.nodeTypes).map(\.rawValue))

    /// Whether an event of this type changes the fold.
    @inline(__always) public static func folds(_ type: EventType) -> Bool {
        typeCodes.contains(type.rawValue)
    }

    /// Applies one event (see the ordering rule above). O(1).
    public mutating func apply(_ e: GridEvent) {
        let t = e.timestamp
        switch e.kind {
        case .agentRegistered(let a, let host, _, let endpoint, _):
            update(agent: a, listed: true) { f in
                f.touch(.agentRegistered, t, transition: true, heartbeat: true)
                if f.registeredAt.map({ t >= $0 }) ?? true {
                    f.registeredAt = t
                    f.hostname = host
                    f.endpoint = endpoint
                }
            }
        case .agentHeartbeat(let a, _):
            update(agent: a, listed: false) { $0.touch(.agentHeartbeat, t, transition: false, heartbeat: true) }
        case .agentRecovered(let a, _):
            update(agent: a, listed: true) { $0.touch(.agentRecovered, t, transition: true, heartbeat: true) }
        case .agentDegraded(let a, _):
            update(agent: a, listed: true) { $0.touch(.agentDegraded, t, transition: true, heartbeat: false) }
        case .agentOffline(let a, _):
            update(agent: a, listed: true) { $0.touch(.agentOffline, t, transition: true, heartbeat: false) }
        case .agentUnregistered(let a):
            update(agent: a, listed: true) { $0.touch(.agentUnregistered, t, transition: true, heartbeat: false) }
        case .spawnRequested(let n, _, let port, _, _):
            update(node: n, e, listed: true) { f in
                if t >= f.portAt { (f.port, f.portAt) = (port, t) }
            }
        case .spawnSucceeded(let n, _, let pid, let port):
            update(node: n, e, listed: true) { f in
                if t >= f.portAt { (f.port, f.portAt) = (port, t) }
                if t >= f.pidAt { (f.pid, f.pidAt) = (pid, t) }
                if f.succeededAt.map({ t >= $0 }) ?? true {
                    f.succeededAt = t
                    // A tie goes to the later event: this one, so the restart is no longer the newer.
                    f.restartIsNewest = f.restartAt > t
                }
            }
        case .nodeRestarted(let n, _, let count, let pid):
            update(node: n, e, listed: true) { f in
                if t >= f.pidAt { (f.pid, f.pidAt) = (pid, t) }
                if t >= f.restartAt {
                    (f.restartCount, f.restartAt) = (count, t)
                    f.restartIsNewest = f.succeededAt.map { t >= $0 } ?? true
                }
            }
        case .spawnFailed(let n, _, _), .nodeCrashed(let n, _, _, _), .stopSucceeded(let n, _):
            update(node: n, e, listed: true) { _ in }
        case .stopRequested(let n, _), .stopFailed(let n, _, _):
            update(node: n, e, listed: false) { _ in }
        default:
            break
        }
    }

    private mutating func update(agent id: String, listed: Bool, _ body: (inout Agent) -> Void) {
        if let i = agents.index(forKey: id) {
            body(&agents.values[i])
            if listed { agents.values[i].listed = true }
        } else {
            var a = Agent()
            body(&a)
            a.listed = listed
            agents[id] = a
            Self.insertSorted(id, into: &agentOrder)
        }
    }

    private mutating func update(node id: String, _ e: GridEvent, listed: Bool, _ body: (inout Node) -> Void) {
        func change(_ f: inout Node) {
            if e.timestamp >= f.lastAt {
                let (state, agent, detail) = QueryEngine.nodeTransition(e.kind)
                f.lastType = e.type
                f.lastAt = e.timestamp
                f.state = state
                f.agentId = agent
                f.detail = detail
            }
            body(&f)
            if listed { f.listed = true }
        }
        if let i = nodes.index(forKey: id) {
            change(&nodes.values[i])
        } else {
            var f = Node()
            change(&f)
            nodes[id] = f
            Self.insertSorted(id, into: &nodeOrder)
        }
    }

    // MARK: Reading

    /// Every listed node's state, by node id. O(nodes).
    public func nodeStates() -> [NodeState] {
        var out: [NodeState] = []
        out.reserveCapacity(nodeOrder.count)
        for id in nodeOrder {
            guard let f = nodes[id], f.listed else { continue }
            out.append(NodeState(
                nodeId: id, agentId: f.agentId, state: f.state,
                pid: f.state == .stopped || f.state == .failed || f.state == .crashed ? nil : f.pid, port: f.port,
                restartCount: f.restartIsNewest ? f.restartCount : 0, lastEvent: f.lastType.name, lastEventAt: f.lastAt,
                detail: f.detail))
        }
        return out
    }

    /// Every listed agent's state with its nodes (those whose newest event names it), by agent id, and every
    /// listed node. O(agents + nodes).
    public func states() -> (agents: [AgentState], nodes: [NodeState]) {
        let nodeStates = nodeStates()
        let byAgent = Dictionary(grouping: nodeStates, by: \.agentId)
        let agentStates = agentOrder.compactMap { id in agents[id].flatMap { $0.listed ? (id, $0) : nil } }.map { id, f in
            let health: AgentState.Health
            switch f.newestType {
            case .agentDegraded: health = .degraded
            case .agentOffline: health = .offline
            case .agentUnregistered: health = .unregistered
            default: health = .healthy
            }
            let transition = f.transitionType ?? f.newestType
            return AgentState(
                agentId: id, health: health, lastHeartbeat: f.heartbeatAt, lastTransition: transition.name,
                lastTransitionAt: f.transitionType == nil ? f.newestAt : f.transitionAt, hostname: f.hostname,
                endpoint: f.endpoint, nodes: byAgent[id] ?? [])
        }
        return (agentStates, nodeStates)
    }
}

extension GridFold {
    /// The fold of every grid event stored in `store` with a timestamp at or before `moment`, by a replay in
    /// position order. O(events): for stores without a `GridStateKeeper` and for checks.
    public static func replay(_ store: EventStore, through moment: Int64 = .max) -> GridFold {
        var f = GridFold()
        store.read(typeCodes.sorted().map { ReadSource.type($0) },
                   ReadBounds(range: Int64.min..<(moment == .max ? .max : moment + 1), newestFirst: false),
                   types: typeCodes) { stored in
            if let e = try? GridEvent(stored: stored) { f.apply(e) }
            return true
        }
        return f
    }
}

extension GridFold.Agent {
    mutating func touch(_ type: EventType, _ t: Int64, transition: Bool, heartbeat: Bool) {
        if t >= newestAt { (newestType, newestAt) = (type, t) }
        if transition, t >= transitionAt || transitionType == nil { (transitionType, transitionAt) = (type, t) }
        if heartbeat, heartbeatAt.map({ t >= $0 }) ?? true { heartbeatAt = t }
    }
}
