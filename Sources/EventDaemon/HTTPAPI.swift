// Over 400 lines until the routes are split into groups (issue 16, "Daemon boundaries"; not done yet).
import EventQuery
import EventStore
import GridBase
import GridEvents
import Hummingbird
import NIOCore
import NIOPosix

/// What the HTTP API reads from: the store, the query engine, the live feed and the daemon's counters.
public struct APIContext: Sendable {
    public var store: EventStore
    public var engine: QueryEngine
    public var feed: LiveFeed
    /// The grid state kept as events arrive (the daemon's), behind `/api/grid/agents`.
    public var gridState: GridStateKeeper
    public var translator: Translator
    /// Ingest counters: events ingested, rate per second, ack p99 µs, open producer connections.
    public var ingest: @Sendable () -> (total: Int, rate: Double, ackP99Micros: Int, connections: Int)
    /// The dashboard page served at `/`.
    public var dashboardHTML: String
    /// The `replication` / `aggregation` members of `/api/stats` (JSON), nil when the daemon does not replicate.
    public var replicationStats: @Sendable () -> String? = { nil }
    /// The daemon's own log records it did not store (`--log-events`: `DaemonLogSink.dropped`, `.suppressed`), the
    /// `own_logs` member of `/api/stats`; nil when it does not store them.
    public var ownLogs: @Sendable () -> (dropped: Int, suppressed: Int)? = { nil }
    /// Events over HTTP (`POST /api/events`, `POST /v1/logs`); nil: those routes answer 503.
    public var httpIngest: HTTPIngest?
    /// The Prometheus text exposition for `GET /metrics`; nil: 404.
    public var metricsText: (@Sendable () -> [UInt8])?
    /// The threads a handler reaches the store and the grid state through (`blocking(_:)`): a read that waits on
    /// the disk holds one of them, never a SwiftNIO event loop or a thread of the async executor. `GridEventDaemon`
    /// gives its own; the default is one pool shared by the contexts made without one (tests, tools).
    public var pool: NIOThreadPool = APIContext.sharedPool
    /// The current time in microseconds since the epoch (`/api/timeline` counts back from it); tests fix it.
    public var now: @Sendable () -> Int64 = { GridClock.nowMicros() }

    /// Twice the cores, at least 4 (a read mostly waits on page faults of the mapped segments); started once,
    /// never stopped.
    static let sharedPool: NIOThreadPool = {
        let pool = NIOThreadPool(numberOfThreads: max(4, 2 * System.coreCount))
        pool.start()
        return pool
    }()

    public init(store: EventStore, feed: LiveFeed = LiveFeed(), gridState: GridStateKeeper,
                translator: Translator = Translator(),
                ingest: @escaping @Sendable () -> (total: Int, rate: Double, ackP99Micros: Int, connections: Int) = { (0, 0, 0, 0) },
                dashboardHTML: String = Dashboard.html) {
        self.store = store
        self.engine = QueryEngine(store: store)
        self.feed = feed
        self.gridState = gridState
        self.translator = translator
        self.ingest = ingest
        self.dashboardHTML = dashboardHTML
    }

    /// Runs `body` on `pool` and returns what it returns or throws. Every store, query-engine and grid-state call
    /// of an HTTP handler goes through here.
    func blocking<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
        try await pool.runIfActive(body)
    }
}

/// An API error: a status and the JSON body `{"error": {"code", "message"}}`; the codes and their statuses are the
/// catalogue's (`APIErrorCode`, APIErrors.swift).
struct APIError: Error {
    var status: HTTPResponse.Status
    var code: String
    var message: String
    var extra: [(String, [String])] = []

    var response: Response {
        var w = JSONWriter()
        w.raw("{\"error\":{\"code\":")
        w.string(code)
        w.raw(",\"message\":")
        w.string(message)
        for (k, v) in extra {
            w.raw(",")
            w.string(k)
            w.raw(":")
            w.stringArray(v)
        }
        w.raw("}}")
        return HTTPAPI.json(w.text, status: status)
    }
}

