import EventStore
import GridEvents

/// A node of a traversal result.
public struct GraphNode: Sendable, Equatable {
    public enum Kind: String, Sendable { case event, entity, time }
    public var id: String
    public var kind: Kind
    /// Hops from the start.
    public var depth: Int

    public init(id: String, kind: Kind, depth: Int) {
        self.id = id
        self.kind = kind
        self.depth = depth
    }
}

/// An edge of a traversal result.
public struct GraphEdge: Sendable, Equatable, Hashable {
    public var source: String
    public var target: String
    public var edgeType: UInt16
    public var timestamp: Int64

    public init(source: String, target: String, edgeType: UInt16, timestamp: Int64) {
        self.source = source
        self.target = target
        self.edgeType = edgeType
        self.timestamp = timestamp
    }
}

public struct GraphResult: Sendable {
    public var nodes: [GraphNode]
    public var edges: [GraphEdge]
    /// True when the node limit, or the limit of neighbors per node, left nodes or edges out.
    public var truncated: Bool

    public init(nodes: [GraphNode], edges: [GraphEdge], truncated: Bool) {
        self.nodes = nodes
        self.edges = edges
        self.truncated = truncated
    }
}

extension QueryEngine {
    /// Breadth-first traversal over adjacency from `id` (an entity, an event or a time bucket `time-<minute>`)
    /// up to `depth` hops (1...4) and `limit` nodes. From an agent, depth 3 reaches its events, the nodes they
    /// mention and those nodes' events.
    public func neighbors(of id: String, depth: Int = 1, limit: Int = 200, perNode: Int = 50) throws(QueryError) -> GraphResult {
        guard (1...4).contains(depth) else { throw QueryError(.badQuery, "depth must be 1 to 4, got \(depth)") }
        guard (1...5000).contains(limit) else { throw QueryError(.badLimit, "limit must be 1 to 5000, got \(limit)") }
        guard (1...5000).contains(perNode) else { throw QueryError(.badLimit, "per_node must be 1 to 5000, got \(perNode)") }
        var names: [UInt64: (String, GraphNode.Kind)] = [:]
        func kindOf(_ id: String) -> GraphNode.Kind {
            id.hasPrefix("time-") ? .time : (store.contains(id: id) ? .event : .entity)
        }
        let start = Hash.id(id)
        names[start] = (id, kindOf(id))
        var nodes = [GraphNode(id: id, kind: names[start]!.1, depth: 0)]
        var visited: Set<UInt64> = [start]
        var edges = Set<GraphEdge>()
        var frontier = [start]
        var truncated = false
        for level in 1...depth {
            var next: [UInt64] = []
            for node in frontier {
                // An event names its entities and its time bucket; learn them before naming neighbors.
                if let (nodeId, kind) = names[node], kind == .event, let stored = store.event(id: nodeId) {
                    for e in stored.entities { names[Hash.id(e)] = (e, .entity) }
                    let bucket = GridEvent.timeBucketId(stored.timestamp)
                    names[Hash.id(bucket)] = (bucket, .time)
                }
                let list = store.neighborList(ofHash: node, limit: perNode)
                if list.truncated { truncated = true }
                for n in list.neighbors {
                    let name: (String, GraphNode.Kind)
                    if let eventId = n.eventId {
                        name = (eventId, .event)
                    } else if let known = names[n.node] {
                        name = known
                    } else {
                        continue  // a node we cannot name (not reachable through an event)
                    }
                    names[n.node] = name
                    let here = names[node]!.0
                    edges.insert(n.outgoing
                        ? GraphEdge(source: here, target: name.0, edgeType: n.edgeType, timestamp: n.timestamp)
                        : GraphEdge(source: name.0, target: here, edgeType: n.edgeType, timestamp: n.timestamp))
                    if visited.insert(n.node).inserted {
                        if nodes.count >= limit {
                            truncated = true
                            continue
                        }
                        nodes.append(GraphNode(id: name.0, kind: name.1, depth: level))
                        next.append(n.node)
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

    /// The events that led to `eventId`: the newest `limit` earlier events of the entities it mentions
    /// (except `cluster`), oldest first, ending with the event itself.
    public func chain(leadingTo eventId: String, limit: Int = 20) throws(QueryError) -> [GridEvent] {
        guard let target = store.event(id: eventId) else { throw QueryError(.notFound, "no event with id \(eventId)") }
        var seen: Set<String> = [target.id]
        var before: [StoredEvent] = []
        for entity in target.entities where entity != "cluster" {
            for e in store.timeline(entity: entity, limit: limit, before: target.position) where seen.insert(e.id).inserted {
                before.append(e)
            }
        }
        before.sort { $1.position < $0.position }
        let kept = before.prefix(limit).reversed() + [target]
        return kept.compactMap { try? GridEvent(stored: $0) }
    }
}
