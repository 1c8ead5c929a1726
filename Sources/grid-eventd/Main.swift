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
            (e.g. retain = "30d", max_bytes = "50GB", compression = "high"); flags given on the command line win.
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

    @Option(name: .customLong("log-level"), help: "trace, debug, info, notice, warning, error or critical.")
    var logLevel = "info"

    @Option(name: .customLong("log-events"), help: "Also store the daemon's own log records at or above this level as log events (straight into its store; at most 200 a second; never what its writer logs). Default: off.")
    var logEvents: String?

    @Option(name: .customLong("max-ingest-body"), help: "Largest body of POST /api/events and POST /v1/logs, e.g. 8MiB. Default 8 MiB.")
    var maxIngestBody: String?

    @Option(name: .customLong("otlp-default-type"), help: "Event type of an OpenTelemetry log record without an event.name attribute. Default log.")
    var otlpDefaultType: String?

    func validate() throws {
        if let sync, Durability(rawValue: sync) == nil { throw ValidationError("--sync must be batch, always or none") }
        if let compression, Compression(rawValue: compression) == nil { throw ValidationError("--compression must be fast, high or none") }
        guard Logger.Level(rawValue: logLevel) != nil else { throw ValidationError("unknown --log-level \(logLevel)") }
        if let logEvents, Logger.Level(rawValue: logEvents) == nil { throw ValidationError("unknown --log-events level \(logEvents)") }
        if let http, parseHostPort(http) == nil { throw ValidationError("--http must be HOST:PORT, like 127.0.0.1:7780") }
        do {
            if let retain { _ = try Quantity.duration(retain) }
            if let maxBytes { _ = try Quantity.bytes(maxBytes) }
        } catch {
            throw ValidationError(error.message)
        }
        // Ranges are checked on the merged settings (flags and --config file) by `DaemonConfig.problem` in run().
    }

    func run() async throws {
        let level = Logger.Level(rawValue: logLevel)!
        // Records become events only with --log-events (or log_events in the config file, read below: the sink is
        // there from the start and stores nothing until the daemon attaches it).
        let ownLogs = DaemonLogSink()
        let fileLogEvents = self.config.flatMap { try? DaemonConfig.logEventsSetting(ConfigFile.load(path: $0)) } ?? nil
        let eventLevel = (logEvents ?? fileLogEvents).flatMap(Logger.Level.init(rawValue:))
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            guard let eventLevel else { return handler }
            var events = GridEventsLogHandler(label: label, sink: ownLogs, eventLevel: eventLevel)
            events.logLevel = min(level, eventLevel)
            return MultiplexLogHandler([handler, events])
        }
        let logger = Logger(label: "grid-eventd")
        var config = DaemonConfig()
        var fileHTTP: String?
        var fileToken: String?
        if let path = self.config {
            do {
                (fileHTTP, fileToken) = try config.apply(ConfigFile.load(path: path))
            } catch {
                logger.critical("\(error)")
                throw ExitCode(1)
            }
        }
        if let dataDir { config.dataDirectory = dataDir }
        if let socket { config.socketPath = socket }
        let http = self.http ?? fileHTTP ?? "127.0.0.1:7780"
        guard let (host, port) = parseHostPort(http) else {
            logger.critical("http must be HOST:PORT, like 127.0.0.1:7780 (got \(http))")
            throw ExitCode(1)
        }
        config.httpHost = host
        config.httpPort = port
        if let sync { config.durability = Durability(rawValue: sync)! }
        if let segmentSize { config.segmentCapacity = segmentSize }
        if let compression { config.compression = Compression(rawValue: compression)! }
        if let retain { config.retainMicros = try Quantity.duration(retain) }
        if let maxBytes { config.maxBytes = try Quantity.bytes(maxBytes) }
        config.allowedUids = Set(allowUid)
        config.allowedGids = Set(allowGid)
        if let maxFrame { config.maxFrame = maxFrame }
        if let metricsInterval { config.metricsIntervalSeconds = metricsInterval }
        if let frameTimeout { config.frameTimeoutSeconds = frameTimeout }
        if let replicate { config.replication.replicate = replicate }
        if let aggregate { config.replication.aggregate = aggregate }
        if let hostId { config.replication.hostId = hostId }
        if let stream { config.replication.stream = stream }
        if let subjectPrefix { config.replication.subjectPrefix = subjectPrefix }
        if let replicas { config.replication.replicas = replicas }
        if let consumer { config.replication.consumer = consumer }
        if let natsCA { config.replication.natsCA = natsCA }
        if let logEvents { config.logEvents = logEvents }
        if let otlpDefaultType { config.otlpDefaultType = otlpDefaultType }
        if let httpHeaderTimeout { config.httpLimits.headerTimeout = httpHeaderTimeout }
        if let httpIdleTimeout { config.httpLimits.idleTimeout = httpIdleTimeout }
        if let httpMaxConnections { config.httpLimits.maxConnections = httpMaxConnections }
        if let httpMaxConnectionsPerPeer { config.httpLimits.maxConnectionsPerPeer = httpMaxConnectionsPerPeer }
        if let maxIngestBody {
            do {
                config.maxIngestBody = try Quantity.bytes(maxIngestBody)
            } catch {
                logger.critical("--max-ingest-body: \(error)")
                throw ExitCode(1)
            }
        }
        if let problem = config.problem {
            logger.critical("\(problem)")
            throw ExitCode(1)
        }
        #if GRID_FAULT_INJECTION
        if let spec = ProcessInfo.processInfo.environment[TestFaults.environmentVariable], !spec.isEmpty {
            do {
                config.faults = try TestFaults.parse(spec)
            } catch {
                logger.critical("\(TestFaults.environmentVariable): \(error)")
                throw ExitCode(1)
            }
            logger.warning("test faults armed from \(TestFaults.environmentVariable)=\(spec); never use this in production")
        }
        #else
        if let spec = ProcessInfo.processInfo.environment["GRID_EVENTD_FAULTS"], !spec.isEmpty {
            logger.critical("GRID_EVENTD_FAULTS is set, but this is a release build, which cannot inject faults; unset it")
            throw ExitCode(1)
        }
        #endif
        let token = self.token ?? fileToken ?? ProcessInfo.processInfo.environment["GRID_EVENTS_TOKEN"]
        let loopback = host == "127.0.0.1" || host == "localhost" || host == "::1" || host.hasPrefix("127.")
        if !loopback, token == nil || token!.count < 16 {
            logger.critical("--http \(http) binds beyond loopback: pass --token (16 characters or more) or set GRID_EVENTS_TOKEN")
            throw ExitCode(1)
        }
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

func parseHostPort(_ s: String) -> (String, Int)? {
    guard let colon = s.lastIndex(of: ":"), let port = Int(s[s.index(after: colon)...]), (0...65535).contains(port) else { return nil }
    let host = String(s[..<colon])
    return host.isEmpty ? nil : (host, port)
}