/// Turns every error escaping a handler (including unmatched routes) into the JSON error shape.
struct JSONErrorMiddleware<Context: RequestContext>: RouterMiddleware {
    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        do {
            return try await next(request, context)
        } catch let error as APIError {
            return error.response
        } catch let error as HTTPError {
            if error.status == .notFound, let allowed = HTTPAPI.routes.methods(for: request.uri.path),
               !allowed.contains(request.method.rawValue) {
                var r = APIError(.methodNotAllowed, "\(request.uri.path) takes \(allowed.joined(separator: ", "))").response
                r.headers[.allow] = allowed.joined(separator: ", ")
                return r
            }
            let entry: APIErrorCode = error.status == .notFound ? .notFound : (error.status.code < 500 ? .badRequest : .internalError)
            return APIError(entry, error.body ?? (error.status == .notFound ? "no route \(request.method) \(request.uri.path)" : "\(error.status)"), status: error.status).response
        } catch {
            return APIError(.internalError, "\(error)").response
        }
    }
}

/// The routes of the HTTP API (README, "HTTP API"; docs/ARCHITECTURE.md for where they sit).
public enum HTTPAPI {
    static let maxBody = 64 << 10

    /// Every route of `router(_:token:)` (docs/openapi.yaml), for 405 answers.
    static let routes = RouteTable(Dashboard.assets.keys.sorted().map { ($0, ["GET"]) } + [
        ("/api/timeline", ["GET"]),
        ("/api/grid/events/recent", ["GET"]), ("/api/grid/events/query", ["POST"]), ("/api/events", ["GET", "POST"]),
        ("/api/events/stream", ["GET"]), ("/api/events/{id}", ["GET"]), ("/api/entities/{id}/events", ["GET"]),
        ("/api/graph/neighbors", ["GET"]), ("/api/grid/agents", ["GET"]), ("/api/stats", ["GET"]), ("/metrics", ["GET"]),
        ("/v1/logs", ["POST"]), ("/api/session", ["GET", "POST", "DELETE"]), ("/api/session/logout", ["POST"]),
    ])

    static func json(_ text: String, status: HTTPResponse.Status = .ok) -> Response {
        Response(status: status, headers: [.contentType: "application/json; charset=utf-8", .cacheControl: "no-store"],
                 body: ResponseBody(byteBuffer: ByteBuffer(string: text)))
    }

