import EventQuery
import GridEvents
import Hummingbird

/// `/api/graph/neighbors`: the entities, events and time buckets around an id.
enum GraphRoutes {
    static func addRoutes(to router: Router<BasicRequestContext>, api: APIContext) {
        router.get("/api/graph/neighbors") { request, _ in
            guard let id = try HTTPAPI.parameter(request, "id") else { throw APIError(.missingId, "pass ?id= (an entity, event or time bucket id)") }
            guard (try? GridEvent.validateId(id, what: "id")) != nil else {
                throw APIError(.badId, "an id is 1-256 of A-Z a-z 0-9 - _ . : @ /")
            }
            let depth = try HTTPAPI.intParameter(request, "depth", default: 1, range: 1...4)
            let limit = try HTTPAPI.intParameter(request, "limit", default: 200, range: 1...5000)
            let perNode = try HTTPAPI.intParameter(request, "per_node", default: 50, range: 1...5000)
            return try await api.answer {
                let graph = try HTTPAPI.run { try api.engine.neighbors(of: id, depth: depth, limit: limit, perNode: perNode) }
                return NeighborsAnswer(
                    id: id, depth: depth,
                    nodes: graph.nodes.map { NeighborsAnswer.Node(id: $0.id, kind: $0.kind.rawValue, depth: $0.depth) },
                    edges: graph.edges.map { NeighborsAnswer.Edge(source: $0.source, target: $0.target, edgeType: $0.edgeType, timestamp: JSONTime($0.timestamp)) },
                    truncated: graph.truncated)
            }
        }
    }
}
