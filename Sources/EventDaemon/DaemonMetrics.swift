import CoreMetrics
import EventReplication
import EventStore
import GridEvents
import Metrics
import NIOConcurrencyHelpers
import Prometheus

/// grid-eventd's Prometheus metrics (`GET /metrics`), made through swift-metrics with swift-prometheus as the
/// backend, on a registry of the daemon's own (no global bootstrap, so several daemons in one test process keep
/// theirs apart). Counted as it happens: events and bytes stored (by type, by source), receive-to-ack latency.
/// Read at each scrape from the store and the daemon: connections, queues, segments, bytes on disk, compaction,
/// retention, damage, replication. Names and units: README, "Prometheus metrics".
public final class DaemonMetrics: @unchecked Sendable {
    let registry = PrometheusCollectorRegistry()
    let factory: PrometheusMetricsFactory
    private let lock = NIOLock()
    private var byType: [String: CoreMetrics.Counter] = [:]
    private var bySource: [String: (events: CoreMetrics.Counter, bytes: CoreMetrics.Counter)] = [:]
    private let ackLatency: CoreMetrics.Timer
    private var gauges: [String: CoreMetrics.Gauge] = [:]
    private var totals: [String: (counter: CoreMetrics.Counter, last: Int64)] = [:]

    /// Buckets of the receive-to-ack histogram: 100 µs to 10 s.
    static let latencyBuckets: [Duration] = [
        .microseconds(100), .microseconds(250), .microseconds(500), .milliseconds(1), .milliseconds(2), .milliseconds(5),
        .milliseconds(10), .milliseconds(25), .milliseconds(50), .milliseconds(100), .milliseconds(250), .milliseconds(500),
        .seconds(1), .seconds(2.5), .seconds(5), .seconds(10),
    ]

    public init() {
        var factory = PrometheusMetricsFactory(registry: registry)
        factory.durationHistogramBuckets = ["grid_eventd_ack_latency_seconds": Self.latencyBuckets]
        self.factory = factory
        ackLatency = CoreMetrics.Timer(label: "grid_eventd_ack_latency_seconds", factory: factory)
    }

    /// The `type` label: a catalogue type's name; every custom event is `custom` (their names are unbounded).
    static func typeLabel(_ type: EventType) -> String { type.name }

    /// The `source` label of a writer job: how its events arrived.
    static func sourceLabel(_ producer: String) -> String {
        switch producer {
        case "replication": return "replication"
        case "grid-eventd": return "daemon"
        case HTTPIngest.jsonProducer: return "http"
        case HTTPIngest.otlpProducer: return "otlp"
        default: return "socket"
        }
    }

    /// Counts a durable job (called on the writer thread).
    func record(_ job: BatchWriter.Job, now: UInt64) {
        let source = Self.sourceLabel(job.producer)
        var types: [EventType: Int] = [:]
        for e in job.newEvents { types[e.type, default: 0] += 1 }
        let bytes = job.prepared.reduce(0) { $0 + $1.size }
        lock.withLock {
            for (t, n) in types {
                let name = Self.typeLabel(t)
                let c = byType[name] ?? {
                    let c = CoreMetrics.Counter(label: "grid_eventd_ingested_events_total", dimensions: [("type", name)], factory: factory)
                    byType[name] = c
                    return c
                }()
                c.increment(by: n)
            }
            let s = bySource[source] ?? {
                let s = (CoreMetrics.Counter(label: "grid_eventd_ingested_events_by_source_total", dimensions: [("source", source)], factory: factory),
                         CoreMetrics.Counter(label: "grid_eventd_ingested_bytes_total", dimensions: [("source", source)], factory: factory))
                bySource[source] = s
                return s
            }()
            s.events.increment(by: job.newEvents.count)
            s.bytes.increment(by: bytes)
        }
        if source != "daemon", now >= job.receivedAt { ackLatency.recordNanoseconds(Int64(now - job.receivedAt)) }
    }

    private func gauge(_ name: String, _ labels: [(String, String)] = [], _ value: Double) {
        let key = name + labels.map { "|\($0.0)=\($0.1)" }.joined()
        let g = lock.withLock {
            gauges[key] ?? {
                let g = CoreMetrics.Gauge(label: name, dimensions: labels, factory: factory)
                gauges[key] = g
                return g
            }()
        }
        g.record(value)
    }

    /// A counter that mirrors a running total kept elsewhere (the store's, the replicator's): increased by what the
    /// total grew since the last scrape.
    private func total(_ name: String, _ labels: [(String, String)] = [], _ value: Int) {
        let key = name + labels.map { "|\($0.0)=\($0.1)" }.joined()
        lock.withLock {
            var entry = totals[key] ?? (CoreMetrics.Counter(label: name, dimensions: labels, factory: factory), 0)
            if Int64(value) > entry.last {
                entry.counter.increment(by: Int64(value) - entry.last)
                entry.last = Int64(value)
            }
            totals[key] = entry
        }
    }

