import EventStore
import Foundation
import GridEvents
import EventQuery

/// The oracle: every answer computed by plain scans over the world's list of events, with no index, no cursor
/// and no limit but the one the question asks for. Ties in time are broken by arrival, which is the order the
/// store keeps (a later append never gets an earlier location).
extension DiffWorld {
    public func matches(_ r: Row, _ q: EventQuery) -> Bool {
        if let since = q.since, r.timestamp < since { return false }
        if let until = q.until, r.timestamp >= until { return false }
        if !q.types.isEmpty, !q.types.contains(r.type) { return false }
        if let name = q.customName, !(r.type == .custom && r.typeName == name) { return false }
        if let entity = q.entity, !r.entities.contains(entity) { return false }
        if let raw = q.idPrefix {
            let p = raw.hasSuffix("*") ? String(raw.dropLast()) : raw
            if !r.event.id.hasPrefix(p) { return false }
        }
        if let text = q.text, !Self.oracleText(text, matches: r.fieldWords) { return false }
        return true
    }

    /// The words of a string field value, read scalar by scalar: a word is a run of scalars that are alphabetic,
    /// numeric or combining marks, each lowercased; anything else separates words. No length cap: whole words are compared.
    public static func oracleWords(_ s: String) -> [String] {
        var out: [String] = []
        var word = ""
        for u in s.unicodeScalars {
            let mark = [.nonspacingMark, .spacingMark, .enclosingMark].contains(u.properties.generalCategory)
            if u.properties.isAlphabetic || u.properties.numericType != nil || mark {
                word += u.properties.lowercaseMapping
            } else if !word.isEmpty {
                out.append(word)
                word = ""
            }
        }
        if !word.isEmpty { out.append(word) }
        return out
    }

    /// Whether fields with these words match a text search: every word of the text in some field, and each
    /// double-quoted part of two or more words found as consecutive words of one field. Text without a word
    /// matches nothing.
    public static func oracleText(_ text: String, matches fields: [[String]]) -> Bool {
        let parts = text.split(separator: "\"", omittingEmptySubsequences: false).map(String.init)
        // Words compare as bytes: no Unicode normalization (Swift's == would equate composed and decomposed forms).
        let required = Set(parts.flatMap { oracleWords($0) }.map { Array($0.utf8) })
        if required.isEmpty { return false }
        let present = Set(fields.joined().map { Array($0.utf8) })
        guard required.isSubset(of: present) else { return false }
        for (k, part) in parts.enumerated() where k % 2 == 1 {
            let phrase = oracleWords(part).map { Array($0.utf8) }
            guard phrase.count >= 2 else { continue }
            let found = fields.map { $0.map { Array($0.utf8) } }.contains { words in
                words.count >= phrase.count && (0...(words.count - phrase.count)).contains { Array(words[$0..<($0 + phrase.count)]) == phrase }
            }
            if !found { return false }
        }
        return true
    }

    /// Every matching event, in the query's order.
    /// A cursor is honoured by its timestamp alone: the oracle knows no locations, so checks that page by the
    /// oracle use cursors whose timestamp no event has.
    public func expected(_ q: EventQuery) -> [Row] {
        var ascending = timeOrdered.filter { matches($0, q) }
        if let cursor = q.cursor, let p = EventQuery.position(ofCursor: cursor) {
            ascending = ascending.filter { q.newestFirst ? $0.timestamp < p.timestamp : $0.timestamp > p.timestamp }
        }
        return q.newestFirst ? ascending.reversed() : ascending
    }

    public func groupKeys(_ r: Row, _ key: GroupKey) -> [String] {
        switch key {
        case .type: return [r.typeName]
        case .entity: return r.event.entities
        case .agent: return r.agent.map { [$0] } ?? []
        case .node: return r.node.map { [$0] } ?? []
        case .minute, .hour, .day:
            let width: Int64 = key == .minute ? 60_000_000 : key == .hour ? 3_600_000_000 : 86_400_000_000
            let t = r.event.timestamp
            let bucket = t >= 0 ? t / width * width : ((t + 1) / width - 1) * width
            return [TimeText.format(bucket)]
        }
    }

    /// Counts per group: largest first (ties by key), or by key for time buckets; the first `top`.
    public func expectedGroups(_ q: EventQuery, by key: GroupKey, top: Int? = nil) -> [Bucket] {
        var counts: [String: Int] = [:]
        for r in table where matches(r, q) {
            for k in groupKeys(r, key) { counts[k, default: 0] += 1 }
        }
        var out = counts.map { Bucket(key: $0.key, count: $0.value) }
        if [.minute, .hour, .day].contains(key) {
            out.sort { $0.key < $1.key }
        } else {
            out.sort { $0.count != $1.count ? $0.count > $1.count : $0.key < $1.key }
        }
        if let top { out = Array(out.prefix(top)) }
        return out
    }