    /// The router; mount it in an `Application`.
    /// - Parameters:
    ///   - token: required on every route when given, as a bearer header or a session cookie (SignIn.swift).
    ///   - sessions: the browser sessions signed in with the token (a fresh store when not given).
    public static func router(_ api: APIContext, token: String? = nil, sessions: SessionStore = SessionStore()) -> Router<BasicRequestContext> {
        let router = Router()
        router.add(middleware: JSONErrorMiddleware())
        if let token { router.add(middleware: AccessMiddleware(token: token, sessions: sessions)) }
        SignIn.addRoutes(to: router, token: token, sessions: sessions)
        // The dashboard's files (Sources/EventDaemon/Dashboard/), with their security headers; the page at `/` is
        // the context's `dashboardHTML`.
        for asset in Dashboard.assets.values {
            let body = asset.route == "/" ? api.dashboardHTML : asset.body
            router.get(RouterPath(asset.route)) { _, _ in
                Dashboard.response(body, contentType: asset.contentType, cacheControl: "no-cache")
            }
        }
        router.get("/api/timeline") { request, _ in
            // Events per type per bucket over the last `minutes` (the dashboard's chart).
            let minutes = try intParameter(request, "minutes", default: 60, range: 1...10_080)
            let buckets = try intParameter(request, "buckets", default: 60, range: 1...500)
            let now = api.now()
            let span = Int64(minutes) * 60_000_000
            let width = max(1, span / Int64(buckets))
            let start = now - width * Int64(buckets)
            return json(try await api.blocking {
                var w = JSONWriter()
                w.raw("{\"start\":")
                w.string(TimeText.format(start))
                w.raw(",\"bucket_seconds\":")
                w.number(Double(width) / 1e6)
                w.raw(",\"buckets\":\(buckets),\"series\":{")
                var first = true
                for code in api.store.typeCounts().keys.sorted() {
                    // Two binary searches per bucket and segment, no record read, and no cap on how many are counted.
                    let counts = (0..<buckets).map { i in
                        let from = start + Int64(i) * width
                        return api.store.count(type: code, in: from..<(from + width))
                    }
                    guard counts.contains(where: { $0 > 0 }) else { continue }
                    if !first { w.raw(",") }
                    first = false
                    w.string(EventType(rawValue: code)?.name ?? String(code))
                    w.raw(":[" + counts.map(String.init).joined(separator: ",") + "]")
                }
                w.raw("}}")
                return w.text
            })
        }
        router.get("/api/grid/events/recent") { request, _ in
            let limit = try intParameter(request, "limit", default: 50, range: 1...QueryEngine.maxLimit)
            return json(try await api.blocking { eventsJSON(try run { try api.engine.find(EventQuery(limit: limit)) }) })
        }
        router.post("/api/grid/events/query") { request, _ in
            let body = try await collect(request, limit: maxBody)
            let value: JSONValue
            do {
                value = try JSONValue.parse(Array(buffer: body), limit: maxBody)
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
                e.extra = [("suggestions", error.suggestions)]
                throw e
            }
            return json(try await api.blocking { answerJSON(question, interpretation, try run { try api.engine.answer(interpretation) }) })
        }
        router.get("/api/events") { request, _ in
            let query = try structuredQuery(request)
            return json(try await api.blocking { eventsJSON(try run { try api.engine.find(query) }) })
        }
        router.get("/api/events/stream") { request, _ in
            // Resumable server-sent events (LiveStream.swift).
            try await LiveStream.response(request, api: api)
        }
        router.get("/api/events/{id}") { _, context in
            let id = try context.parameters.require("id")
            guard (try? GridEvent.validateId(id, what: "event id")) != nil else {
                throw APIError(.badId, "an event id is 1-256 of A-Z a-z 0-9 - _ . : @ /")
            }
            return json(try await api.blocking {
                guard let stored = api.store.event(id: id), let event = try? GridEvent(stored: stored) else {
                    throw APIError(.notFound, "no event with id \(id.prefix(256))")
                }
                // An event has at most 64 entities and one time bucket: every one of its edges fits.
                let graph = try run { try api.engine.neighbors(of: id, depth: 1, limit: 5000, perNode: 5000) }
                var w = JSONWriter()
                w.raw("{\"event\":")
                event.apiJSON(into: &w)
                w.raw(",\"adjacency\":[")
                for (i, edge) in graph.edges.enumerated() {
                    if i > 0 { w.raw(",") }
                    let outgoing = edge.source == id
                    let other = outgoing ? edge.target : edge.source
                    w.raw("{\"node\":")
                    w.string(other)
                    w.raw(",\"kind\":")
                    w.string(graph.nodes.first { $0.id == other }?.kind.rawValue ?? "entity")
                    w.raw(",\"direction\":")
                    w.string(outgoing ? "out" : "in")
                    w.raw(",\"edge_type\":\(edge.edgeType),\"timestamp\":")
                    w.string(TimeText.format(edge.timestamp))
                    w.raw("}")
                }
                w.raw("]}")
                return w.text
            })
        }
        router.get("/api/entities/{id}/events") { request, context in
            let id = try context.parameters.require("id")
            guard (try? GridEvent.validateId(id, what: "entity id")) != nil else {
                throw APIError(.badEntity, "invalid entity id")
            }
            var query = try structuredQuery(request)
            query.entity = id
            return json(try await api.blocking { [query] in eventsJSON(try run { try api.engine.find(query) }) })
        }
        router.get("/api/graph/neighbors") { request, _ in
            guard let id = try parameter(request, "id") else { throw APIError(.missingId, "pass ?id= (an entity, event or time bucket id)") }
            guard (try? GridEvent.validateId(id, what: "id")) != nil else {
                throw APIError(.badId, "an id is 1-256 of A-Z a-z 0-9 - _ . : @ /")
            }
            let depth = try intParameter(request, "depth", default: 1, range: 1...4)
            let limit = try intParameter(request, "limit", default: 200, range: 1...5000)
            let perNode = try intParameter(request, "per_node", default: 50, range: 1...5000)
            return json(try await api.blocking {
                let graph = try run { try api.engine.neighbors(of: id, depth: depth, limit: limit, perNode: perNode) }
                var w = JSONWriter()
                w.raw("{\"id\":")
                w.string(id)
                w.raw(",\"depth\":\(depth),\"nodes\":[")
                for (i, n) in graph.nodes.enumerated() {
                    if i > 0 { w.raw(",") }
                    w.raw("{\"id\":")
                    w.string(n.id)
                    w.raw(",\"kind\":")
                    w.string(n.kind.rawValue)
                    w.raw(",\"depth\":\(n.depth)}")
                }
                w.raw("],\"edges\":[")
                for (i, e) in graph.edges.enumerated() {
                    if i > 0 { w.raw(",") }
                    w.raw("{\"source\":")
                    w.string(e.source)
                    w.raw(",\"target\":")
                    w.string(e.target)
                    w.raw(",\"edge_type\":\(e.edgeType),\"timestamp\":")
                    w.string(TimeText.format(e.timestamp))
                    w.raw("}")
                }
                w.raw("],\"truncated\":\(graph.truncated)}")
                return w.text
            })
        }
        router.get("/api/grid/agents") { request, _ in
            // `at`: the state as of that moment (every event with a timestamp at or before it).
            let at = try adapt { () throws(ParameterError) in try QueryParameters.time(lookup(request), "at") }
            return json(try await api.blocking {
                let states: (agents: [AgentState], nodes: [NodeState])
                do throws(GridStateError) {
                    if let at {
                        states = try api.gridState.states(at: at)
                    } else {
                        states = api.gridState.states()
                    }
                } catch {
                    throw APIError(.historyDeleted, error.description)
                }
                return agentsJSON(states.agents, nodes: states.nodes, at: at)
            })
        }
        router.get("/api/stats") { _, _ in
            json(try await api.blocking {
                let s = api.store.stats
                let ingest = api.ingest()
                var w = JSONWriter()
                w.raw("{\"events\":\(s.events),\"adjacency_entries\":\(s.adjacencyEntries),\"segments\":\(s.segments),")
                w.raw("\"sealed_segments\":\(s.sealedSegments),\"data_bytes\":\(s.dataBytes),\"file_bytes\":\(s.fileBytes),")
                w.raw("\"disk_bytes\":\(s.diskBytes),")
                w.raw("\"duplicates_ignored\":\(s.duplicatesIgnored),\"last_sequence\":\(s.lastSequence),")
                w.raw("\"oldest\":")
                if let t = s.minTimestamp { w.string(TimeText.format(t)) } else { w.raw("null") }
                w.raw(",\"newest\":")
                if let t = s.maxTimestamp { w.string(TimeText.format(t)) } else { w.raw("null") }
                w.raw(",\"ingest\":{\"events_total\":\(ingest.total),\"rate_per_second\":")
                w.number(ingest.rate)
                w.raw(",\"ack_p99_micros\":\(ingest.ackP99Micros),\"connections\":\(ingest.connections)},")
                w.raw("\"live_streams\":\(api.feed.subscriberCount),\"resident_bytes\":\(residentBytes()),\"types\":{")
                let counts = api.store.typeCounts().sorted { $0.key < $1.key }
                for (i, (code, n)) in counts.enumerated() {
                    if i > 0 { w.raw(",") }
                    w.string(EventType(rawValue: code)?.name ?? String(code))
                    w.raw(":\(n)")
                }
                w.raw("},\"compaction\":{\"compacted_segments\":\(s.compactedSegments),\"compacted_bytes\":\(s.compactedBytes),")
                w.raw("\"compacted_events\":\(s.compactedEvents),\"uncompacted_data_bytes\":\(s.uncompactedDataBytes),")
                w.raw("\"index_files\":\(s.indexFiles),\"index_bytes\":\(s.indexBytes),\"disk_bytes\":\(s.diskBytes)},")
                w.raw("\"retention\":{\"deleted_segments\":\(s.retention.segments),\"deleted_events\":\(s.retention.events),")
                w.raw("\"deleted_bytes\":\(s.retention.bytes),\"last_deleted_segment\":\(s.retention.lastSegment),\"last_deletion\":")
                if s.retention.lastDeletion > 0 { w.string(TimeText.format(s.retention.lastDeletion)) } else { w.raw("null") }
                w.raw("},\"read_damage\":[")
                for (i, d) in s.readDamage.enumerated() {
                    if i > 0 { w.raw(",") }
                    w.string(d.description)
                }
                w.raw("]")
                if let o = api.ownLogs() { w.raw(",\"own_logs\":{\"dropped\":\(o.dropped),\"suppressed\":\(o.suppressed)}") }
                if let r = api.replicationStats() { w.raw("," + r) }
                w.raw("}")
                return w.text
            })
        }
        addInteropRoutes(to: router, api)
        return router
    }

