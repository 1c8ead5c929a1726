@_spi(Testing) import EventStore
import EventQuery
import EventReplication
import EventWire
import GridEvents
import GridOTLP
import Logging
import NIOCore
import NIOPosix
import ServiceLifecycle
import Dispatch
#if canImport(Glibc)
import Glibc
#endif

/// grid-eventd: owns the data directory, accepts producers on a Unix socket, writes their batches with group
/// commit, acks what is durable, and records its own metrics. Run it as a `Service`; on graceful shutdown
/// (SIGTERM/SIGINT) it stops accepting, drains every received batch, syncs, acks, closes and returns.
public final class GridEventDaemon: Service, @unchecked Sendable {
    public let config: DaemonConfig
    public let logger: Logger
    public private(set) var store: EventStore?
    private var writer: BatchWriter?
    /// Prometheus metrics (`GET /metrics`).
    public let metrics = DaemonMetrics()
    private var httpIngest: HTTPIngest?
    private var ownLogs: DaemonLogSink?
    /// The grid state kept as events arrive, with its checkpoints (`/api/grid/agents`).
    public private(set) var gridState: GridStateKeeper?
    private var group: MultiThreadedEventLoopGroup?
    /// The threads the HTTP API reaches the store through (`APIContext.pool`): this daemon's own, so a slow read
    /// (a grid state far in the past, a large answer) waits for one of them and nothing else in the process does.
    /// More than the cores: a read mostly waits on page faults of the mapped segments.
    private let apiPool = NIOThreadPool(numberOfThreads: max(4, 2 * System.coreCount))
    private var serverChannel: Channel?
    private var metricsTask: RepeatedTask?
    private var replication: DaemonReplication?
    private var connections: ConnectionRegistry
    private let daemonTag: String
    private var metricsSequence: UInt64 = 0
    private let stateLock = ConditionLock()
    private var stopped = false

    public init(config: DaemonConfig, logger: Logger = Logger(label: "grid-eventd")) {
        self.config = config
        self.logger = logger
        self.connections = ConnectionRegistry(limit: config.maxConnections)
        self.daemonTag = ProducerTag.random()
    }

