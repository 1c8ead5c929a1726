import Foundation
import GridEvents

/// grid-agent's configuration, read from a TOML file (see `agent-config.example.toml`).
///
/// The reader understands the TOML this file needs: `key = value` lines with strings, integers, floats,
/// booleans and `[table]` headers; `#` comments. Anything else is an error naming the line.
public struct AgentConfig: Sendable, Equatable {
    public var agentId = "agent-001"
    public var master = "http://127.0.0.1:7000"
    /// Where this agent's HTTP API listens (the master calls it to spawn and stop nodes).
    public var listen = "127.0.0.1:7100"
    public var platform = "linux-x86_64"
    public var hostname = ProcessInfo.processInfo.hostName
    public var maxStorageNodes = 8
    /// The storage node program: a grid-eventd binary.
    public var nodeBinary = ".build/release/grid-eventd"
    /// Every node's storage path must lie below this directory (`storage_root`; `data_root` is its old name);
    /// a relative storage path is taken below it. Relative to the agent's working directory; created at start.
    public var storageRoot = "./data/nodes"
    /// The control plane's shared token (`token`, else `$GRID_MASTER_TOKEN`): required as `Authorization: Bearer`
    /// on the agent's API and sent to the master. Required when `listen` is beyond loopback.
    public var token: String?
    public var portMin = 50000
    public var portMax = 50999
    public var heartbeatIntervalSeconds = 5.0
    public var monitorIntervalSeconds = 10.0
    /// Restart policy: at most `maxRestarts` restarts within `restartWindowSeconds`, waiting
    /// `restartBackoffSeconds` doubled per restart (capped at 30 s); then the agent gives up on the node.
    public var maxRestarts = 3
    public var restartWindowSeconds = 60.0
    public var restartBackoffSeconds = 1.0
    /// Grace period between SIGTERM and SIGKILL when stopping a node.
    public var stopGraceSeconds = 5.0

    public init() {}

    public typealias ParseError = ConfigFile.ParseError

    /// Reads and checks a config file (at most 64 KiB).
    public static func load(path: String) throws -> AgentConfig {
        try make(ConfigFile.load(path: path, tables: tables), name: path)
    }

    public static func parse(_ text: String, name: String = "config") throws -> AgentConfig {
        try make(ConfigFile.parse(text, name: name, tables: tables), name: name)
    }

    static let tables: Set<String> = ["restart", "ports"]

    private static func make(_ file: ConfigFile, name: String) throws -> AgentConfig {
        var c = AgentConfig()
        for e in file.entries {
            switch (e.table, e.key) {
            case ("", "agent_id"): c.agentId = try e.string()
            case ("", "master"): c.master = try e.string()
            case ("", "listen"): c.listen = try e.string()
            case ("", "platform"): c.platform = try e.string()
            case ("", "hostname"): c.hostname = try e.string()
            case ("", "max_storage_nodes"): c.maxStorageNodes = try e.int()
            case ("", "node_binary"): c.nodeBinary = try e.string()
            case ("", "storage_root"), ("", "data_root"): c.storageRoot = try e.string()
            case ("", "token"):
                let token = try e.string()
                c.token = token.isEmpty ? nil : token
            case ("", "heartbeat_interval"): c.heartbeatIntervalSeconds = try e.double()
            case ("", "monitor_interval"): c.monitorIntervalSeconds = try e.double()
            case ("", "port_range"), ("ports", "range"):
                let parts = try e.string().split(separator: "-")
                guard parts.count == 2, let lo = Int(parts[0]), let hi = Int(parts[1]), lo >= 1, lo <= hi, hi <= 65535 else {
                    throw e.error("port_range must look like \"50000-50999\"")
                }
                c.portMin = lo
                c.portMax = hi
            case ("restart", "max_restarts"): c.maxRestarts = try e.int()
            case ("restart", "window_seconds"): c.restartWindowSeconds = try e.double()
            case ("restart", "backoff_seconds"): c.restartBackoffSeconds = try e.double()
            case ("restart", "stop_grace_seconds"): c.stopGraceSeconds = try e.double()
            default:
                throw e.error("unknown key \(e.table.isEmpty ? "" : e.table + ".")\(e.key)")
            }
        }
        guard c.maxStorageNodes >= 0, c.heartbeatIntervalSeconds > 0, c.monitorIntervalSeconds > 0, c.maxRestarts >= 0 else {
            throw ParseError(description: "\(name): intervals must be positive and counts not negative")
        }
        return c
    }
}
