import EventStore

/// The event catalogue: every event type with its stable code and fields.
public enum EventType: UInt16, CaseIterable, Sendable, Comparable {
    case agentRegistered = 1
    case agentHeartbeat = 2
    case agentDegraded = 3
    case agentOffline = 4
    case agentRecovered = 5
    case agentUnregistered = 6
    case spawnRequested = 10
    case spawnSucceeded = 11
    case spawnFailed = 12
    case stopRequested = 20
    case stopSucceeded = 21
    case stopFailed = 22
    case nodeCrashed = 30
    case nodeRestarted = 31
    case clusterHealthy = 40
    case clusterDegraded = 41
    case clusterCritical = 42
    /// The daemon's own metrics, recorded once a minute.
    case storageMetrics = 50
    /// An emitter dropped events (queue and spool full); reported once the daemon is reachable again.
    case eventsDropped = 51
    /// A service's own log record (swift-log through `GridEventsLogHandler`, OpenTelemetry logs): level, label,
    /// message, source, file, line, and its metadata as free fields and entities (`LogEntry`).
    case log = 60
    /// Any process's own event: a name, free fields and the entities it mentions.
    case custom = 100

    /// The edge type of the adjacency entry event -> time bucket.
    public static let timeBucketEdge: UInt16 = TimeBucket.edgeType
    /// Width of a time bucket: one minute.
    public static let timeBucketMicros: Int64 = TimeBucket.micros

    public static func < (a: EventType, b: EventType) -> Bool { a.rawValue < b.rawValue }

    /// The snake_case name used in ids and JSON (`spawn_failed`).
    public var name: String {
        switch self {
        case .agentRegistered: return "agent_registered"
        case .agentHeartbeat: return "agent_heartbeat"
        case .agentDegraded: return "agent_degraded"
        case .agentOffline: return "agent_offline"
        case .agentRecovered: return "agent_recovered"
        case .agentUnregistered: return "agent_unregistered"
        case .spawnRequested: return "spawn_requested"
        case .spawnSucceeded: return "spawn_succeeded"
        case .spawnFailed: return "spawn_failed"
        case .stopRequested: return "stop_requested"
        case .stopSucceeded: return "stop_succeeded"
        case .stopFailed: return "stop_failed"
        case .nodeCrashed: return "node_crashed"
        case .nodeRestarted: return "node_restarted"
        case .clusterHealthy: return "cluster_healthy"
        case .clusterDegraded: return "cluster_degraded"
        case .clusterCritical: return "cluster_critical"
        case .storageMetrics: return "storage_metrics"
        case .eventsDropped: return "events_dropped"
        case .log: return "log"
        case .custom: return "custom"
        }
    }

    private static let byName: [String: EventType] = Dictionary(uniqueKeysWithValues: allCases.map { ($0.name, $0) })

    /// The catalogue type with this name (not `custom`: a custom event is named by its own name).
    public init?(name: String) {
        guard let t = EventType.byName[name], t != .custom else { return nil }
        self = t
    }

    /// The fields, in their binary order.
    public var fields: [FieldSpec] {
        switch self {
        case .agentRegistered:
            return [FieldSpec("agent_id", .string, entity: true), FieldSpec("hostname", .string), FieldSpec("platform", .string),
                    FieldSpec("agent_endpoint", .string), FieldSpec("max_storage_nodes", .int)]
        case .agentHeartbeat:
            return [FieldSpec("agent_id", .string, entity: true), FieldSpec("storage_node_count", .int)]
        case .agentDegraded:
            return [FieldSpec("agent_id", .string, entity: true), FieldSpec("seconds_since_heartbeat", .double)]
        case .agentOffline:
            return [FieldSpec("agent_id", .string, entity: true), FieldSpec("last_seen", .time)]
        case .agentRecovered:
            return [FieldSpec("agent_id", .string, entity: true), FieldSpec("downtime_seconds", .double)]
        case .agentUnregistered:
            return [FieldSpec("agent_id", .string, entity: true)]
        case .spawnRequested:
            return [FieldSpec("node_id", .string, entity: true), FieldSpec("agent_id", .string, entity: true), FieldSpec("port", .int),
                    FieldSpec("storage_path", .string), FieldSpec("memory_limit_mb", .int)]
        case .spawnSucceeded:
            return [FieldSpec("node_id", .string, entity: true), FieldSpec("agent_id", .string, entity: true), FieldSpec("pid", .int),
                    FieldSpec("port", .int)]
        case .spawnFailed, .stopFailed:
            return [FieldSpec("node_id", .string, entity: true), FieldSpec("agent_id", .string, entity: true), FieldSpec("error", .string)]
        case .stopRequested, .stopSucceeded:
            return [FieldSpec("node_id", .string, entity: true), FieldSpec("agent_id", .string, entity: true)]
        case .nodeCrashed:
            return [FieldSpec("node_id", .string, entity: true), FieldSpec("agent_id", .string, entity: true),
                    FieldSpec("exit_code", .int, optional: true), FieldSpec("signal", .int, optional: true)]
        case .nodeRestarted:
            return [FieldSpec("node_id", .string, entity: true), FieldSpec("agent_id", .string, entity: true),
                    FieldSpec("restart_count", .int), FieldSpec("new_pid", .int)]
        case .clusterHealthy:
            return [FieldSpec("total_agents", .int), FieldSpec("healthy_agents", .int), FieldSpec("total_nodes", .int),
                    FieldSpec("running_nodes", .int)]
        case .clusterDegraded, .clusterCritical:
            return [FieldSpec("total_agents", .int), FieldSpec("healthy_agents", .int), FieldSpec("reason", .string)]
        case .storageMetrics:
            return [FieldSpec("events", .int), FieldSpec("bytes_on_disk", .int), FieldSpec("ingest_rate", .double),
                    FieldSpec("ack_p99_micros", .int), FieldSpec("resident_bytes", .int)]
        case .eventsDropped:
            return [FieldSpec("producer_id", .string, entity: true), FieldSpec("dropped", .int)]
        case .log:
            // The fixed fields; the metadata follows as free fields (LogEntry).
            return [FieldSpec("level", .string), FieldSpec("label", .string), FieldSpec("message", .string),
                    FieldSpec("source", .string, optional: true), FieldSpec("file", .string, optional: true),
                    FieldSpec("line", .int, optional: true)]
        case .custom:
            return []
        }
    }

    /// Severity for display and alerting.
    public var severity: Severity {
        switch self {
        case .spawnFailed, .stopFailed, .nodeCrashed, .clusterCritical, .agentOffline: return .error
        case .agentDegraded, .clusterDegraded, .eventsDropped, .nodeRestarted: return .warning
        default: return .info
        }
    }

    public enum Severity: String, Sendable { case info, warning, error }
}