    /// Opens the store, binds the socket and starts serving. Throws with a message an operator can act on.
    public func start() throws {
        var options = config.storeOptions
        // The word index of grid events' string fields (`?text=` searches).
        if options.text == nil { options.text = GridText.indexing }
        let logger = self.logger
        options.onNotice = { logger.info("\($0)") }
        options.faults = config.faults
        let floor = DaemonReplication.FloorBox()
        if config.replication.replicate != nil {
            options.replicationFloor = { floor.value ?? 0 }
            options.onReplicationLoss = { [weak self] loss in
                floor.report(loss)
                self?.recordReplicationLoss(loss)
            }
        }
        let store = try EventStore.open(at: config.dataDirectory, options: options)
        self.store = store
        var stateOptions = GridStateKeeper.Options(interval: config.gridCheckpointInterval, maxBytes: config.gridCheckpointBytes)
        stateOptions.onNotice = { logger.info("\($0)") }
        let gridState: GridStateKeeper
        do {
            gridState = try GridStateKeeper.open(store, options: stateOptions)
        } catch {
            store.close()
            throw error
        }
        let opened = gridState.openReport
        logger.info("grid state ready in \(opened.seconds) s: \(opened.checkpoint.map { "checkpoint \($0)" } ?? "full replay"), \(opened.eventsRead) events read")
        self.gridState = gridState
        let writer = BatchWriter(store: store, logger: logger, keepaliveSeconds: config.streamKeepaliveSeconds,
                                 gridState: gridState)
        let metrics = self.metrics
        writer.onDurable = { job in metrics.record(job, now: monotonicNanos()) }
        writer.start()
        self.writer = writer
        var otlp = OTLPLogs.Mapping()
        otlp.defaultType = config.otlpDefaultType
        httpIngest = HTTPIngest(writer: writer, maxBody: config.maxIngestBody, otlp: otlp)
        stateLock.withLock { ownLogs }?.attach(writer)
        replication = makeReplication(store: store, writer: writer, floor: floor)
        let path = config.resolvedSocketPath
        do {
            try SocketPath.prepare(path)
        } catch {
            writer.stop()
            gridState.close()
            store.close()
            throw error
        }
        let group = MultiThreadedEventLoopGroup(numberOfThreads: max(1, min(2, System.coreCount)))
        self.group = group
        let config = self.config
        let connections = self.connections
        let bootstrap = ServerBootstrap(group: group)
            .serverChannelOption(ChannelOptions.backlog, value: 256)
            .childChannelOption(ChannelOptions.maxMessagesPerRead, value: 16)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(
                        WireHandler(writer: writer, config: config, connections: connections, logger: logger))
                }
            }
        do {
            serverChannel = try SocketPath.bindPrivately(path) { try bootstrap.bind(unixDomainSocketPath: $0).wait() }
        } catch {
            try? group.syncShutdownGracefully()
            writer.stop()
            gridState.close()
            store.close()
            throw SocketPath.Refused(description: "cannot listen on \(path): \(error)")
        }
        apiPool.start()  // after the last step that can fail: a pool that started is shut down by shutdown()
        replication?.start()
        logger.info("grid-eventd listening on \(path), data in \(config.dataDirectory), sync \(config.durability.rawValue)")
        let interval = TimeAmount.milliseconds(Int64(config.metricsIntervalSeconds * 1000))
        metricsTask = group.next().scheduleRepeatedTask(initialDelay: interval, delay: interval) { [weak self] _ in
            self?.recordMetrics()
        }
    }

    private func makeReplication(store: EventStore, writer: BatchWriter, floor: DaemonReplication.FloorBox) -> DaemonReplication? {
        let settings = config.replication
        guard settings.isEnabled else { return nil }
        var replicator: Replicator?
        var aggregator: Aggregator?
        if let urls = settings.replicate, case .success(let c) = settings.config(urls: urls) {
            let r = Replicator(store: store, config: c, logger: logger)
            floor.set(r)
            replicator = r
            logger.info("replicating to \(c.servers.map(\.description).joined(separator: ",")) as host \(c.hostId) on \(c.subject) (stream \(c.stream)), from frame \(r.cursor + 1)")
        }
        if let urls = settings.aggregate, case .success(let c) = settings.config(urls: urls) {
            aggregator = Aggregator(config: c, sink: WriterSink(writer: writer), logger: logger, positions: PositionsFile(store: store))
            logger.info("aggregating \(c.streamSubjects) of stream \(c.stream) from \(c.servers.map(\.description).joined(separator: ",")) as consumer \(c.durableName)")
        }
        return DaemonReplication(replicator: replicator, aggregator: aggregator, floor: floor)
    }

    /// Records a `replication_loss` event (custom) into the store: retention (`--max-bytes`) deleted frames that never
    /// reached NATS. Entities `storage` and `host-<id>`.
    func recordReplicationLoss(_ loss: ReplicationLoss) {
        guard let writer else { return }
        let seq = stateLock.withLock { () -> UInt64 in
            metricsSequence += 1
            return metricsSequence
        }
        let host = config.replication.hostId ?? ReplicationSettings.defaultHostId()
        let kind = GridEventKind.custom(
            name: "replication_loss",
            fields: [
                "segments": .string(loss.segments.map(String.init).joined(separator: ",")), "events": .int(Int64(loss.events)),
                "replicated_through": .int(Int64(loss.cursor)), "last_lost_frame": .int(Int64(loss.lastDeletedSequence)),
            ],
            entities: ["storage", "host-" + host])
        writer.appendOwn(GridEvent(
            id: GridEvent.makeId(typeName: "replication_loss", producerTag: daemonTag, sequence: seq),
            timestamp: GridClock.nowMicros(), kind: kind))
    }

    /// Records a `storage_metrics` event about the daemon itself into its own store.
    public func recordMetrics() {
        guard let store, let writer else { return }
        let stats = store.stats
        let seq = stateLock.withLock { () -> UInt64 in
            metricsSequence += 1
            return metricsSequence
        }
        let kind = GridEventKind.storageMetrics(
            events: stats.events, bytesOnDisk: stats.diskBytes, ingestRate: writer.metrics.takeRate(),
            ackP99Micros: writer.metrics.ackP99Micros, residentBytes: residentBytes())
        writer.appendOwn(GridEvent(
            id: GridEvent.makeId(typeName: kind.typeName, producerTag: daemonTag, sequence: seq),
            timestamp: GridClock.nowMicros(), kind: kind))
    }

    /// Records the daemon's own log records into its store through `sink` (`--log-events`); call before or after
    /// `start()`: records logged before the store is open are dropped.
    public func recordOwnLogs(into sink: DaemonLogSink) {
        let writer = stateLock.withLock { () -> BatchWriter? in
            ownLogs = sink
            return self.writer
        }
        if let writer { sink.attach(writer) }
    }

    /// The own log records not stored (`DaemonLogSink.dropped`, `.suppressed`); nil without `recordOwnLogs(into:)`.
    var ownLogCounts: (dropped: Int, suppressed: Int)? {
        stateLock.withLock { ownLogs }.map { ($0.dropped, $0.suppressed) }
    }

    /// Ingest counters for /api/stats.
    public var ingestedEvents: Int { writer?.metrics.ingestedEvents ?? 0 }
    public var ackP99Micros: Int { writer?.metrics.ackP99Micros ?? 0 }
    public var connectionCount: Int { connections.count }

    public func run() async throws {
        if store == nil { try start() }
        try? await gracefulShutdown()
        await shutdownGracefully()
    }

    /// Stops accepting, finishes and acks every batch already received, syncs, closes everything; idempotent. The
    /// async form of `shutdown()`: it waits on futures, and runs its blocking steps (waiting for the writer to
    /// drain, closing the store) on `NIOThreadPool.singleton`, so no thread of the async executor or of an event
    /// loop blocks.
    public func shutdownGracefully() async {
        guard beginShutdown() else { return }
        await replication?.stop()
        try? await serverChannel?.close().get()
        pauseProducers()
        // Everything received is written and acked before the connections close.
        let writer = self.writer
        _ = try? await NIOThreadPool.singleton.runIfActive { writer?.waitDrained(seconds: Self.drainSeconds) }
        for channel in connections.all {
            try? await channel.eventLoop.submit { }.get()  // let queued acks reach the socket
            try? await channel.close().get()
        }
        try? await NIOThreadPool.singleton.runIfActive { [self] in closeStorage() }
        try? await group?.shutdownGracefully()
        finishShutdown()
    }

    /// The live feed of acknowledged events (for `/api/events/stream`).
    public var feed: LiveFeed? { writer?.feed }

    /// The HTTP API's view of this daemon. Call after `start()`.
    public func apiContext() -> APIContext? {
        guard let store, let writer, let gridState else { return nil }
        let connections = self.connections
        let replication = self.replication
        var context = APIContext(store: store, feed: writer.feed, gridState: gridState, ingest: {
            (writer.metrics.ingestedEvents, writer.metrics.currentRate, writer.metrics.ackP99Micros, connections.count)
        })
        context.replicationStats = { replication?.stats() ?? (nil, nil) }
        context.ownLogs = { [weak self] in self?.ownLogCounts }
        context.httpIngest = httpIngest
        context.pool = apiPool
        let metrics = self.metrics
        let feed = writer.feed
        context.metricsText = { [weak self] in
            metrics.render(DaemonMetrics.Snapshot(
                stats: store.stats, recovery: store.recovery, connections: connections.count, liveStreams: feed.subscriberCount,
                writerQueue: writer.pending, replicator: replication?.replicator?.stats, aggregator: replication?.aggregator?.stats,
                gridCheckpoints: gridState.checkpoints, ownLogs: self?.ownLogCounts))
        }
        return context
    }

    /// How long shutdown waits for the writer to finish what was received.
    static let drainSeconds = 30.0

    /// Stops accepting, finishes and acks every batch already received, syncs, closes everything. Idempotent.
    /// Blocks: for code that is not async (tests, tools); async code awaits `shutdownGracefully()`.
    public func shutdown() {
        guard beginShutdown() else { return }
        if let replication {
            let done = DispatchSemaphore(value: 0)
            Task {
                await replication.stop()
                done.signal()
            }
            done.wait()
        }
        try? serverChannel?.close().wait()
        pauseProducers()
        // Everything received is written and acked before the connections close.
        _ = writer?.waitDrained(seconds: Self.drainSeconds)
        for channel in connections.all {
            try? channel.eventLoop.submit { }.wait()  // let queued acks reach the socket
            try? channel.close().wait()
        }
        closeStorage()
        try? group?.syncShutdownGracefully()
        finishShutdown()
    }

    /// The first steps of either shutdown: false when one already ran. Stops the daemon's own events and the
    /// live streams.
    private func beginShutdown() -> Bool {
        let already = stateLock.withLock { () -> Bool in
            defer { stopped = true }
            return stopped
        }
        if already { return false }
        logger.info("shutting down: draining \(writer?.pending ?? 0) batch(es)")
        stateLock.withLock { ownLogs }?.detach()
        metricsTask?.cancel()
        writer?.feed.finishAll()
        return true
    }

    /// Producers' connections stop reading: what they already sent is drained and acked, nothing more is taken.
    private func pauseProducers() {
        for channel in connections.all { _ = channel.setOption(ChannelOptions.autoRead, value: false) }
    }

    /// Stops the writer (drained), closes the grid state and the store (their last syncs). Blocks. An HTTP request
    /// still running gets an error from the stopped API pool (500), never a closed store.
    private func closeStorage() {
        try? apiPool.syncShutdownGracefully()
        writer?.stop()
        gridState?.close()
        store?.close()
    }

    private func finishShutdown() {
        unlink(config.resolvedSocketPath)
        logger.info("grid-eventd stopped")
    }
}
