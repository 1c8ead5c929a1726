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

    /// - Throws: `StorageRoot.Refusal` when `storage_root` cannot be created or resolved.
    public init(config: AgentConfig, events: EventEmitter, logger: Logger) throws {
        self.config = config
        self.logger = logger
        self.supervisor = try NodeSupervisor(config: config, events: events, logger: logger)
        self.client = ControlClient(timeoutSeconds: max(2, config.heartbeatIntervalSeconds), token: config.token)
    }

    var endpoint: String { "http://" + config.listen }

    func nodeReports() -> [NodeReport] { supervisor.list }

    func register() async throws {
        let request = RegisterRequest(agentId: config.agentId, hostname: config.hostname, platform: config.platform, agentEndpoint: endpoint,
                                      maxStorageNodes: config.maxStorageNodes, nodes: nodeReports())
        _ = try await client.call("POST", config.master + ControlRoute.register, body: request.json)
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
                    let reports = nodeReports()
                    let body = HeartbeatRequest(storageNodeCount: reports.count, nodes: reports).json
                    _ = try await client.call("POST", config.master + ControlRoute.heartbeat(config.agentId), body: body)
                }
            } catch let failure as ControlClient.Failure where failure.status == 404 && registered {
                logger.info("the master does not know \(config.agentId); registering again")
                registered = false
                continue
            } catch let failure as ControlClient.Failure where failure.status == 401 {
                if !noticed {
                    logger.error("master \(config.master) refused this agent's token (401): set the same token as the master's --token (token in the config or $\(ControlToken.environmentVariable)); retrying")
                }
                noticed = true
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
        _ = try? await client.call("POST", config.master + ControlRoute.unregister(config.agentId), body: "{}")
    }

    /// The agent's HTTP API, called by the master; with a token, every route needs it (`ControlToken`).
    public func router() -> Router<BasicRequestContext> {
        let router = Router()
        if let token = config.token { router.add(middleware: AgentTokenMiddleware(token: token)) }
        let supervisor = self.supervisor
        router.post("/api/nodes/spawn") { request, _ in
            let buffer = try await request.body.collect(upTo: 64 << 10)
            let v = (try? JSONValue.parse(Array(buffer: buffer))) ?? .null
            let s: SpawnRequest
            do throws(ControlError) { s = try SpawnRequest(v, needsAgent: false) } catch { return Self.error(error) }
            do {
                let (pid, path) = try await offPool {
                    try supervisor.spawn(nodeId: s.nodeId, port: s.port, storagePath: s.storagePath, memoryLimitMb: s.memoryLimitMb)
                }
                return Self.json(jsonObject([("node_id", jsonString(s.nodeId)), ("pid", String(pid)), ("port", String(s.port)),
                                             ("storage_path", jsonString(path))]))
            } catch {
                return Self.error(422, "spawn_failed", "\(error)")
            }
        }
        router.post("/api/nodes/stop") { request, _ in
            let buffer = try await request.body.collect(upTo: 64 << 10)
            let v = (try? JSONValue.parse(Array(buffer: buffer))) ?? .null
            let s: StopRequest
            do throws(ControlError) { s = try StopRequest(v, needsAgent: false) } catch { return Self.error(error) }
            do {
                try await offPool { try supervisor.stop(nodeId: s.nodeId) }
                return Self.json("{\"ok\":true}")
            } catch {
                return Self.error(404, "unknown_node", "\(error)")
            }
        }
        router.get(RouterPath(ControlRoute.nodes)) { _, _ in Self.json("{\"nodes\":" + NodeReport.json(self.nodeReports()) + "}") }
        return router
    }

    static func json(_ text: String, status: HTTPResponse.Status = .ok) -> Response {
        Response(status: status, headers: [.contentType: "application/json"], body: ResponseBody(byteBuffer: ByteBuffer(string: text)))
    }

    static func error(_ status: Int, _ code: String, _ message: String) -> Response {
        error(ControlError(status: status, code: code, message: message))
    }

    static func error(_ e: ControlError) -> Response {
        json(e.json, status: HTTPResponse.Status(code: e.status))
    }
}

/// Answers 401 (`ControlToken.refusal`) to a request without the control plane's token.
struct AgentTokenMiddleware<Context: RequestContext>: RouterMiddleware {
    let token: String
    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        if let refusal = ControlToken.refusal(authorization: request.headers[.authorization], token: token) {
            return GridAgentService.error(refusal)
        }
        return try await next(request, context)
    }
}

/// Runs blocking work (waiting for a child to start or stop) on a Dispatch thread, not on Swift concurrency's
/// small cooperative pool, so heartbeats and requests keep flowing meanwhile.
func offPool<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { continuation in
        DispatchQueue.global().async { continuation.resume(with: Result { try body() }) }
    }
}
