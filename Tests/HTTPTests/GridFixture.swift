import GridEvents

/// A generated grid for the dashboard's browser test: `agents` agents with `nodesPerAgent` nodes each, about 355
/// heartbeats per agent (about 200,000 events for 500 agents and 10,000 nodes) over the last day, every agent and
/// node brought to a planned final state, the agents spread over `hosts` hosts (every event carries the entity
/// `host-<id>`, as on an aggregator). The totals the dashboard must show are counted from that plan, not from the
/// store or its state fold, so the test checks the page and the API against an independent answer; so are the
/// states at an earlier moment (`agents(_:at:)`, `nodes(_:at:)`), from the plan's own timeline of each agent and node.
struct GridFixture {
    var events: [GridEvent] = []
    /// Planned final states.
    var agentState: [String: String] = [:]
    var nodeState: [String: String] = [:]
    var agentOfNode: [String: String] = [:]
    /// Each agent's host id (`h01`...), and each agent's and node's planned states with the moment each began.
    var hostOf: [String: String] = [:]
    var agentTimeline: [String: [(at: Int64, state: String)]] = [:]
    var nodeTimeline: [String: [(at: Int64, state: String)]] = [:]
    /// The timestamps of every node_crashed, and of every spawn_failed and stop_failed.
    var crashTimes: [Int64] = []
    var failureTimes: [Int64] = []
    /// node_crashed, and spawn_failed + stop_failed, events with timestamps in the last hour (all between 50 and 5
    /// minutes old; the others are at least 2 hours old, so the counts hold while the test runs).
    var crashesLastHour = 0
    var failuresLastHour = 0
    /// A failed node whose error holds markup, and its agent.
    let htmlNode: String
    let htmlAgent: String
    static let htmlError = #"<img src=x onerror="window.__pwned=1"><b>disk</b> full & "quoted""#

    func count(agents state: String) -> Int { agentState.values.filter { $0 == state }.count }
    func count(nodes state: String) -> Int { nodeState.values.filter { $0 == state }.count }
    var hosts: [String] { Set(hostOf.values).sorted() }

    /// The planned state of every agent (node) at `moment`: the newest of its planned states begun at or before it.
    private static func states(_ timelines: [String: [(at: Int64, state: String)]], at moment: Int64) -> [String: String] {
        timelines.compactMapValues { line in line.last { $0.at <= moment }?.state }
    }
    func agents(_ state: String, at moment: Int64) -> Int { Self.states(agentTimeline, at: moment).values.filter { $0 == state }.count }
    func nodes(_ state: String, at moment: Int64) -> Int { Self.states(nodeTimeline, at: moment).values.filter { $0 == state }.count }
    func agentState(_ agent: String, at moment: Int64) -> String? { Self.states(agentTimeline.filter { $0.key == agent }, at: moment)[agent] }

