import EventQuery
import EventStore
import GridBase
import GridEvents
import Hummingbird
import NIOCore
import NIOPosix

/// What the HTTP API reads from: the store, the query engine, the live feed and the daemon's counters.
public struct APIContext: Sendable {
    public var store: EventStore
    public var engine: QueryEngine
    public var feed: LiveFeed
    /// The grid state kept as events arrive (the daemon's), behind `/api/grid/agents`.
    public var gridState: GridStateKeeper
    public var translator: Translator
    /// Ingest counters: events ingested, rate per second, ack p99 µs, open producer connections.
    public var ingest: @Sendable () -> (total: Int, rate: Double, ackP99Micros: Int, connections: Int)
    /// The dashboard page served at `/`.
    public var dashboardHTML: String
    /// The `replication` / `aggregation` members of `/api/stats` (each JSON text, `DaemonReplication.stats()`);
    /// nil when the daemon does not replicate (or does not aggregate).
    public var replicationStats: @Sendable () -> (replication: RawJSON?, aggregation: RawJSON?) = { (nil, nil) }
    /// The daemon's own log records it did not store (`--log-events`: `DaemonLogSink.dropped`, `.suppressed`), the
    /// `own_logs` member of `/api/stats`; nil when it does not store them.
    public var ownLogs: @Sendable () -> (dropped: Int, suppressed: Int)? = { nil }
    /// Events over HTTP (`POST /api/events`, `POST /v1/logs`); nil: those routes answer 503.
    public var httpIngest: HTTPIngest?
    /// The Prometheus text exposition for `GET /metrics`; nil: 404.
    public var metricsText: (@Sendable () -> [UInt8])?
    /// The threads a handler reaches the store and the grid state through (`blocking(_:)`): a read that waits on
    /// the disk holds one of them, never a SwiftNIO event loop or a thread of the async executor. `GridEventDaemon`
    /// gives its own; the default is one pool shared by the contexts made without one (tests, tools).
    public var pool: NIOThreadPool = APIContext.sharedPool
    /// The current time in microseconds since the epoch (`/api/timeline` counts back from it); tests fix it.
    public var now: @Sendable () -> Int64 = { GridClock.nowMicros() }

    /// Twice the cores, at least 4 (a read mostly waits on page faults of the mapped segments); started once,
    /// never stopped.
    static let sharedPool: NIOThreadPool = {
        let pool = NIOThreadPool(numberOfThreads: max(4, 2 * System.coreCount))
        pool.start()
        return pool
    }()

    public init(store: EventStore, feed: LiveFeed = LiveFeed(), gridState: GridStateKeeper,
                translator: Translator = Translator(),
                ingest: @escaping @Sendable () -> (total: Int, rate: Double, ackP99Micros: Int, connections: Int) = { (0, 0, 0, 0) },
                dashboardHTML: String = Dashboard.html) {
        self.store = store
        self.engine = QueryEngine(store: store)
        self.feed = feed
        self.gridState = gridState
        self.translator = translator
        self.ingest = ingest
        self.dashboardHTML = dashboardHTML
    }

    /// Runs `body` on `pool` and returns what it returns or throws. Every store, query-engine and grid-state call
    /// of an HTTP handler goes through here.
    func blocking<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
        try await pool.runIfActive(body)
    }

    /// The answer `body` builds, encoded as a JSON response: both on `pool` (a large answer takes milliseconds
    /// to encode, kept off the event loops as the store reads are).
    func answer<T: Encodable>(_ body: @escaping @Sendable () throws -> T) async throws -> Response {
        HTTPAPI.json(bytes: try await blocking { try HTTPAPI.encoded(body()) })
    }
}
