import ArgumentParser
@_spi(Testing) import EventDaemon
@_spi(Testing) import EventStore
import Hummingbird
import Logging
import ServiceLifecycle
import GridEvents
import GridEventsLogging
import Foundation
import GridVersion
import HTTPLimits
import SystemdNotify

@main
struct GridEventd: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "grid-eventd",
        abstract: "The grid events storage daemon.",
        discussion: """
            Owns a data directory of append-only segment files. Producers (grid-master, grid-agent, any process
            using the emitter) connect over a Unix socket; each batch is acknowledged only once it is durable under
            --sync. SIGTERM or SIGINT: stop accepting, drain, sync, ack, close, exit 0.

            Sealed segments are compacted with LZ4 in the background (--compression), get an index file so opening
            does not rescan them, and are deleted oldest first when --retain or --max-bytes says so (whole
            segments only; what was deleted is logged and shown in /api/stats).

            --config FILE reads the same settings from a file, one `name = value` per line with `_` for `-`
            (e.g. retain = "30d", max_bytes = "50GB", compression = "high"). Each setting comes from the flag when
            given, else the environment (GRID_EVENTS_TOKEN, GRID_EVENTS_TOKEN_FILE), else the file, else its default.
            """,
        version: GridVersion.current)

    @Option(help: "A config file with the settings below (flags on the command line override it).")
    var config: String?

    @Option(name: .customLong("data-dir"), help: "Data directory (created if missing). Default ./data.")
    var dataDir: String?

    @Option(help: "Unix socket for producers (default: DATA_DIR/grid-eventd.sock).")
    var socket: String?

    @Option(help: "HTTP API and dashboard address, HOST:PORT. Default 127.0.0.1:7780.")
    var http: String?

    @Option(help: "Durability: batch (group commit: one fdatasync shared by all writers waiting), always (fdatasync per batch), none (OS buffers only). Default batch.")
    var sync: String?

    @Option(name: .customLong("segment-size"), help: "Segment file size in bytes (64 KiB to 1 GiB). Default 64 MiB.")
    var segmentSize: Int?

    @Option(help: "Compaction of sealed segments: fast (LZ4, default), high (LZ4 HC: files about 20% smaller, about 3x slower to compact, reads as fast) or none.")
    var compression: String?

    @Option(help: "Delete whole sealed segments whose newest event is older than this, e.g. 30d, 12h. Default: keep everything.")
    var retain: String?

    @Option(name: .customLong("max-bytes"), help: "Delete the oldest sealed segments while the store is larger than this, e.g. 50GB, 512MiB. Default: no limit.")
    var maxBytes: String?

    @Option(name: .customLong("allow-uid"), help: "Also accept producers running as this uid (repeatable). The daemon's own uid and root are always accepted.")
    var allowUid: [UInt32] = []

    @Option(name: .customLong("allow-gid"), help: "Also accept producers whose primary gid is this (repeatable).")
    var allowGid: [UInt32] = []

    @Option(name: .customLong("max-frame"), help: "Largest frame body accepted from a producer, bytes (1 KiB to 64 MiB). Default 4 MiB.")
    var maxFrame: Int?

    @Option(name: .customLong("frame-timeout"), help: "Seconds a producer may take to finish a frame it started, or to read the daemon's answers, before its connection is closed. Default 10.")
    var frameTimeout: Double?

    @Option(name: .customLong("metrics-interval"), help: "Seconds between storage_metrics events the daemon records about itself. Default 60.")
    var metricsInterval: Double?

    @Option(help: "Bearer token required on every HTTP request. Required when --http binds beyond loopback. Default: $GRID_EVENTS_TOKEN.")
    var token: String?

    @Option(name: .customLong("http-header-timeout"), help: "Seconds an HTTP request's head may take to arrive from its first byte before the connection is answered 408 and closed. Default 10.")
    var httpHeaderTimeout: Double?

    @Option(name: .customLong("http-idle-timeout"), help: "Seconds an HTTP connection may stay open with no request in flight (or a request body paused) before it is closed; a response being written, like the live stream, is never cut. Default 60.")
    var httpIdleTimeout: Double?

    @Option(name: .customLong("http-max-connections"), help: "Open HTTP connections in all; more are answered 503 and closed at once. Default: half the open-file limit, 64 to 4096.")
    var httpMaxConnections: Int?

    @Option(name: .customLong("http-max-connections-per-peer"), help: "Open HTTP connections from one address; more are answered 503 and closed at once. Default 64.")
    var httpMaxConnectionsPerPeer: Int?

    @Option(name: .customLong("token-file"), help: "A file holding the bearer token on one line (instead of --token; keeps it out of the process list). Default: $GRID_EVENTS_TOKEN_FILE.")
    var tokenFile: String?

    @Option(help: "Replicate every committed batch to a NATS JetStream cluster: URL[,URL...] (nats://[user:pass@|token@]host:port, tls://...).")
    var replicate: String?

    @Option(help: "Aggregate every host's replicated events into this store (the cluster view): URL[,URL...].")
    var aggregate: String?

    @Option(name: .customLong("host-id"), help: "This host's id in replication: subject <prefix>.<id>, entity host-<id>. Default: the hostname.")
    var hostId: String?

    @Option(help: "JetStream stream name. Default GRID_EVENTS.")
    var stream: String?

    @Option(name: .customLong("subject-prefix"), help: "Replication subject prefix; hosts publish to <prefix>.<host id>. Default grid.events.")
    var subjectPrefix: String?

    @Option(help: "Stream replicas when the daemon creates the stream. Default min(3, cluster size).")
    var replicas: Int?

    @Option(help: "The aggregator's durable consumer name. Default aggregator-<host id>.")
    var consumer: String?

    @Option(name: .customLong("nats-ca"), help: "PEM file of the CA that signed the NATS servers' certificates (tls:// URLs).")
    var natsCA: String?

    @Option(name: .customLong("log-level"), help: "trace, debug, info, notice, warning, error or critical. Default info.")
    var logLevel: String?

    @Option(name: .customLong("log-events"), help: "Also store the daemon's own log records at or above this level as log events (straight into its store; at most 200 a second; never what its writer logs). Default: off.")
    var logEvents: String?

    @Option(name: .customLong("max-ingest-body"), help: "Largest body of POST /api/events and POST /v1/logs, e.g. 8MiB. Default 8 MiB.")
    var maxIngestBody: String?

    @Option(name: .customLong("otlp-default-type"), help: "Event type of an OpenTelemetry log record without an event.name attribute. Default log.")
    var otlpDefaultType: String?

    /// The flags as given, for `DaemonConfig.resolve` (which checks them with the file and the environment).
    var flags: DaemonFlags {
        var f = DaemonFlags()
        f.dataDir = dataDir
        f.socket = socket
        f.http = http
        f.sync = sync
        f.segmentSize = segmentSize
        f.compression = compression
        f.retain = retain
        f.maxBytes = maxBytes
        f.allowUid = allowUid
        f.allowGid = allowGid
        f.maxFrame = maxFrame
        f.frameTimeout = frameTimeout
        f.metricsInterval = metricsInterval
        f.token = token
        f.tokenFile = tokenFile
        f.logLevel = logLevel
        f.logEvents = logEvents
        f.maxIngestBody = maxIngestBody
        f.otlpDefaultType = otlpDefaultType
        f.replication.replicate = replicate
        f.httpHeaderTimeout = httpHeaderTimeout
        f.httpIdleTimeout = httpIdleTimeout
        f.httpMaxConnections = httpMaxConnections
        f.httpMaxConnectionsPerPeer = httpMaxConnectionsPerPeer
        f.replication.aggregate = aggregate
        f.replication.hostId = hostId
        f.replication.stream = stream
        f.replication.subjectPrefix = subjectPrefix
        f.replication.replicas = replicas
        f.replication.consumer = consumer
        f.replication.natsCA = natsCA
        return f
    }

    func run() async throws {
        // Every setting, from the file, the environment and the flags, checked once before anything starts.
        let config: DaemonConfig
        do {
            let file = try self.config.map { try ConfigFile.load(path: $0) }
            config = try DaemonConfig.resolve(file: file, environment: ProcessInfo.processInfo.environment, flags: flags)
        } catch {
            LoggingSystem.bootstrap { StreamLogHandler.standardError(label: $0) }
            Logger(label: "grid-eventd").critical("\(error)")
            throw ExitCode(1)
        }
        // Records become events only with --log-events (or log_events): the sink is there from the start and
        // stores nothing until the daemon attaches it.
        let ownLogs = DaemonLogSink()
        let level = config.logLevel
        let eventLevel = config.logEvents.flatMap(Logger.Level.init(rawValue:))
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            guard let eventLevel else { return handler }
            var events = GridEventsLogHandler(label: label, sink: ownLogs, eventLevel: eventLevel)
            events.logLevel = min(level, eventLevel)
            return MultiplexLogHandler([handler, events])
        }
        let logger = Logger(label: "grid-eventd")
        if config.faults != nil {
            logger.warning("test faults armed from GRID_EVENTD_FAULTS; never use this in production")
        }
        let (host, port, token) = (config.httpHost, config.httpPort, config.token)
        let daemon = GridEventDaemon(config: config, logger: logger)
        let socketPath = config.resolvedSocketPath
        if config.logEvents != nil { daemon.recordOwnLogs(into: ownLogs) }
        do {
            try daemon.start()
        } catch {
            logger.critical("\(error)")
            throw ExitCode(1)
        }
        let app = Application(
            router: HTTPAPI.router(daemon.apiContext()!, token: token),
            server: .http1(gate: HTTPConnectionGate(limits: config.httpLimits, logger: logger)),
            configuration: .init(address: .hostname(host, port: port), serverName: "grid-eventd"),
            onServerRunning: { channel in
                logger.info("HTTP API and dashboard on http://\(host):\(channel.localAddress?.port ?? port)/")
                // The producer socket listens since daemon.start(): now both serve.
                SystemdNotify.ready(status: "serving on \(socketPath) and http://\(host):\(channel.localAddress?.port ?? port)/")
            },
            logger: logger)
        let group = ServiceGroup(
            configuration: .init(services: [daemon, app], gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
        do {
            try await group.run()
            SystemdNotify.stopping()
        } catch {
            SystemdNotify.stopping()
            await daemon.shutdownGracefully()
            logger.critical("\(error)")
            throw ExitCode(1)
        }
    }
}