    // MARK: Graph

    public struct OracleEdge: Hashable {
        public var other: String
        public var otherHash: UInt64
        public var edgeType: UInt16
        public var timestamp: Int64
        public var outgoing: Bool
    }

    /// Every node's edges, from the events alone: entity -> event (typed by the event's type) and event -> its
    /// minute's time bucket.
    public func adjacency() -> [String: [OracleEdge]] {
        var out: [String: [OracleEdge]] = [:]
        for e in events {
            let bucket = GridEvent.timeBucketId(e.timestamp)
            for entity in e.entities {
                out[entity, default: []].append(OracleEdge(other: e.id, otherHash: Hash.id(e.id), edgeType: e.type.rawValue, timestamp: e.timestamp, outgoing: true))
                out[e.id, default: []].append(OracleEdge(other: entity, otherHash: Hash.id(entity), edgeType: e.type.rawValue, timestamp: e.timestamp, outgoing: false))
            }
            out[e.id, default: []].append(OracleEdge(other: bucket, otherHash: Hash.id(bucket), edgeType: TimeBucket.edgeType, timestamp: e.timestamp, outgoing: true))
            out[bucket, default: []].append(OracleEdge(other: e.id, otherHash: Hash.id(e.id), edgeType: TimeBucket.edgeType, timestamp: e.timestamp, outgoing: false))
        }
        return out
    }

    /// Breadth-first from `id`: each node's neighbours newest first (ties by the neighbour's id hash), at most
    /// `perNode` of them; at most `limit` nodes. `truncated` when either bound left something out.
    public func expectedTraversal(from id: String, depth: Int, limit: Int, perNode: Int, graph: [String: [OracleEdge]]) -> GraphResult {
        let eventIds = Set(events.map(\.id))
        let kind: GraphNode.Kind = id.hasPrefix("time-") ? .time : eventIds.contains(id) ? .event : .entity
        var nodes = [GraphNode(id: id, kind: kind, depth: 0)]
        var visited: Set<String> = [id]
        var edges = Set<GraphEdge>()
        var frontier = [id]
        var truncated = false
        for level in 1...depth {
            var next: [String] = []
            for node in frontier {
                let all = Array(Set(graph[node] ?? [])).sorted {
                    $0.timestamp != $1.timestamp ? $0.timestamp > $1.timestamp : $0.otherHash < $1.otherHash
                }
                if all.count > perNode { truncated = true }
                for n in all.prefix(perNode) {
                    edges.insert(n.outgoing
                        ? GraphEdge(source: node, target: n.other, edgeType: n.edgeType, timestamp: n.timestamp)
                        : GraphEdge(source: n.other, target: node, edgeType: n.edgeType, timestamp: n.timestamp))
                    if visited.insert(n.other).inserted {
                        if nodes.count >= limit {
                            truncated = true
                            continue
                        }
                        let k: GraphNode.Kind = n.other.hasPrefix("time-") ? .time : eventIds.contains(n.other) ? .event : .entity
                        nodes.append(GraphNode(id: n.other, kind: k, depth: level))
                        next.append(n.other)
                    }
                }
            }
            frontier = next
            if frontier.isEmpty { break }
        }
        let kept = Set(nodes.map(\.id))
        let keptEdges = edges.filter { kept.contains($0.source) && kept.contains($0.target) }
            .sorted { $0.timestamp != $1.timestamp ? $0.timestamp > $1.timestamp : ($0.source, $0.target) < ($1.source, $1.target) }
        return GraphResult(nodes: nodes, edges: keptEdges, truncated: truncated)
    }

    /// The events before `eventId` of the entities it mentions (not `cluster`), newest `limit`, oldest first,
    /// then the event itself.
    public func expectedChain(_ eventId: String, limit: Int = 20) -> [String] {
        guard let target = table.first(where: { $0.event.id == eventId }) else { return [] }
        func before(_ r: Row) -> Bool {
            r.event.timestamp != target.event.timestamp ? r.event.timestamp < target.event.timestamp : r.index < target.index
        }
        var picked: [Row] = []
        var seen: Set<String> = [eventId]
        for entity in target.event.entities where entity != "cluster" {
            let earlier = table.filter { $0.entities.contains(entity) && before($0) }
                .sorted { $0.event.timestamp != $1.event.timestamp ? $0.event.timestamp > $1.event.timestamp : $0.index > $1.index }
            for r in earlier.prefix(limit) where seen.insert(r.event.id).inserted { picked.append(r) }
        }
        picked.sort { $0.event.timestamp != $1.event.timestamp ? $0.event.timestamp > $1.event.timestamp : $0.index > $1.index }
        return picked.prefix(limit).reversed().map(\.event.id) + [eventId]
    }

