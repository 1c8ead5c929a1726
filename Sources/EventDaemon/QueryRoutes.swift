import EventQuery
import GridEvents
import Hummingbird

/// The routes that find events: the structured filter, one event with its edges, an entity's events, the newest
/// events, and plain-English questions.
enum QueryRoutes {
    static func addRoutes(to router: Router<BasicRequestContext>, api: APIContext) {
        router.get("/api/grid/events/recent") { request, _ in
            let limit = try HTTPAPI.intParameter(request, "limit", default: 50, range: 1...QueryEngine.maxLimit)
            return try await page(api, EventQuery(limit: limit))
        }
        router.get("/api/events") { request, _ in
            try await page(api, try HTTPAPI.structuredQuery(request))
        }
        router.get("/api/entities/{id}/events") { request, context in
            let id = try context.parameters.require("id")
            guard (try? GridEvent.validateId(id, what: "entity id")) != nil else {
                throw APIError(.badEntity, "invalid entity id")
            }
            var query = try HTTPAPI.structuredQuery(request)
            query.entity = id
            return try await page(api, query)
        }
        router.get("/api/events/{id}") { _, context in
            let id = try context.parameters.require("id")
            guard (try? GridEvent.validateId(id, what: "event id")) != nil else {
                throw APIError(.badId, "an event id is 1-256 of A-Z a-z 0-9 - _ . : @ /")
            }
            return try await api.answer { try withAdjacency(api, id: id) }
        }
        router.post("/api/grid/events/query") { request, _ in
            let body = try await HTTPAPI.collect(request, limit: HTTPAPI.maxBody)
            let value: JSONValue
            do {
                value = try JSONValue.parse(Array(buffer: body), limit: HTTPAPI.maxBody)
            } catch {
                throw APIError(.malformedBody, "\((error as? EventError)?.message ?? "\(error)"); send {\"query\": \"show spawn failures today\"}")
            }
            guard let question = value["query"]?.stringValue else {
                throw APIError(.malformedBody, "send {\"query\": \"...\"} with the question as a string")
            }
            let interpretation: Interpretation
            do {
                interpretation = try api.translator.interpret(question)
            } catch let error as TranslationError {
                var e = APIError(.notUnderstood, error.message)
                e.suggestions = error.suggestions
                throw e
            }
            return try await api.answer {
                QuestionAnswer(question: question, interpretation: QuestionAnswer.Reading(interpretation),
                               result: QuestionAnswer.Result(try HTTPAPI.run { try api.engine.answer(interpretation) }))
            }
        }
    }

    /// The events `query` finds, as a page.
    static func page(_ api: APIContext, _ query: EventQuery) async throws -> Response {
        try await api.answer { EventsPage(try HTTPAPI.run { try api.engine.find(query) }) }
    }

    /// The event `id` and every one of its edges (an event has at most 64 entities and one time bucket: they fit in
    /// one traversal of depth 1).
    static func withAdjacency(_ api: APIContext, id: String) throws -> EventWithAdjacency {
        guard let stored = api.store.event(id: id), let event = try? GridEvent(stored: stored) else {
            throw APIError(.notFound, "no event with id \(id.prefix(256))")
        }
        let graph = try HTTPAPI.run { try api.engine.neighbors(of: id, depth: 1, limit: 5000, perNode: 5000) }
        return EventWithAdjacency(event: APIEvent(event), adjacency: graph.edges.map { edge in
            let outgoing = edge.source == id
            let other = outgoing ? edge.target : edge.source
            return EventWithAdjacency.Adjacent(node: other, kind: graph.nodes.first { $0.id == other }?.kind.rawValue ?? "entity",
                                               direction: outgoing ? "out" : "in", edgeType: edge.edgeType,
                                               timestamp: JSONTime(edge.timestamp))
        })
    }
}
