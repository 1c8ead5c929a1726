@_spi(Testing) import EventStore

/// Everything grid-eventd is configured with. Defaults follow DESIGN.md.
public struct DaemonConfig: Sendable {
    /// The data directory (default `./data`).
    public var dataDirectory = "./data"
    /// The Unix socket producers connect to (default `<data dir>/grid-eventd.sock`).
    public var socketPath: String?
    /// HTTP listen address (default 127.0.0.1:7780); nil disables HTTP.
    public var httpHost = "127.0.0.1"
    public var httpPort = 7780
    public var durability: Durability = .batch
    public var segmentCapacity = 64 << 20
    /// Uids allowed to connect besides the daemon's own and root.
    public var allowedUids: Set<UInt32> = []
    /// Gids whose members may connect.
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

    /// Test only: system-call failures injected into the store (grid-eventd arms it from `GRID_EVENTD_FAULTS`).
    @_spi(Testing) public var faults: FaultInjector?

    public init(dataDirectory: String = "./data") {
        self.dataDirectory = dataDirectory
    }

    public var resolvedSocketPath: String { socketPath ?? (dataDirectory + "/grid-eventd.sock") }
}
