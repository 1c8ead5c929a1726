import GridEvents

// The control plane's requests, each with its JSON form (`json`) and its reader (`init(_:)`, throwing a 400
// `ControlError` that names the missing key). grid-cli and the agent write them; the master and the agent read
// them. The routes are `ControlRoute`'s.

/// The control plane's routes (master: all but `agentNodes*`; agent: `agentSpawn`, `agentStop`, `nodes`).
public enum ControlRoute {
    public static let register = "/api/agents/register"
    public static func heartbeat(_ agentId: String) -> String { "/api/agents/\(agentId)/heartbeat" }
    public static func unregister(_ agentId: String) -> String { "/api/agents/\(agentId)/unregister" }
    public static let spawn = "/api/nodes/spawn"
    public static let stop = "/api/nodes/stop"
    public static let agents = "/api/agents"
    public static let nodes = "/api/nodes"
    public static let status = "/api/status"
}

/// A node as an agent reports it (in registrations and heartbeats).
public struct NodeReport: Sendable, Equatable {
    public var nodeId: String
    public var port: Int
    public var storagePath: String
    public var pid: Int?
    public var state: String
    public var restartCount: Int

    public init(nodeId: String, port: Int, storagePath: String, pid: Int?, state: String, restartCount: Int = 0) {
        self.nodeId = nodeId
        self.port = port
        self.storagePath = storagePath
        self.pid = pid
        self.state = state
        self.restartCount = restartCount
    }

    public var json: String {
        jsonObject([("node_id", jsonString(nodeId)), ("port", String(port)), ("storage_path", jsonString(storagePath)),
                    ("pid", jsonIntOrNull(pid)), ("state", jsonString(state)), ("restart_count", String(restartCount))])
    }

    /// The `nodes` list of a registration or heartbeat: nil when absent or null; each must be an object with a
    /// valid `node_id` and, when present, an integer `port`, `pid` and `restart_count` (or null) and a string
    /// `storage_path` and `state`. - Throws: a 400 `ControlError` saying which node is wrong and how.
    public static func list(in v: JSONValue) throws(ControlError) -> [NodeReport]? {
        guard let value = v["nodes"], value != .null else { return nil }
        func bad(_ what: String) -> ControlError { ControlError(status: 400, code: "bad_request", message: "nodes: \(what)") }
        guard case .array(let list) = value else { throw bad("must be an array of objects") }
        var out: [NodeReport] = []
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
            out.append(NodeReport(
                nodeId: id, port: try optional("port", integer) ?? 0, storagePath: try optional("storage_path") { $0.stringValue } ?? "",
                pid: try optional("pid", integer), state: try optional("state") { $0.stringValue } ?? "running",
                restartCount: try optional("restart_count", integer) ?? 0))
        }
        return out
    }

    /// A JSON array of reports.
    public static func json(_ nodes: [NodeReport]) -> String { "[" + nodes.map(\.json).joined(separator: ",") + "]" }
}

/// Agent -> master: `POST ControlRoute.register`.
public struct RegisterRequest: Sendable, Equatable {
    public var agentId: String
    public var hostname: String
    public var platform: String
    public var agentEndpoint: String
    public var maxStorageNodes: Int
    public var nodes: [NodeReport]

    public init(agentId: String, hostname: String, platform: String, agentEndpoint: String, maxStorageNodes: Int,
                nodes: [NodeReport]) {
        self.agentId = agentId
        self.hostname = hostname
        self.platform = platform
        self.agentEndpoint = agentEndpoint
        self.maxStorageNodes = maxStorageNodes
        self.nodes = nodes
    }

    public var json: String {
        jsonObject([("agent_id", jsonString(agentId)), ("hostname", jsonString(hostname)), ("platform", jsonString(platform)),
                    ("agent_endpoint", jsonString(agentEndpoint)), ("max_storage_nodes", String(maxStorageNodes)),
                    ("nodes", NodeReport.json(nodes))])
    }

    public init(_ v: JSONValue) throws(ControlError) {
        self.init(agentId: try v.required("agent_id"), hostname: try v.required("hostname"), platform: try v.required("platform"),
                  agentEndpoint: try v.required("agent_endpoint"), maxStorageNodes: try v.requiredInt("max_storage_nodes"),
                  nodes: try NodeReport.list(in: v) ?? [])
    }
}

