import EventQuery
import HTTPLimits
@_spi(Testing) import EventStore
import GridEvents
import Logging

/// Everything grid-eventd is configured with, and the only place its settings come from: `resolve(file:environment:
/// flags:)` (DaemonConfig+Sources.swift) merges the config file, the environment and the flags and checks the
/// result once. Defaults are the README's (data dir `./data`, socket `DIR/grid-eventd.sock`, HTTP
/// `127.0.0.1:7780`).
public struct DaemonConfig: Sendable {
    /// The data directory (default `./data`).
    public var dataDirectory = "./data"
    /// The Unix socket producers connect to (default `<data dir>/grid-eventd.sock`).
    public var socketPath: String?
    /// HTTP listen address (`--http`, `http`; default 127.0.0.1:7780).
    public var httpHost = "127.0.0.1"
    public var httpPort = 7780
    /// The bearer token every HTTP request must carry (`--token`, `token`, `GRID_EVENTS_TOKEN`, or the one line of
    /// `--token-file`, `token_file`, `GRID_EVENTS_TOKEN_FILE`); nil: none. Required (16 characters or more) when
    /// the HTTP address is not loopback.
    public var token: String?
    /// The level of the log on standard error (`--log-level`, `log_level`; default info).
    public var logLevel: Logger.Level = .info
    public var durability: Durability = .batch
    public var segmentCapacity = 64 << 20
    /// How sealed segments are compacted (LZ4 fast by default; `high` is LZ4 HC: smaller, slower to write).
    public var compression: Compression = .fast
    /// Retention: delete whole sealed segments whose newest event is older than this (microseconds).
    public var retainMicros: Int64?
    /// Retention: delete the oldest sealed segments while the store is larger than this (bytes).
    public var maxBytes: Int?
    /// Uids allowed to connect besides the daemon's own and root (`--allow-uid`, repeatable; `allow_uid`, one
    /// number or several separated by commas).
    public var allowedUids: Set<UInt32> = []
    /// Gids whose members may connect (`--allow-gid`, `allow_gid`).
    public var allowedGids: Set<UInt32> = []
    /// Largest frame body accepted from a producer.
    public var maxFrame = 4 << 20
    /// Batches one connection may have waiting for the disk before the daemon stops reading from it.
    public var maxInFlightPerConnection = 8
    /// Most concurrent producer connections.
    public var maxConnections = 256
    /// A connection that has not said hello after this long is closed.
    public var helloTimeoutSeconds = 5.0
    /// A frame that has started arriving must be complete within this long, or the connection is closed (a
    /// half-open or stalled peer cannot hold a connection slot and its buffer forever).
    public var frameTimeoutSeconds = 10.0
    /// How often the daemon records a `storage_metrics` event about itself.
    public var metricsIntervalSeconds = 60.0
    /// Keepalive comment interval on live streams (how soon a vanished client is noticed).
    public var streamKeepaliveSeconds = 15.0
    /// Grid events folded between two grid-state checkpoints, and the checkpoints' disk budget
    /// (`GridStateKeeper.Options`; README "Grid state").
    public var gridCheckpointInterval = GridStateKeeper.Options().interval
    public var gridCheckpointBytes = GridStateKeeper.Options().maxBytes

    /// Largest body of `POST /api/events` and `POST /v1/logs` (`--max-ingest-body`, `max_ingest_body`).
    public var maxIngestBody = 8 << 20
    /// The event type of an OTLP log record without `event.name` (`--otlp-default-type`, `otlp_default_type`).
    public var otlpDefaultType = "log"
    /// Record the daemon's own log records at or above this level as `log` events (`--log-events`, `log_events`).
    public var logEvents: String?

    /// The HTTP port's header and idle timeouts and connection caps (`--http-header-timeout`, `--http-idle-timeout`,
    /// `--http-max-connections`, `--http-max-connections-per-peer`; README "HTTP limits").
    public var httpLimits = HTTPLimits()

    /// Replication through NATS JetStream (`--replicate`, `--aggregate` and their settings); off by default.
    public var replication = ReplicationSettings()

    /// Test only: system-call failures injected into the store (grid-eventd arms it from `GRID_EVENTD_FAULTS`).
    @_spi(Testing) public var faults: FaultInjector?

    public init(dataDirectory: String = "./data") {
        self.dataDirectory = dataDirectory
    }

    public var resolvedSocketPath: String { socketPath ?? (dataDirectory + "/grid-eventd.sock") }

