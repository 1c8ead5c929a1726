import ArgumentParser
import EventEmitter
import Foundation
import GridAgent
import GridControl
import GridEventsLogging
import Hummingbird
import Logging
import ServiceLifecycle
import GridVersion
import SystemdNotify

@main
struct GridAgentCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "grid-agent",
        abstract: "Registers with grid-master, heartbeats, and spawns and supervises storage nodes (grid-eventd instances).",
        discussion: """
            Reads a TOML config; see agent-config.example.toml for every key with comments. Emits node_crashed and
            node_restarted to the store named by EVENT_STORAGE. SIGTERM/SIGINT: stops its nodes, unregisters, exits.

            Nodes' storage paths must lie below storage_root (relative ones are taken below it); a path outside it,
            one that climbs out with '..' or leads out through a symlink is refused. With token (or
            $GRID_MASTER_TOKEN), the agent's API requires Authorization: Bearer <token> and the agent sends it to the
            master; a listen address beyond loopback requires one (16 characters or more).
            """,
        version: GridVersion.current)

    @Option(help: "The agent's TOML config file.")
    var config = "agent-config.toml"

    @Option(name: .customLong("log-events"), help: "Also record the agent's own log records at or above this level as log events (through its emitter). Default: off.")
    var logEvents: String?

    func validate() throws {
        if let logEvents, Logger.Level(rawValue: logEvents) == nil { throw ValidationError("unknown --log-events level \(logEvents)") }
    }

    func run() async throws {
        let cfg: AgentConfig
        do {
            var loaded = try AgentConfig.load(path: config)
            loaded.token = ControlToken.resolve(loaded.token, environment: ProcessInfo.processInfo.environment)
            cfg = loaded
        } catch {
            throw ValidationError("\(error)")
        }
        let parts = cfg.listen.split(separator: ":")
        guard parts.count == 2, let port = Int(parts[1]) else { throw ValidationError("listen must be HOST:PORT") }
        if let problem = ControlToken.listenProblem(host: String(parts[0]), token: cfg.token) {
            throw ValidationError("listen = \"\(cfg.listen)\" \(problem): set token in \(config) or $\(ControlToken.environmentVariable) (the same as the master's --token)")
        }
        var options = EmitterOptions(producerName: "grid-agent-\(cfg.agentId)")
        let agentLabel = "grid-agent \(cfg.agentId)"
        options.notice = { Logger(label: agentLabel).notice("events: \($0)") }
        let events = EventEmitter(options: options)
        let eventLevel = logEvents.flatMap(Logger.Level.init(rawValue:))
        let agentId = cfg.agentId
        LoggingSystem.bootstrap { label in
            let console = StreamLogHandler.standardError(label: label)
            guard let eventLevel else { return console }
            var records = GridEventsLogHandler(label: label, emitter: events, eventLevel: eventLevel)
            records[metadataKey: "agent_id"] = .string(agentId)  // every record of the agent is about the agent
            records.logLevel = min(console.logLevel, eventLevel)
            return MultiplexLogHandler([console, records])
        }
        let logger = Logger(label: agentLabel)
        let agent: GridAgentService
        do {
            agent = try GridAgentService(config: cfg, events: events, logger: logger)
        } catch {
            logger.critical("\(error)")
            throw ExitCode(1)
        }
        let app = Application(router: agent.router(), configuration: .init(address: .hostname(String(parts[0]), port: port), serverName: "grid-agent"),
                              onServerRunning: { _ in SystemdNotify.ready(status: "agent \(cfg.agentId) on \(cfg.listen)") }, logger: logger)
        let group = ServiceGroup(configuration: .init(services: [app, agent], gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
        try await group.run()
        SystemdNotify.stopping()
        events.close(timeout: 5)
    }
}
