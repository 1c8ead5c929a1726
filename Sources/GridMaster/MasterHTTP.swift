import Foundation
import GridControl
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
        json(e.json, status: HTTPResponse.Status(code: e.status))
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

    /// The master's record of reported nodes.
    static func records(_ reports: [NodeReport], agentId: String) -> [NodeRecord] {
        reports.map { NodeRecord(nodeId: $0.nodeId, agentId: agentId, port: $0.port, storagePath: $0.storagePath, pid: $0.pid, state: $0.state) }
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
    ///   - token: the control plane's token, required on every route when given (`ControlToken`).
    ///   - loopbackOnly: whether the master listens on loopback only (`/metrics` without a token is refused otherwise).
    public static func router(_ master: Master, metrics: MasterMetrics? = nil, token: String? = nil,
                              loopbackOnly: Bool = true) -> Router<BasicRequestContext> {
        let router = Router()
        router.add(middleware: MasterErrorMiddleware())
        if let token { router.add(middleware: MasterTokenMiddleware(token: token)) }
        if let metrics { addMetricsRoute(to: router, master, metrics, token: token, loopbackOnly: loopbackOnly) }
        router.post("/api/agents/register") { request, _ in
            await handle { () async throws(ControlError) -> Response in
                let v = try await body(request)
                let r = try RegisterRequest(v)
                try await master.register(agentId: r.agentId, hostname: r.hostname, platform: r.platform, endpoint: r.agentEndpoint,
                                          maxNodes: r.maxStorageNodes, nodes: records(r.nodes, agentId: r.agentId))
                return json("{\"ok\":true}")
            }
        }
        router.post("/api/agents/{id}/heartbeat") { request, context in
            await handle { () async throws(ControlError) -> Response in
                let id = context.parameters.get("id") ?? ""
                let v = try await body(request)
                let h = try HeartbeatRequest(v)
                try await master.heartbeat(agentId: id, nodeCount: h.storageNodeCount, nodes: h.nodes.map { records($0, agentId: id) })
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
                let s = try SpawnRequest(v, needsAgent: true)
                let node = try await master.spawn(agentId: s.agentId ?? "", nodeId: s.nodeId, port: s.port, storagePath: s.storagePath,
                                                  memoryLimitMb: s.memoryLimitMb)
                return json(nodeJSON(node))
            }
        }
        router.post("/api/nodes/stop") { request, _ in
            await handle { () async throws(ControlError) -> Response in
                let v = try await body(request)
                let s = try StopRequest(v, needsAgent: true)
                try await master.stop(agentId: s.agentId ?? "", nodeId: s.nodeId)
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