    /// What is wrong with these settings (from flags and a config file alike), or nil when they can be used.
    public var problem: String? {
        if !Self.isLoopback(httpHost), (token?.count ?? 0) < 16 {
            return "http \(httpHost):\(httpPort) binds beyond loopback: pass --token (16 characters or more), --token-file, or set \(Self.tokenVariable)"
        }
        if maxFrame < 1024 || maxFrame > 64 << 20 { return "max frame (--max-frame, max_frame) must be 1 KiB to 64 MiB, not \(maxFrame)" }
        if !(frameTimeoutSeconds >= 0.1) { return "frame timeout (--frame-timeout, frame_timeout) must be at least 0.1 seconds" }
        if !(metricsIntervalSeconds >= 0.1) {
            return "metrics interval (--metrics-interval, metrics_interval) must be at least 0.1 seconds"
        }
        if let urls = replication.replicate, case .failure(let why) = replication.config(urls: urls) {
            return "--replicate: \(why)"
        }
        if let urls = replication.aggregate, case .failure(let why) = replication.config(urls: urls) {
            return "--aggregate: \(why)"
        }
        if maxIngestBody < 1024 || maxIngestBody > 1 << 30 {
            return "max ingest body (--max-ingest-body, max_ingest_body) must be 1 KiB to 1 GiB, not \(maxIngestBody)"
        }
        if otlpDefaultType != EventType.log.name, EventType(name: otlpDefaultType) == nil,
           (try? GridEvent.validateCustomName(otlpDefaultType)) == nil {
            return "OTLP default type (--otlp-default-type, otlp_default_type) \(otlpDefaultType) is neither log, a catalogue type nor a custom event name"
        }
        if let logEvents, !LogEntry.levels.contains(logEvents) {
            return "log events level (--log-events, log_events) must be one of \(LogEntry.levels.joined(separator: ", "))"
        }
        if let problem = httpLimits.problem { return problem }
        if segmentCapacity < 64 << 10 || segmentCapacity > 1 << 30 {
            return "segment size (--segment-size, segment_size) must be 64 KiB to 1 GiB, not \(segmentCapacity)"
        }
        return nil
    }

    /// The store options this configuration asks for.
    public var storeOptions: StoreOptions {
        var o = StoreOptions(durability: durability, segmentCapacity: segmentCapacity)
        o.compression = compression
        o.retainMicros = retainMicros
        o.maxBytes = maxBytes
        return o
    }

    /// Settings from a config file (`grid-eventd --config FILE`): the same names as the flags, with `_` for `-`:
    /// `data_dir`, `socket`, `http`, `token`, `token_file`, `sync`, `segment_size`, `compression`, `retain`,
    /// `max_bytes`, `max_frame`, `metrics_interval`, `frame_timeout`, `allow_uid`, `allow_gid`, `log_level`,
    /// `log_events`, `max_ingest_body`, `otlp_default_type` and the replication keys. Returns where the file says
    /// the token is (read once every source is merged).
    /// - Throws: `ConfigFile.ParseError` naming the line of an unknown key or a bad value.
    @discardableResult
    mutating func apply(_ file: ConfigFile) throws -> TokenSource? {
        var token: TokenSource?
        for e in file.entries {
            do {
                switch e.key {
                case "data_dir": dataDirectory = try e.string()
                case "socket": socketPath = try e.string()
                case "http": try setHTTP(try e.string(), "http")
                case "token", "token_file":
                    if token != nil { throw e.error("give token or token_file, not both") }
                    token = e.key == "token" ? .value(try e.string(), "token") : .file(try e.string(), "\(e.location): token_file")
                case "log_level": logLevel = try Self.parseLevel(try e.string(), "log_level")
                case "allow_uid": allowedUids = try Self.ids(e)
                case "allow_gid": allowedGids = try Self.ids(e)
                case "sync": durability = try Self.parseDurability(try e.string(), "sync")
                case "segment_size": segmentCapacity = try e.int()
                case "compression": compression = try Self.parseCompression(try e.string(), "compression")
                case "retain": retainMicros = try Quantity.duration(try e.string())
                case "max_bytes": maxBytes = try Quantity.bytes(try e.string())
                case "max_frame": maxFrame = try e.int()
                case "metrics_interval": metricsIntervalSeconds = try e.double()
                case "frame_timeout": frameTimeoutSeconds = try e.double()
                case "max_ingest_body": maxIngestBody = try (try? e.int()) ?? Quantity.bytes(try e.string())
                case "otlp_default_type": otlpDefaultType = try e.string()
                case "http_header_timeout": httpLimits.headerTimeout = try e.double()
                case "http_idle_timeout": httpLimits.idleTimeout = try e.double()
                case "http_max_connections": httpLimits.maxConnections = try e.int()
                case "http_max_connections_per_peer": httpLimits.maxConnectionsPerPeer = try e.int()
                case "log_events": logEvents = try e.string()
                default:
                    guard try replication.apply(e) else { throw e.error("unknown key \(e.key)") }
                }
            } catch let error as QuantityError {
                throw e.error(error.message)
            } catch let error as StoreError {
                throw e.error(error.message)
            } catch let error as ConfigProblem {
                throw e.error(error.description)
            }
        }
        return token
    }
}