    // MARK: Bodies

    /// Collects a request body of at most `limit` bytes, refusing a larger one by its Content-Length when sent,
    /// before reading it.
    /// - Throws: 413 `body_too_large` beyond `limit`; 400 `body_unreadable` when the body could not be read to its
    ///   end (the client reset the connection, sent a malformed chunk, ...).
    static func collect(_ request: Request, limit: Int) async throws(APIError) -> ByteBuffer {
        let tooLarge = APIError(.bodyTooLarge, "request body exceeds \(limit) bytes")
        if let length = request.headers[.contentLength].flatMap({ Int($0) }), length > limit { throw tooLarge }
        do {
            return try await request.body.collect(upTo: limit)
        } catch is NIOTooManyBytesError {
            throw tooLarge
        } catch {
            throw APIError(.bodyUnreadable, "the request body could not be read: \(error)")
        }
    }

    // MARK: Parameters

    // The parsing itself lives in EventQuery's `QueryParameters` (pure, shared with the fuzz tests); these adapt a
    // request to it and its errors to the JSON error shape.

    static func lookup(_ request: Request) -> QueryParameters.Lookup {
        let parameters = request.uri.queryParameters
        return { parameters.get($0) }
    }

    static func adapt<T>(_ body: () throws(ParameterError) -> T) throws -> T {
        do {
            return try body()
        } catch {
            throw APIError(.parameter(error.code), error.message)
        }
    }

