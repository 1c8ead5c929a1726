import ArgumentParser
import Foundation
import GridControl
import GridEvents

/// The master's control API: --master, else $GRID_MASTER_URL, else http://127.0.0.1:7000; and its token.
struct MasterOption: ParsableArguments {
    @Option(help: "grid-master control API. Default: $GRID_MASTER_URL, else http://127.0.0.1:7000.")
    var master: String?

    @Option(help: "The control plane's token (grid-master's --token). Default: $GRID_MASTER_TOKEN, else $GRID_EVENTS_TOKEN.")
    var token: String?

    @Flag(help: "JSON output for scripts.")
    var json = false

    var api: APIClient {
        let environment = ProcessInfo.processInfo.environment
        return APIClient(base: master ?? environment["GRID_MASTER_URL"] ?? "http://127.0.0.1:7000",
                         token: ControlToken.resolve(token, environment: environment))
    }

    func call(_ path: String, method: String = "GET", body: String? = nil, command: String) throws -> JSONValue {
        do {
            return try api.request(path, method: method, body: body.map { Data($0.utf8) })
        } catch let error as CLIError {
            warn("grid-cli \(command): \(error)")
            throw ExitCode(1)
        }
    }

    func printJSON(_ v: JSONValue) {
        var w = JSONWriter()
        w.value(v)
        print(w.text)
    }
}

struct Spawn: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Ask an agent (through the master) to start a storage node.")
    @OptionGroup var master: MasterOption
    @Option(help: "The agent that runs the node.") var agent: String
    @Option(help: "The node's id (default: node-<port>).") var node: String?
    @Option(help: "The node's HTTP port.") var port: Int
    @Option(name: .customLong("storage-path"), help: "The node's data directory on the agent, below its storage_root (a relative path is taken below it).")
    var storagePath: String
    @Option(name: .customLong("memory-limit-mb"), help: "Memory limit recorded for the node, MB.") var memoryLimitMb = 1024

    func run() throws {
        let request = SpawnRequest(agentId: agent, nodeId: node ?? "node-\(port)", port: port, storagePath: storagePath,
                                   memoryLimitMb: memoryLimitMb)
        let v = try master.call(ControlRoute.spawn, method: "POST", body: request.json, command: "spawn")
        if master.json { master.printJSON(v) } else { print("started \(v["node_id"]?.text ?? "?") on \(agent): pid \(v["pid"]?.text ?? "?"), port \(port)") }
    }
}

struct Stop: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Ask an agent (through the master) to stop a storage node.")
    @OptionGroup var master: MasterOption
    @Option(help: "The node to stop.") var node: String
    @Option(help: "The agent that runs it.") var agent: String

    func run() throws {
        let v = try master.call(ControlRoute.stop, method: "POST", body: StopRequest(agentId: agent, nodeId: node).json, command: "stop")
        if master.json { master.printJSON(v) } else { print("stopped \(node) on \(agent)") }
    }
}

struct ListAgents: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "list-agents", abstract: "The agents the master knows.")
    @OptionGroup var master: MasterOption
    func run() throws {
        let v = try master.call("/api/agents", command: "list-agents")
        if master.json { return master.printJSON(v) }
        printTable([["AGENT", "HEALTH", "NODES", "ENDPOINT", "LAST HEARTBEAT"]] + (v["agents"]?.arrayValue ?? []).map {
            [$0["agent_id"]?.text ?? "-", $0["health"]?.text ?? "-", ($0["nodes"]?.text ?? "0") + "/" + ($0["max_storage_nodes"]?.text ?? "?"),
             $0["endpoint"]?.text ?? "-", $0["last_heartbeat"]?.text ?? "-"]
        })
    }
}

struct ListNodes: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "list-nodes", abstract: "The storage nodes the master knows.")
    @OptionGroup var master: MasterOption
    func run() throws {
        let v = try master.call("/api/nodes", command: "list-nodes")
        if master.json { return master.printJSON(v) }
        printTable([["NODE", "AGENT", "STATE", "PID", "PORT", "STORAGE PATH"]] + (v["nodes"]?.arrayValue ?? []).map {
            [$0["node_id"]?.text ?? "-", $0["agent_id"]?.text ?? "-", $0["state"]?.text ?? "-", $0["pid"]?.text ?? "-", $0["port"]?.text ?? "-", $0["storage_path"]?.text ?? "-"]
        })
    }
}

struct Status: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "The cluster's state.")
    @OptionGroup var master: MasterOption
    func run() throws {
        let v = try master.call("/api/status", command: "status")
        if master.json { return master.printJSON(v) }
        print("\(v["state"]?.text ?? "?"): \(v["healthy_agents"]?.text ?? "0") of \(v["total_agents"]?.text ?? "0") agents healthy, \(v["nodes"]?.text ?? "0") node(s)")
    }
}