    /// What a scrape reads besides the counters.
    struct Snapshot {
        var stats: StoreStats
        var recovery: RecoveryReport
        var connections: Int
        var liveStreams: Int
        var writerQueue: Int
        var replicator: ReplicatorStats?
        var aggregator: AggregatorStats?
        /// The grid-state checkpoints on disk (`GridStateKeeper.checkpoints`), nil without a keeper.
        var gridCheckpoints: [(name: String, asOf: Int64, bytes: Int, usable: Bool)]? = nil
        /// The daemon's own log records not stored (`DaemonLogSink`), nil when it does not store them.
        var ownLogs: (dropped: Int, suppressed: Int)? = nil
    }

    /// The text exposition (format 0.0.4) of every metric, after reading `snapshot` into the gauges.
    func render(_ snapshot: Snapshot) -> [UInt8] {
        let s = snapshot.stats
        gauge("grid_eventd_stored_events", [], Double(s.events))
        gauge("grid_eventd_segments", [("state", "active")], Double(s.segments - s.sealedSegments))
        gauge("grid_eventd_segments", [("state", "sealed_raw")], Double(s.sealedSegments - s.compactedSegments))
        gauge("grid_eventd_segments", [("state", "compacted")], Double(s.compactedSegments))
        gauge("grid_eventd_disk_bytes", [], Double(s.diskBytes))
        gauge("grid_eventd_index_bytes", [], Double(s.indexBytes))
        gauge("grid_eventd_compacted_bytes", [], Double(s.compactedBytes))
        gauge("grid_eventd_uncompacted_data_bytes", [], Double(s.uncompactedDataBytes))
        gauge("grid_eventd_producer_connections", [], Double(snapshot.connections))
        gauge("grid_eventd_live_streams", [], Double(snapshot.liveStreams))
        gauge("grid_eventd_writer_queue_depth", [], Double(snapshot.writerQueue))
        gauge("grid_eventd_resident_memory_bytes", [], Double(residentBytes()))
        total("grid_eventd_duplicates_ignored_total", [], s.duplicatesIgnored)
        total("grid_eventd_retention_deleted_segments_total", [], s.retention.segments)
        total("grid_eventd_retention_deleted_events_total", [], s.retention.events)
        total("grid_eventd_retention_deleted_bytes_total", [], s.retention.bytes)
        total("grid_eventd_compacted_events_total", [], s.compactedEvents)
        total("grid_eventd_store_damage_total", [("kind", "torn_tail")], snapshot.recovery.truncated.count)
        total("grid_eventd_store_damage_total", [("kind", "skipped_region")], snapshot.recovery.skipped.count)
        total("grid_eventd_store_damage_total", [("kind", "unreadable_segment")], snapshot.recovery.unreadableSegments.count)
        total("grid_eventd_store_damage_total", [("kind", "read")], s.readDamage.count)
        if let cps = snapshot.gridCheckpoints {
            let usable = cps.filter(\.usable).count
            gauge("grid_eventd_grid_state_checkpoints", [("state", "usable")], Double(usable))
            gauge("grid_eventd_grid_state_checkpoints", [("state", "unusable")], Double(cps.count - usable))
            gauge("grid_eventd_grid_state_checkpoint_bytes", [], Double(cps.reduce(0) { $0 + $1.bytes }))
        }
        if let o = snapshot.ownLogs {
            total("grid_eventd_own_log_records_not_stored_total", [("reason", "dropped")], o.dropped)
            total("grid_eventd_own_log_records_not_stored_total", [("reason", "suppressed")], o.suppressed)
        }
        if let r = snapshot.replicator {
            gauge("grid_eventd_replication_pending_frames", [], Double(r.pendingFrames))
            gauge("grid_eventd_replication_connected", [], r.connected ? 1 : 0)
            total("grid_eventd_replication_published_events_total", [], r.publishedEvents)
            total("grid_eventd_replication_rewinds_total", [], r.rewinds)
        }
        if let a = snapshot.aggregator {
            gauge("grid_eventd_aggregation_connected", [], a.connected ? 1 : 0)
            total("grid_eventd_aggregation_events_total", [], a.events)
            total("grid_eventd_aggregation_rejected_messages_total", [], a.rejected)
            for (host, h) in a.hosts {
                gauge("grid_eventd_aggregation_lag_seconds", [("host", host)], h.lagSeconds)
                gauge("grid_eventd_aggregation_lag_frames", [("host", host)], Double(h.lagFrames))
                gauge("grid_eventd_aggregation_lag_events", [("host", host)], Double(h.lagEvents))
            }
        }
        var out: [UInt8] = []
        registry.emit(into: &out)
        return out
    }
}
