import ArgumentParser
import EventEmitter
import Foundation
import GridAgent
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
            """,
        version: GridVersion.current)

    @Option(help: "The agent's TOML config file.")
    var config = "agent-config.toml"

    func run() async throws {
        LoggingSystem.bootstrap(StreamLogHandler.standardError)
        let cfg: AgentConfig
        do {
            cfg = try AgentConfig.load(path: config)
        } catch {
            throw ValidationError("\(error)")
        }
        let logger = Logger(label: "grid-agent \(cfg.agentId)")
        var options = EmitterOptions(producerName: "grid-agent-\(cfg.agentId)")
        options.notice = { logger.notice("events: \($0)") }
        let events = EventEmitter(options: options)
        let agent = GridAgentService(config: cfg, events: events, logger: logger)
        let parts = cfg.listen.split(separator: ":")
        guard parts.count == 2, let port = Int(parts[1]) else { throw ValidationError("listen must be HOST:PORT") }
        let app = Application(router: agent.router(), configuration: .init(address: .hostname(String(parts[0]), port: port), serverName: "grid-agent"),
                              onServerRunning: { _ in SystemdNotify.ready(status: "agent \(cfg.agentId) on \(cfg.listen)") }, logger: logger)
        let group = ServiceGroup(configuration: .init(services: [app, agent], gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
        try await group.run()
        SystemdNotify.stopping()
        events.close(timeout: 5)
    }
}