    init(now: Int64, agents: Int = 500, nodesPerAgent: Int = 20, heartbeatsPerAgent: Int = 355, hosts: Int = 10, seed: UInt64 = 17) {
        var rng = seed | 1
        func random(_ n: Int) -> Int {
            rng ^= rng << 13
            rng ^= rng >> 7
            rng ^= rng << 17
            return Int(rng % UInt64(n))
        }
        let second: Int64 = 1_000_000
        let minute = 60 * second
        let hour = 60 * minute
        let dayStart = now - 24 * hour
        var sequence: UInt64 = 0
        var events: [GridEvent] = []
        var host = ""
        var agentTimeline: [String: [(at: Int64, state: String)]] = [:]
        var nodeTimeline: [String: [(at: Int64, state: String)]] = [:]
        var crashTimes: [Int64] = [], failureTimes: [Int64] = []
        func add(_ kind: GridEventKind, _ t: Int64) {
            sequence += 1
            events.append(GridEvent(id: GridEvent.makeId(typeName: kind.typeName, producerTag: "d1a5b0a7d000", sequence: sequence),
                                    timestamp: t, kind: kind, extraEntities: ["host-" + host]))
            // What each event means, as planned (an agent's newest event sets its state; a heartbeat means healthy).
            switch kind {
            case .agentRegistered(let a, _, _, _, _), .agentHeartbeat(let a, _), .agentRecovered(let a, _): agentTimeline[a, default: []].append((t, "healthy"))
            case .agentDegraded(let a, _): agentTimeline[a, default: []].append((t, "degraded"))
            case .agentOffline(let a, _): agentTimeline[a, default: []].append((t, "offline"))
            case .agentUnregistered(let a): agentTimeline[a, default: []].append((t, "unregistered"))
            case .spawnRequested(let n, _, _, _, _): nodeTimeline[n, default: []].append((t, "starting"))
            case .spawnSucceeded(let n, _, _, _): nodeTimeline[n, default: []].append((t, "running"))
            case .spawnFailed(let n, _, _): nodeTimeline[n, default: []].append((t, "failed")); failureTimes.append(t)
            case .stopRequested(let n, _): nodeTimeline[n, default: []].append((t, "stopping"))
            case .stopSucceeded(let n, _): nodeTimeline[n, default: []].append((t, "stopped"))
            case .stopFailed(let n, _, _): nodeTimeline[n, default: []].append((t, "running")); failureTimes.append(t)
            case .nodeCrashed(let n, _, _, _): nodeTimeline[n, default: []].append((t, "crashed")); crashTimes.append(t)
            case .nodeRestarted(let n, _, _, _): nodeTimeline[n, default: []].append((t, "restarted"))
            default: break
            }
        }
        func hostId(_ i: Int) -> String { let s = String(i % hosts + 1); return "h" + (s.count < 2 ? "0" + s : s) }
        let width = max(3, String(agents).count)
        func agentId(_ i: Int) -> String {
            let s = String(i + 1)
            return "agent-" + String(repeating: "0", count: max(0, width - s.count)) + s
        }
        htmlAgent = agentId(min(agents - 1, 320))
        htmlNode = "node-\(min(agents - 1, 320) * nodesPerAgent + 3 + 1)"
        for i in 0..<agents {
            let a = agentId(i)
            host = hostId(i)
            hostOf[a] = host
            // Final agent state: mostly healthy; 2% offline, 3% degraded, 1% unregistered (agent-321 stays healthy).
            let roll = a == htmlAgent ? 99 : random(100)
            let state = roll < 2 ? "offline" : roll < 5 ? "degraded" : roll < 6 ? "unregistered" : "healthy"
            agentState[a] = state
            let registered = dayStart + Int64(i) * 10_000
            add(.agentRegistered(agentId: a, hostname: "rack-\(i / 50 + 1)", platform: "linux-x86_64",
                                 agentEndpoint: "10.1.\(i / 200).\(i % 200):7100", maxStorageNodes: 32), registered)
            // When the agent's last state-setting event happens: heartbeats stop before it.
            let end: Int64 = switch state {
            case "offline": now - Int64(10 + random(30)) * minute
            case "degraded": now - Int64(1 + random(8)) * minute
            case "unregistered": now - 3 * hour - Int64(random(60)) * minute
            default: now - 20 * second
            }
            // Nodes: spawned early, then each brought to its planned state.
            for k in 0..<nodesPerAgent {
                let n = "node-\(i * nodesPerAgent + k + 1)"
                agentOfNode[n] = a
                let spawned = registered + 60 * second + Int64(k) * 1000
                add(.spawnRequested(nodeId: n, agentId: a, port: 50000 + k, storagePath: "/data/nodes/\(n)", memoryLimitMb: 2048), spawned)
                var final = "running"
                if n == htmlNode {
                    final = "failed"
                    add(.spawnFailed(nodeId: n, agentId: a, error: Self.htmlError), now - 7 * minute)
                    failuresLastHour += 1
                    nodeState[n] = final
                    continue
                }
                add(.spawnSucceeded(nodeId: n, agentId: a, pid: 1000 + i * 40 + k, port: 50000 + k), spawned + second)
                if state == "unregistered" {
                    add(.stopRequested(nodeId: n, agentId: a), end - 2 * minute + Int64(k) * 1000)
                    add(.stopSucceeded(nodeId: n, agentId: a), end - minute + Int64(k) * 1000)
                    nodeState[n] = "stopped"
                    continue
                }
                let recent = random(3) == 0  // a third of the incidents happen in the last hour
                let when = recent ? now - Int64(5 + random(45)) * minute - Int64(k) * 1000
                    : now - 2 * hour - Int64(random(20 * 60)) * minute - Int64(k) * 1000
                let r = random(1000)
                if r < 20 {
                    final = "crashed"
                    add(.nodeCrashed(nodeId: n, agentId: a, exitCode: nil, signal: 9), when)
                    if recent { crashesLastHour += 1 }
                } else if r < 50 {
                    final = "restarted"
                    add(.nodeCrashed(nodeId: n, agentId: a, exitCode: 1, signal: nil), when)
                    add(.nodeRestarted(nodeId: n, agentId: a, restartCount: 1 + random(4), newPid: 30000 + i * 40 + k), when + 2 * second)
                    if recent { crashesLastHour += 1 }
                } else if r < 60 {
                    final = "failed"
                    add(.stopRequested(nodeId: n, agentId: a), when - 3 * second)
                    add(.stopSucceeded(nodeId: n, agentId: a), when - 2 * second)
                    add(.spawnRequested(nodeId: n, agentId: a, port: 51000 + k, storagePath: "/data/nodes/\(n)", memoryLimitMb: 2048), when - second)
                    add(.spawnFailed(nodeId: n, agentId: a, error: "port \(51000 + k) already in use"), when)
                    if recent { failuresLastHour += 1 }
                } else if r < 100 {
                    final = "stopped"
                    add(.stopRequested(nodeId: n, agentId: a), when - second)
                    add(.stopSucceeded(nodeId: n, agentId: a), when)
                } else if r < 110 {
                    // A stop that failed leaves the node running.
                    add(.stopRequested(nodeId: n, agentId: a), when - second)
                    add(.stopFailed(nodeId: n, agentId: a, error: "timed out after 10 s"), when)
                    if recent { failuresLastHour += 1 }
                }
                nodeState[n] = final
            }
            // Heartbeats from registration to the end, then the final transition.
            let first = registered + 2 * minute
            let step = max(second, (end - 5 * second - first) / Int64(heartbeatsPerAgent))
            for h in 0..<heartbeatsPerAgent {
                let t = first + Int64(h) * step + Int64(random(1000))
                if t >= end - 2 * second { break }
                add(.agentHeartbeat(agentId: a, storageNodeCount: nodesPerAgent), t)
            }
            if roll % 7 == 3, state == "healthy" {
                // An earlier wobble the agent recovered from.
                add(.agentDegraded(agentId: a, secondsSinceHeartbeat: 16), dayStart + 5 * hour + Int64(i) * 1000)
                add(.agentRecovered(agentId: a, downtimeSeconds: 20), dayStart + 5 * hour + Int64(i) * 1000 + 30 * second)
            }
            switch state {
            case "offline":
                add(.agentDegraded(agentId: a, secondsSinceHeartbeat: 16), end - 15 * second)
                add(.agentOffline(agentId: a, lastSeen: end - 30 * second), end)
            case "degraded":
                add(.agentDegraded(agentId: a, secondsSinceHeartbeat: 16), end)
            case "unregistered":
                add(.agentUnregistered(agentId: a), end)
            default:
                break
            }
        }
        events.sort { $0.timestamp < $1.timestamp }
        self.events = events
        self.agentTimeline = agentTimeline.mapValues { $0.sorted { $0.at < $1.at } }
        self.nodeTimeline = nodeTimeline.mapValues { $0.sorted { $0.at < $1.at } }
        self.crashTimes = crashTimes
        self.failureTimes = failureTimes
    }
}