    static func parameter(_ request: Request, _ name: String) throws -> String? {
        try adapt { () throws(ParameterError) in try QueryParameters.string(lookup(request), name) }
    }

    static func intParameter(_ request: Request, _ name: String, default value: Int, range: ClosedRange<Int>) throws -> Int {
        try adapt { () throws(ParameterError) in try QueryParameters.int(lookup(request), name, default: value, range: range) }
    }

    static func typesParameter(_ request: Request) throws -> [EventType] {
        try adapt { () throws(ParameterError) in try QueryParameters.types(lookup(request)) }
    }

    static func structuredQuery(_ request: Request) throws -> EventQuery {
        try adapt { () throws(ParameterError) in try QueryParameters.structuredQuery(lookup(request)) }
    }

    /// Maps engine errors to 4xx.
    static func run<T>(_ body: () throws -> T) throws -> T {
        do {
            return try body()
        } catch let error as QueryError {
            throw APIError(.query(error.code), error.message)
        }
    }

    // MARK: JSON

    static func eventsJSON(_ page: QueryPage) -> String {
        var w = JSONWriter()
        w.raw("{\"events\":[")
        for (i, e) in page.events.enumerated() {
            if i > 0 { w.raw(",") }
            e.apiJSON(into: &w)
        }
        w.raw("],\"next_cursor\":")
        if let c = page.nextCursor { w.string(c) } else { w.raw("null") }
        w.raw("}")
        return w.text
    }

    static func bucketsJSON(_ buckets: [Bucket], into w: inout JSONWriter) {
        w.raw("[")
        for (i, b) in buckets.enumerated() {
            if i > 0 { w.raw(",") }
            w.raw("{\"key\":")
            w.string(b.key)
            w.raw(",\"count\":\(b.count)}")
        }
        w.raw("]")
    }

