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
        do {
            return try JSONValue.parse(Array(buffer: buffer), limit: maxBody)
        } catch {
            throw ControlError(status: 400, code: "malformed_body", message: error.message)
        }
    }

    static func string(_ v: JSONValue, _ key: String) throws(ControlError) -> String {
        guard let s = v[key]?.stringValue else { throw ControlError(status: 400, code: "bad_request", message: "missing \"\(key)\" (a string)") }
        return s
    }

    static func int(_ v: JSONValue, _ key: String, default value: Int? = nil) throws(ControlError) -> Int {
        if let i = v[key]?.intValue, let n = Int(exactly: i) { return n }
        if v[key] == nil || v[key] == .null, let value { return value }
        throw ControlError(status: 400, code: "bad_request", message: "missing \"\(key)\" (an integer)")
    }

    static func nodes(_ v: JSONValue, agentId: String) -> [NodeRecord]? {
        guard case .array(let list)? = v["nodes"] else { return nil }
        return list.compactMap { n in
            guard let id = n["node_id"]?.stringValue else { return nil }
            return NodeRecord(nodeId: id, agentId: agentId, port: Int(n["port"]?.intValue ?? 0), storagePath: n["storage_path"]?.stringValue ?? "",
                              pid: n["pid"]?.intValue.map { Int($0) }, state: n["state"]?.stringValue ?? "running")
        }
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
        if let metrics { addMetricsRoute(to: router, master, metrics, token: token, loopbackOnly: loopbackOnly) }
        router.post("/api/agents/register") { request, _ in
            await handle { () async throws(ControlError) -> Response in
                let v = try await body(request)
                let id = try string(v, "agent_id")
                try await master.register(agentId: id, hostname: try string(v, "hostname"), platform: try string(v, "platform"),
                                          endpoint: try string(v, "agent_endpoint"), maxNodes: try int(v, "max_storage_nodes"),
                                          nodes: nodes(v, agentId: id) ?? [])
                return json("{\"ok\":true}")
            }
        }
        router.post("/api/agents/{id}/heartbeat") { request, context in
            await handle { () async throws(ControlError) -> Response in
                let id = context.parameters.get("id") ?? ""
                let v = try await body(request)
                try await master.heartbeat(agentId: id, nodeCount: try int(v, "storage_node_count", default: 0), nodes: nodes(v, agentId: id))
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
