import Foundation

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
    /// Node directories are created here when a spawn names a relative storage path.
    public var dataRoot = "./data/nodes"
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

    public struct ParseError: Error, CustomStringConvertible {
        public var description: String
    }

    /// Reads and checks a config file (at most 64 KiB).
    public static func load(path: String) throws -> AgentConfig {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw ParseError(description: "cannot read \(path)")
        }
        guard data.count <= 64 << 10 else { throw ParseError(description: "\(path) is larger than 64 KiB") }
        return try parse(String(decoding: data, as: UTF8.self), name: path)
    }

    public static func parse(_ text: String, name: String = "config") throws -> AgentConfig {
        var c = AgentConfig()
        var table = ""
        for (n, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = stripComment(String(raw)).trimmingCharacters(in: .whitespaces)
            if line.isEmpty { continue }
            let where_ = "\(name):\(n + 1)"
            if line.hasPrefix("[") {
                guard line.hasSuffix("]") else { throw ParseError(description: "\(where_): bad table header \(line)") }
                table = String(line.dropFirst().dropLast()).trimmingCharacters(in: .whitespaces)
                guard table == "restart" || table == "ports" else { throw ParseError(description: "\(where_): unknown table [\(table)]") }
                continue
            }
            guard let eq = line.firstIndex(of: "=") else { throw ParseError(description: "\(where_): expected key = value") }
            let key = line[..<eq].trimmingCharacters(in: .whitespaces)
            let value = line[line.index(after: eq)...].trimmingCharacters(in: .whitespaces)
            func str() throws -> String {
                guard value.count >= 2, value.hasPrefix("\""), value.hasSuffix("\"") else {
                    throw ParseError(description: "\(where_): \(key) must be a quoted string")
                }
                return String(value.dropFirst().dropLast()).replacingOccurrences(of: "\\\"", with: "\"")
            }
            func int() throws -> Int {
                guard let v = Int(value.replacingOccurrences(of: "_", with: "")) else { throw ParseError(description: "\(where_): \(key) must be an integer") }
                return v
            }
            func double() throws -> Double {
                guard let v = Double(value.replacingOccurrences(of: "_", with: "")) else { throw ParseError(description: "\(where_): \(key) must be a number") }
                return v
            }
            switch (table, key) {
            case ("", "agent_id"): c.agentId = try str()
            case ("", "master"): c.master = try str()
            case ("", "listen"): c.listen = try str()
            case ("", "platform"): c.platform = try str()
            case ("", "hostname"): c.hostname = try str()
            case ("", "max_storage_nodes"): c.maxStorageNodes = try int()
            case ("", "node_binary"): c.nodeBinary = try str()
            case ("", "data_root"): c.dataRoot = try str()
            case ("", "heartbeat_interval"): c.heartbeatIntervalSeconds = try double()
            case ("", "monitor_interval"): c.monitorIntervalSeconds = try double()
            case ("", "port_range"), ("ports", "range"):
                let parts = try str().split(separator: "-")
                guard parts.count == 2, let lo = Int(parts[0]), let hi = Int(parts[1]), lo >= 1, lo <= hi, hi <= 65535 else {
                    throw ParseError(description: "\(where_): port_range must look like \"50000-50999\"")
                }
                c.portMin = lo
                c.portMax = hi
            case ("restart", "max_restarts"): c.maxRestarts = try int()
            case ("restart", "window_seconds"): c.restartWindowSeconds = try double()
            case ("restart", "backoff_seconds"): c.restartBackoffSeconds = try double()
            case ("restart", "stop_grace_seconds"): c.stopGraceSeconds = try double()
            default:
                throw ParseError(description: "\(where_): unknown key \(table.isEmpty ? "" : table + ".")\(key)")
            }
        }
        guard c.maxStorageNodes >= 0, c.heartbeatIntervalSeconds > 0, c.monitorIntervalSeconds > 0, c.maxRestarts >= 0 else {
            throw ParseError(description: "\(name): intervals must be positive and counts not negative")
        }
        return c
    }

    static func stripComment(_ line: String) -> String {
        var inString = false
        var out = ""
        for ch in line {
            if ch == "\"" { inString.toggle() }
            if ch == "#", !inString { break }
            out.append(ch)
        }
        return out
    }
}