    // MARK: Grid state, by replaying every event in order

    /// Each agent's and node's state from a forward replay of all events in time order (only those with a
    /// timestamp at or before `moment`, when given: the state as of that moment).
    public func replayGridState(through moment: Int64 = .max) -> (agents: [AgentState], nodes: [NodeState]) {
        struct AgentFold {
            var newest: GridEvent?
            var transition: GridEvent?
            var heartbeat: Int64?
            var host: String?
            var endpoint: String?
        }
        struct NodeFold {
            var newest: GridEvent
            var pid: Int?
            var port: Int?
            var restarts: Int?
        }
        let ordered = timeOrdered.filter { $0.timestamp <= moment }
        var agents: [String: AgentFold] = [:]
        var listedAgents = Set<String>()
        var nodes: [String: NodeFold] = [:]
        var listedNodes = Set<String>()
        for r in ordered {
            let e = r.event
            switch e.kind {
            case .agentRegistered(let a, let host, _, let endpoint, _):
                listedAgents.insert(a)
                agents[a, default: AgentFold()].newest = e
                agents[a]!.transition = e
                agents[a]!.heartbeat = e.timestamp
                agents[a]!.host = host
                agents[a]!.endpoint = endpoint
            case .agentHeartbeat(let a, _):
                agents[a, default: AgentFold()].newest = e
                agents[a]!.heartbeat = e.timestamp
            case .agentRecovered(let a, _):
                listedAgents.insert(a)
                agents[a, default: AgentFold()].newest = e
                agents[a]!.heartbeat = e.timestamp
                agents[a]!.transition = e
            case .agentDegraded(let a, _), .agentOffline(let a, _), .agentUnregistered(let a):
                listedAgents.insert(a)
                agents[a, default: AgentFold()].newest = e
                agents[a]!.transition = e
            case .spawnRequested(let n, _, let port, _, _):
                listedNodes.insert(n)
                nodes[n, default: NodeFold(newest: e)].newest = e
                nodes[n]!.port = port
            case .spawnSucceeded(let n, _, let pid, let port):
                listedNodes.insert(n)
                nodes[n] = NodeFold(newest: e, pid: pid, port: port, restarts: nil)
            case .nodeRestarted(let n, _, let count, let pid):
                listedNodes.insert(n)
                nodes[n, default: NodeFold(newest: e)].newest = e
                nodes[n]!.pid = pid
                nodes[n]!.restarts = count
            case .spawnFailed(let n, _, _), .nodeCrashed(let n, _, _, _), .stopSucceeded(let n, _):
                listedNodes.insert(n)
                nodes[n, default: NodeFold(newest: e)].newest = e
            case .stopRequested(let n, _), .stopFailed(let n, _, _):
                nodes[n, default: NodeFold(newest: e)].newest = e
            default: break
            }
        }
        let nodeStates: [NodeState] = listedNodes.sorted().compactMap { id in
            guard let f = nodes[id] else { return nil }
            let (state, agent, detail) = QueryEngine.nodeTransition(f.newest.kind)
            return NodeState(
                nodeId: id, agentId: agent, state: state, pid: [.stopped, .failed, .crashed].contains(state) ? nil : f.pid,
                port: f.port, restartCount: f.restarts ?? 0, lastEvent: f.newest.typeName, lastEventAt: f.newest.timestamp,
                detail: detail)
        }
        let byAgent = Dictionary(grouping: nodeStates, by: \.agentId)
        let agentStates: [AgentState] = listedAgents.sorted().compactMap { id in
            guard let f = agents[id], let newest = f.newest else { return nil }
            let health: AgentState.Health
            switch newest.kind {
            case .agentDegraded: health = .degraded
            case .agentOffline: health = .offline
            case .agentUnregistered: health = .unregistered
            default: health = .healthy
            }
            let last = f.transition ?? newest
            return AgentState(agentId: id, health: health, lastHeartbeat: f.heartbeat, lastTransition: last.typeName,
                              lastTransitionAt: last.timestamp, hostname: f.host, endpoint: f.endpoint, nodes: byAgent[id] ?? [])
        }
        return (agentStates, nodeStates)
    }
}