    static func answerJSON(_ question: String, _ i: Interpretation, _ answer: Answer) -> String {
        var w = JSONWriter()
        w.raw("{\"question\":")
        w.string(question)
        w.raw(",\"interpretation\":{\"action\":")
        w.string(i.actionName)
        switch i.action {
        case .group(let key, let top):
            w.raw(",\"group_by\":")
            w.string(key.rawValue)
            if let top { w.raw(",\"top\":\(top)") }
        case .countDistinct(let key):
            w.raw(",\"group_by\":")
            w.string(key.rawValue)
        default: break
        }
        w.raw(",\"query\":")
        i.query.json(into: &w)
        w.raw(",\"sentence\":")
        w.string(i.sentence)
        w.raw("},\"result\":")
        switch answer {
        case .events(let page):
            w.raw("{\"kind\":\"events\",\"events\":[")
            for (k, e) in page.events.enumerated() {
                if k > 0 { w.raw(",") }
                e.apiJSON(into: &w)
            }
            w.raw("],\"next_cursor\":")
            if let c = page.nextCursor { w.string(c) } else { w.raw("null") }
            w.raw("}")
        case .count(let n, let breakdown):
            w.raw("{\"kind\":\"count\",\"count\":\(n),\"breakdown\":")
            bucketsJSON(breakdown, into: &w)
            w.raw("}")
        case .groups(let groups):
            w.raw("{\"kind\":\"groups\",\"groups\":")
            bucketsJSON(groups, into: &w)
            w.raw("}")
        case .chain(let events):
            w.raw("{\"kind\":\"chain\",\"events\":[")
            for (k, e) in events.enumerated() {
                if k > 0 { w.raw(",") }
                e.apiJSON(into: &w)
            }
            w.raw("]}")
        }
        w.raw("}")
        return w.text
    }

    static func nodeJSON(_ n: NodeState, into w: inout JSONWriter) {
        w.raw("{\"node_id\":")
        w.string(n.nodeId)
        w.raw(",\"agent_id\":")
        w.string(n.agentId)
        w.raw(",\"state\":")
        w.string(n.state.rawValue)
        w.raw(",\"pid\":" + (n.pid.map(String.init) ?? "null") + ",\"port\":" + (n.port.map(String.init) ?? "null"))
        w.raw(",\"restart_count\":\(n.restartCount),\"last_event\":")
        w.string(n.lastEvent)
        w.raw(",\"last_event_at\":")
        w.time(n.lastEventAt)
        w.raw(",\"detail\":")
        if let d = n.detail { w.string(d) } else { w.raw("null") }
        w.raw("}")
    }

    static func agentsJSON(_ agents: [AgentState], nodes: [NodeState], at: Int64? = nil) -> String {
        // Each node appears twice (under its agent and in `nodes`): encode it once.
        var encoded: [String: String] = [:]
        encoded.reserveCapacity(nodes.count)
        for n in nodes {
            var nw = JSONWriter()
            nodeJSON(n, into: &nw)
            encoded[n.nodeId] = nw.text
        }
        func node(_ n: NodeState, into w: inout JSONWriter) {
            if let text = encoded[n.nodeId] {
                w.raw(text)
            } else {
                nodeJSON(n, into: &w)
            }
        }
        var w = JSONWriter()
        if let at {
            w.raw("{\"at\":")
            w.string(TimeText.format(at))
            w.raw(",\"agents\":[")
        } else {
            w.raw("{\"agents\":[")
        }
        for (i, a) in agents.enumerated() {
            if i > 0 { w.raw(",") }
            w.raw("{\"agent_id\":")
            w.string(a.agentId)
            w.raw(",\"state\":")
            w.string(a.health.rawValue)
            w.raw(",\"last_heartbeat\":")
            if let t = a.lastHeartbeat { w.time(t) } else { w.raw("null") }
            w.raw(",\"last_transition\":")
            w.string(a.lastTransition)
            w.raw(",\"last_transition_at\":")
            w.time(a.lastTransitionAt)
            w.raw(",\"hostname\":")
            if let h = a.hostname { w.string(h) } else { w.raw("null") }
            w.raw(",\"endpoint\":")
            if let e = a.endpoint { w.string(e) } else { w.raw("null") }
            w.raw(",\"nodes\":[")
            for (k, n) in a.nodes.enumerated() {
                if k > 0 { w.raw(",") }
                node(n, into: &w)
            }
            w.raw("]}")
        }
        w.raw("],\"nodes\":[")
        for (k, n) in nodes.enumerated() {
            if k > 0 { w.raw(",") }
            node(n, into: &w)
        }
        w.raw("]}")
        return w.text
    }
}