/// Agent -> master: `POST ControlRoute.heartbeat(agentId)`.
public struct HeartbeatRequest: Sendable, Equatable {
    public var storageNodeCount: Int
    /// Nil: the agent did not say (an older agent); the master keeps what it knew.
    public var nodes: [NodeReport]?

    public init(storageNodeCount: Int, nodes: [NodeReport]?) {
        self.storageNodeCount = storageNodeCount
        self.nodes = nodes
    }

    public var json: String {
        var pairs = [("storage_node_count", String(storageNodeCount))]
        if let nodes { pairs.append(("nodes", NodeReport.json(nodes))) }
        return jsonObject(pairs)
    }

    public init(_ v: JSONValue) throws(ControlError) {
        self.init(storageNodeCount: try v.requiredInt("storage_node_count", default: 0), nodes: try NodeReport.list(in: v))
    }
}

/// grid-cli -> master (with `agentId`) and master -> agent (without): start a storage node.
public struct SpawnRequest: Sendable, Equatable {
    public var agentId: String?
    public var nodeId: String
    public var port: Int
    public var storagePath: String
    public var memoryLimitMb: Int

    public init(agentId: String?, nodeId: String, port: Int, storagePath: String, memoryLimitMb: Int = 1024) {
        self.agentId = agentId
        self.nodeId = nodeId
        self.port = port
        self.storagePath = storagePath
        self.memoryLimitMb = memoryLimitMb
    }

    public var json: String {
        var pairs: [(String, String)] = []
        if let agentId { pairs.append(("agent_id", jsonString(agentId))) }
        pairs += [("node_id", jsonString(nodeId)), ("port", String(port)), ("storage_path", jsonString(storagePath)),
                  ("memory_limit_mb", String(memoryLimitMb))]
        return jsonObject(pairs)
    }

    /// Reads a spawn request; `agentId` is required when `needsAgent` (the master's route).
    public init(_ v: JSONValue, needsAgent: Bool) throws(ControlError) {
        self.init(agentId: needsAgent ? try v.required("agent_id") : v["agent_id"]?.stringValue, nodeId: try v.required("node_id"),
                  port: try v.requiredInt("port"), storagePath: try v.required("storage_path"),
                  memoryLimitMb: try v.requiredInt("memory_limit_mb", default: 1024))
    }
}

/// grid-cli -> master (with `agentId`) and master -> agent (without): stop a storage node.
public struct StopRequest: Sendable, Equatable {
    public var agentId: String?
    public var nodeId: String

    public init(agentId: String?, nodeId: String) {
        self.agentId = agentId
        self.nodeId = nodeId
    }

    public var json: String {
        var pairs: [(String, String)] = []
        if let agentId { pairs.append(("agent_id", jsonString(agentId))) }
        pairs.append(("node_id", jsonString(nodeId)))
        return jsonObject(pairs)
    }

    public init(_ v: JSONValue, needsAgent: Bool) throws(ControlError) {
        self.init(agentId: needsAgent ? try v.required("agent_id") : v["agent_id"]?.stringValue, nodeId: try v.required("node_id"))
    }
}

extension ControlError {
    /// The error body every control-plane server answers with: `{"error": {"code": ..., "message": ...}}`.
    public var json: String {
        jsonObject([("error", jsonObject([("code", jsonString(code)), ("message", jsonString(message))]))])
    }
}

extension JSONValue {
    /// The string at `key`, or a 400 naming it.
    func required(_ key: String) throws(ControlError) -> String {
        guard let s = self[key]?.stringValue else {
            throw ControlError(status: 400, code: "bad_request", message: "missing \"\(key)\" (a string)")
        }
        return s
    }

    /// The integer at `key` (`value` when absent or null, if given), or a 400 naming it.
    func requiredInt(_ key: String, default value: Int? = nil) throws(ControlError) -> Int {
        if case .int(let i)? = self[key], let n = Int(exactly: i) { return n }  // an integer, not 1.0 or 1e2
        if self[key] == nil || self[key] == .null, let value { return value }
        throw ControlError(status: 400, code: "bad_request", message: "missing \"\(key)\" (an integer)")
    }
}
