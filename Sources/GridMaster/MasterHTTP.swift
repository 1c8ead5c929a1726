import Foundation
import GridEvents
import Hummingbird
import NIOCore
import ServiceLifecycle

/// The master's HTTP/JSON control API.
public enum MasterHTTP {
    static let maxBody = 256 << 10

    static func json(_ text: String, status: HTTPResponse.Status = .ok) -> Response {
        Response(status: status, headers: [.contentType: "application/json; charset=utf-8"], body: ResponseBody(byteBuffer: ByteBuffer(string: text)))
    }

    static func error(_ e: ControlError) -> Response {
        json(jsonObject([("error", jsonObject([("code", jsonString(e.code)), ("message", jsonString(e.message))]))]),
             status: HTTPResponse.Status(code: e.status))
    }

    static func body(_ request: Request) async throws(ControlError) -> JSONValue {
        let buffer: ByteBuffer
        do {
            buffer = try await request.body.collect(upTo: maxBody)
        } catch {
            throw ControlError(status: 413, code: "body_too_large", message: "request body exceeds \(maxBody) bytes")
        }
        let value: JSONValue
        do {
            value = try JSONValue.parse(Array(buffer: buffer), limit: maxBody)
        } catch {
            throw ControlError(status: 400, code: "malformed_body", message: error.message)
        }
        guard case .object = value else { throw ControlError(status: 400, code: "malformed_body", message: "send a JSON object") }
        return value
    }

    static func string(_ v: JSONValue, _ key: String) throws(ControlError) -> String {
        guard let s = v[key]?.stringValue else { throw ControlError(status: 400, code: "bad_request", message: "missing \"\(key)\" (a string)") }
        return s
    }

    static func int(_ v: JSONValue, _ key: String, default value: Int? = nil) throws(ControlError) -> Int {
        if case .int(let i)? = v[key], let n = Int(exactly: i) { return n }  // an integer, not 1.0 or 1e2
        if v[key] == nil || v[key] == .null, let value { return value }
        throw ControlError(status: 400, code: "bad_request", message: "missing \"\(key)\" (an integer)")
    }

    /// The `nodes` an agent reports: nil when absent; each must be an object with a valid `node_id` and, when
    /// present, an integer `port` and `pid` (or null) and string `storage_path` and `state`.
    static func nodes(_ v: JSONValue, agentId: String) throws(ControlError) -> [NodeRecord]? {
        guard let value = v["nodes"], value != .null else { return nil }
        func bad(_ what: String) -> ControlError { ControlError(status: 400, code: "bad_request", message: "nodes: \(what)") }
        guard case .array(let list) = value else { throw bad("must be an array of objects") }
        var out: [NodeRecord] = []
        for n in list {
            guard case .object(let o) = n else { throw bad("each node is an object") }
            guard let id = o["node_id"]?.stringValue, (try? GridEvent.validateId(id, what: "node id")) != nil else {
                throw bad("each node needs a valid \"node_id\"")
            }
            func optional<T>(_ key: String, _ read: (JSONValue) -> T?) throws(ControlError) -> T? {
                guard let x = o[key], x != .null else { return nil }
                guard let t = read(x) else { throw bad("\(key) of \(id) has the wrong type") }
                return t
            }
            func integer(_ x: JSONValue) -> Int? { if case .int(let i) = x { Int(exactly: i) } else { nil } }
            let port = try optional("port", integer)
            let pid = try optional("pid", integer)
            let path = try optional("storage_path") { $0.stringValue }
            let state = try optional("state") { $0.stringValue }
            out.append(NodeRecord(nodeId: id, agentId: agentId, port: port ?? 0, storagePath: path ?? "", pid: pid, state: state ?? "running"))
        }
        return out
    }

    static func nodeJSON(_ n: NodeRecord) -> String {
        jsonObject([("node_id", jsonString(n.nodeId)), ("agent_id", jsonString(n.agentId)), ("port", String(n.port)),
                    ("storage_path", jsonString(n.storagePath)), ("pid", jsonIntOrNull(n.pid)), ("state", jsonString(n.state))])
    }

    /// Runs `body`, turning a `ControlError` into its JSON response.
    static func handle(_ body: () async throws(ControlError) -> Response) async -> Response {
        do { return try await body() } catch { return Self.error(error) }
    }

