import ArgumentParser
import EventEmitter
import Foundation
import GridBase
import GridControl
import GridEventsLogging
import GridMaster
import Hummingbird
import HTTPLimits
import Logging
import ServiceLifecycle
import GridVersion
import SystemdNotify

@main
struct GridMasterCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "grid-master",
        abstract: "The grid's control plane: agent registry, health, spawn and stop routing.",
        discussion: """
            Emits its events to the store named by EVENT_STORAGE (a grid-eventd socket); without it, runs with events
            disabled. With --token, agents and grid-cli must send the same token, and the master sends it to agents.
            """,
        version: GridVersion.current)

    @Option(help: "HTTP/JSON control API address, HOST:PORT. Default 127.0.0.1:7000.")
    var http: String?

    /// The old spelling of --http, kept hidden for one release.
    @Option(name: .customLong("listen"), help: .hidden)
    var listenAlias: String?

    var listen: String { http ?? listenAlias ?? "127.0.0.1:7000" }

    @Option(name: .customLong("degraded-after"), help: "Seconds without a heartbeat before an agent is degraded.")
    var degradedAfter = 15.0

    @Option(name: .customLong("offline-after"), help: "Seconds without a heartbeat before an agent is offline.")
    var offlineAfter = 30.0

    @Option(name: .customLong("check-interval"), help: "Seconds between health checks.")
    var checkInterval = 1.0

    @Option(name: .customLong("heartbeat-event-interval"), help: "At most one agent_heartbeat event per agent per this many seconds.")
    var heartbeatEventInterval = 60.0

    @Option(name: .customLong("agent-timeout"), help: "Seconds to wait for an agent to spawn or stop a node.")
    var agentTimeout = 15.0

    @Option(name: .customLong("log-events"), help: "Also record the master's own log records at or above this level as log events (through its emitter). Default: off.")
    var logEvents: String?

    @Option(help: "The control plane's shared token: every request (the control API and /metrics) must carry Authorization: Bearer <token>, and the master sends it to agents. Required when --http binds beyond loopback (16 characters or more). Default: $GRID_MASTER_TOKEN, else $GRID_EVENTS_TOKEN.")
    var token: String?

    var resolvedToken: String? { ControlToken.resolve(token, environment: ProcessInfo.processInfo.environment) }

    @Option(name: .customLong("http-header-timeout"), help: "Seconds an HTTP request's head may take to arrive from its first byte before the connection is answered 408 and closed.")
    var httpHeaderTimeout = HTTPLimits().headerTimeout

    @Option(name: .customLong("http-idle-timeout"), help: "Seconds an HTTP connection may stay open with no request in flight (or a request body paused) before it is closed.")
    var httpIdleTimeout = HTTPLimits().idleTimeout

    @Option(name: .customLong("http-max-connections"), help: "Open HTTP connections in all; more are answered 503 and closed at once. Default: half the open-file limit, 64 to 4096.")
    var httpMaxConnections: Int?

    @Option(name: .customLong("http-max-connections-per-peer"), help: "Open HTTP connections from one address; more are answered 503 and closed at once.")
    var httpMaxConnectionsPerPeer = HTTPLimits().maxConnectionsPerPeer

    var httpLimits: HTTPLimits {
        var l = HTTPLimits()
        l.headerTimeout = httpHeaderTimeout
        l.idleTimeout = httpIdleTimeout
        if let httpMaxConnections { l.maxConnections = httpMaxConnections }
        l.maxConnectionsPerPeer = httpMaxConnectionsPerPeer
        return l
    }

    func validate() throws {
        if let problem = httpLimits.problem { throw ValidationError(problem) }
        if let logEvents, Logger.Level(rawValue: logEvents) == nil { throw ValidationError("unknown --log-events level \(logEvents)") }
        guard listen.split(separator: ":").count == 2, Int(listen.split(separator: ":")[1]) != nil else { throw ValidationError("--http must be HOST:PORT") }
        if let problem = ControlToken.listenProblem(host: String(listen.split(separator: ":")[0]), token: resolvedToken) {
            throw ValidationError("--http \(listen) \(problem): pass --token or set $\(ControlToken.environmentVariable)")
        }
        guard degradedAfter > 0, offlineAfter > degradedAfter else { throw ValidationError("--offline-after must exceed --degraded-after") }
        guard checkInterval > 0, checkInterval < degradedAfter else { throw ValidationError("--check-interval must be positive and below --degraded-after") }
    }

    func run() async throws {
        var options = EmitterOptions(producerName: "grid-master")
        options.notice = { Logger(label: "grid-master").notice("events: \($0)") }
        let events = EventEmitter(options: options)
        let eventLevel = logEvents.flatMap(Logger.Level.init(rawValue:))
        LoggingSystem.bootstrap { label in
            let console = StreamLogHandler.standardError(label: label)
            guard let eventLevel else { return console }
            var records = GridEventsLogHandler(label: label, emitter: events, eventLevel: eventLevel)
            records.logLevel = min(console.logLevel, eventLevel)
            return MultiplexLogHandler([console, records])
        }
        let logger = Logger(label: "grid-master")
        var config = MasterConfig()
        let parts = listen.split(separator: ":")
        config.host = String(parts[0])
        config.port = Int(parts[1])!
        config.degradedAfterSeconds = degradedAfter
        config.offlineAfterSeconds = offlineAfter
        config.checkIntervalSeconds = checkInterval
        config.heartbeatEventIntervalSeconds = heartbeatEventInterval
        config.agentTimeoutSeconds = agentTimeout
        let token = resolvedToken
        config.token = token
        let master = Master(config: config, events: events, logger: logger)
        let address = "\(config.host):\(config.port)"
        let loopback = isLoopbackHost(config.host)
        let router = MasterHTTP.router(master, metrics: MasterMetrics(), token: token, loopbackOnly: loopback)
        let app = Application(router: router, server: .http1(gate: HTTPConnectionGate(limits: httpLimits, logger: logger)),
                              configuration: .init(address: .hostname(config.host, port: config.port), serverName: "grid-master"),
                              onServerRunning: { _ in
                                  logger.info("grid-master listening on http://\(address)")
                                  SystemdNotify.ready(status: "control API on http://\(address)")
                              }, logger: logger)
        let group = ServiceGroup(configuration: .init(services: [app, HealthChecker(master: master)], gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
        try await group.run()
        SystemdNotify.stopping()
        events.close(timeout: 5)
    }
}
