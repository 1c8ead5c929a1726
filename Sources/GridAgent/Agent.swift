import EventEmitter
import Foundation
import GridBase
import GridControl
import GridEvents
import Hummingbird
import Logging
import NIOCore
import ServiceLifecycle

/// grid-agent: registers with the master, heartbeats (re-registering when the master forgets it), runs storage
/// nodes for the master, and on graceful shutdown stops its nodes and unregisters.
public final class GridAgentService: Service, @unchecked Sendable {
    public let config: AgentConfig
    public let supervisor: NodeSupervisor
    let logger: Logger
    let client: ControlClient

    public init(config: AgentConfig, events: EventEmitter, logger: Logger) {
        self.config = config
        self.logger = logger
        self.supervisor = NodeSupervisor(config: config, events: events, logger: logger)
        self.client = ControlClient(timeoutSeconds: max(2, config.heartbeatIntervalSeconds))
    }

    var endpoint: String { "http://" + config.listen }

    func nodesJSON() -> String {
        "[" + supervisor.list.map { n in
            jsonObject([("node_id", jsonString(n.nodeId)), ("port", String(n.port)), ("storage_path", jsonString(n.storagePath)),
                        ("pid", jsonIntOrNull(n.pid)), ("state", jsonString(n.state)), ("restart_count", String(n.restartCount))])
        }.joined(separator: ",") + "]"
    }

    func register() async throws {
        let body = jsonObject([("agent_id", jsonString(config.agentId)), ("hostname", jsonString(config.hostname)),
                               ("platform", jsonString(config.platform)), ("agent_endpoint", jsonString(endpoint)),
                               ("max_storage_nodes", String(config.maxStorageNodes)), ("nodes", nodesJSON())])
        _ = try await client.call("POST", config.master + "/api/agents/register", body: body)
    }

    public func run() async throws {
        var registered = false
        var noticed = false
        var lastMonitor = Date()
        while !Task.isShuttingDownGracefully && !Task.isCancelled {
            do {
                if !registered {
                    try await register()
                    registered = true
                    noticed = false
                    logger.info("registered with \(config.master) as \(config.agentId)")
                } else {
                    let body = jsonObject([("storage_node_count", String(supervisor.list.count)), ("nodes", nodesJSON())])
                    _ = try await client.call("POST", config.master + "/api/agents/\(config.agentId)/heartbeat", body: body)
                }
            } catch let failure as ControlClient.Failure where failure.status == 404 && registered {
                logger.info("the master does not know \(config.agentId); registering again")
                registered = false
                continue
            } catch {
                if !noticed { logger.warning("master \(config.master) unreachable: \(error); retrying") }
                noticed = true
            }
            if Date().timeIntervalSince(lastMonitor) >= config.monitorIntervalSeconds {
                lastMonitor = Date()
                supervisor.monitor()
            }
            try? await Task.sleep(nanoseconds: UInt64(config.heartbeatIntervalSeconds * 1e9))
        }
        logger.info("stopping \(supervisor.list.count) node(s) and unregistering")
        let supervisor = self.supervisor
        try? await offPool { supervisor.stopAll() }
        _ = try? await client.call("POST", config.master + "/api/agents/\(config.agentId)/unregister", body: "{}")
    }

    /// The agent's HTTP API, called by the master.
    public func router() -> Router<BasicRequestContext> {
        let router = Router()
        let supervisor = self.supervisor
        router.post("/api/nodes/spawn") { request, _ in
            let buffer = try await request.body.collect(upTo: 64 << 10)
            let v = (try? JSONValue.parse(Array(buffer: buffer))) ?? .null
            guard let nodeId = v["node_id"]?.stringValue, let port = v["port"]?.intValue, let path = v["storage_path"]?.stringValue else {
                return Self.error(400, "bad_request", "send node_id, port and storage_path")
            }
            do {
                let memory = Int(v["memory_limit_mb"]?.intValue ?? 1024)
                let pid = try await offPool { try supervisor.spawn(nodeId: nodeId, port: Int(port), storagePath: path, memoryLimitMb: memory) }
                return Self.json(jsonObject([("node_id", jsonString(nodeId)), ("pid", String(pid)), ("port", String(port))]))
            } catch {
                return Self.error(422, "spawn_failed", "\(error)")
            }
        }
        router.post("/api/nodes/stop") { request, _ in
            let buffer = try await request.body.collect(upTo: 64 << 10)
            let v = (try? JSONValue.parse(Array(buffer: buffer))) ?? .null
            guard let nodeId = v["node_id"]?.stringValue else { return Self.error(400, "bad_request", "send node_id") }
            do {
                try await offPool { try supervisor.stop(nodeId: nodeId) }
                return Self.json("{\"ok\":true}")
            } catch {
                return Self.error(404, "unknown_node", "\(error)")
            }
        }
        router.get("/api/nodes") { _, _ in Self.json("{\"nodes\":" + self.nodesJSON() + "}") }
        return router
    }

    static func json(_ text: String, status: HTTPResponse.Status = .ok) -> Response {
        Response(status: status, headers: [.contentType: "application/json"], body: ResponseBody(byteBuffer: ByteBuffer(string: text)))
    }

    static func error(_ status: Int, _ code: String, _ message: String) -> Response {
        json(jsonObject([("error", jsonObject([("code", jsonString(code)), ("message", jsonString(message))]))]), status: HTTPResponse.Status(code: status))
    }
}

/// Runs blocking work (waiting for a child to start or stop) on a Dispatch thread, not on Swift concurrency's
/// small cooperative pool, so heartbeats and requests keep flowing meanwhile.
func offPool<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { continuation in
        DispatchQueue.global().async { continuation.resume(with: Result { try body() }) }
    }
}