    /// - Parameters:
    ///   - metrics: serves `GET /metrics` when given (see `addMetricsRoute`).
    ///   - token: required on `/metrics` when given.
    ///   - loopbackOnly: whether the master listens on loopback only (`/metrics` without a token is refused otherwise).
    public static func router(_ master: Master, metrics: MasterMetrics? = nil, token: String? = nil,
                              loopbackOnly: Bool = true) -> Router<BasicRequestContext> {
        let router = Router()
        router.add(middleware: MasterErrorMiddleware())
        if let metrics { addMetricsRoute(to: router, master, metrics, token: token, loopbackOnly: loopbackOnly) }
        router.post("/api/agents/register") { request, _ in
            await handle { () async throws(ControlError) -> Response in
                let v = try await body(request)
                let id = try string(v, "agent_id")
                try await master.register(agentId: id, hostname: try string(v, "hostname"), platform: try string(v, "platform"),
                                          endpoint: try string(v, "agent_endpoint"), maxNodes: try int(v, "max_storage_nodes"),
                                          nodes: try nodes(v, agentId: id) ?? [])
                return json("{\"ok\":true}")
            }
        }
        router.post("/api/agents/{id}/heartbeat") { request, context in
            await handle { () async throws(ControlError) -> Response in
                let id = context.parameters.get("id") ?? ""
                let v = try await body(request)
                try await master.heartbeat(agentId: id, nodeCount: try int(v, "storage_node_count", default: 0), nodes: try nodes(v, agentId: id))
                return json("{\"ok\":true}")
            }
        }
        router.post("/api/agents/{id}/unregister") { _, context in
            await handle { () async throws(ControlError) -> Response in
                try await master.unregister(agentId: context.parameters.get("id") ?? "")
                return json("{\"ok\":true}")
            }
        }
        router.post("/api/nodes/spawn") { request, _ in
            await handle { () async throws(ControlError) -> Response in
                let v = try await body(request)
                let node = try await master.spawn(agentId: try string(v, "agent_id"), nodeId: try string(v, "node_id"), port: try int(v, "port"),
                                                  storagePath: try string(v, "storage_path"), memoryLimitMb: try int(v, "memory_limit_mb", default: 1024))
                return json(nodeJSON(node))
            }
        }
        router.post("/api/nodes/stop") { request, _ in
            await handle { () async throws(ControlError) -> Response in
                let v = try await body(request)
                try await master.stop(agentId: try string(v, "agent_id"), nodeId: try string(v, "node_id"))
                return json("{\"ok\":true}")
            }
        }
        router.get("/api/agents") { _, _ in
            let agents = await master.agentList
            let items = agents.map { a in
                jsonObject([("agent_id", jsonString(a.agentId)), ("hostname", jsonString(a.hostname)), ("platform", jsonString(a.platform)),
                            ("endpoint", jsonString(a.endpoint)), ("health", jsonString(a.health.rawValue)), ("max_storage_nodes", String(a.maxNodes)),
                            ("nodes", String(a.nodes.count)), ("last_heartbeat", jsonString(TimeText.format(a.lastHeartbeat)))])
            }
            return json("{\"agents\":[" + items.joined(separator: ",") + "]}")
        }
        router.get("/api/nodes") { _, _ in
            let nodes = await master.agentList.flatMap { $0.nodes.values }.sorted { $0.nodeId < $1.nodeId }
            return json("{\"nodes\":[" + nodes.map(nodeJSON).joined(separator: ",") + "]}")
        }
        router.get("/api/status") { _, _ in
            let s = await master.status
            return json(jsonObject([("state", jsonString(s.state)), ("total_agents", String(s.total)), ("healthy_agents", String(s.healthy)), ("nodes", String(s.nodes))]))
        }
        return router
    }
}

/// Unknown routes as JSON errors: 404 `not_found`, or 405 `method_not_allowed` with `Allow` for a known path.
extension MasterHTTP {
    /// Every route of `router(...)` (docs/openapi.yaml), for 405 answers.
    static let routes = RouteTable([
            ("/api/agents/register", ["POST"]), ("/api/agents/{id}/heartbeat", ["POST"]), ("/api/agents/{id}/unregister", ["POST"]),
            ("/api/nodes/spawn", ["POST"]), ("/api/nodes/stop", ["POST"]), ("/api/agents", ["GET"]), ("/api/nodes", ["GET"]),
            ("/api/status", ["GET"]), ("/metrics", ["GET"]),
    ])
}

struct MasterErrorMiddleware<Context: RequestContext>: RouterMiddleware {
    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        do {
            return try await next(request, context)
        } catch let error as HTTPError where error.status == .notFound {
            if let allowed = MasterHTTP.routes.methods(for: request.uri.path), !allowed.contains(request.method.rawValue) {
                var r = MasterHTTP.error(ControlError(status: 405, code: "method_not_allowed",
                                                      message: "\(request.uri.path) takes \(allowed.joined(separator: ", "))"))
                r.headers[.allow] = allowed.joined(separator: ", ")
                return r
            }
            return MasterHTTP.error(ControlError(status: 404, code: "not_found", message: "no route \(request.method) \(request.uri.path)"))
        }
    }
}

/// Runs the health checker until graceful shutdown.
public struct HealthChecker: Service {
    let master: Master
    public init(master: Master) { self.master = master }

    public func run() async throws {
        let interval = UInt64(master.config.checkIntervalSeconds * 1e9)
        while !Task.isCancelled && !Task.isShuttingDownGracefully {
            try? await Task.sleep(nanoseconds: interval)
            await master.checkHealth()
        }
    }
}
