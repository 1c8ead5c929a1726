import EventQuery
import EventStore
import GridEvents

// The JSON answers of the HTTP API as `Encodable` types (docs/openapi.yaml has their schemas), all written by
// `JSONStreamEncoder`: members in declaration order, `@Nullable` members as `null` when nil, `Optional` ones left
// out when nil.

/// An event in its API form (`GridEvent.apiJSON`), written by its own writer.
struct APIEvent: JSONStreamWritable {
    let event: GridEvent
    init(_ event: GridEvent) { self.event = event }
    func writeJSON(into w: inout JSONWriter) { event.apiJSON(into: &w) }
}

/// `{"error": {"code", "message", ...}}`: every error answer.
struct ErrorBody: Encodable {
    struct Detail: Encodable {
        var code: String
        var message: String
        /// `not_understood`: questions that can be answered.
        var suggestions: [String]?
        /// `no_events`: the lines refused and why.
        var refused: [HTTPIngest.Refusal]?
    }
    var error: Detail
}

/// A page of events: `/api/events`, `/api/grid/events/recent`, `/api/entities/{id}/events`.
struct EventsPage: Encodable {
    var events: [APIEvent]
    @Nullable var nextCursor: String?

    init(_ page: QueryPage) {
        events = page.events.map(APIEvent.init)
        nextCursor = page.nextCursor
    }

    enum CodingKeys: String, CodingKey { case events, nextCursor = "next_cursor" }
}

/// `/api/events/{id}`: the event and its edges.
struct EventWithAdjacency: Encodable {
    struct Adjacent: Encodable {
        var node: String
        var kind: String
        var direction: String
        var edgeType: UInt16
        var timestamp: JSONTime
        enum CodingKeys: String, CodingKey { case node, kind, direction, edgeType = "edge_type", timestamp }
    }
    var event: APIEvent
    var adjacency: [Adjacent]
}

/// `/api/graph/neighbors`.
struct NeighborsAnswer: Encodable {
    struct Node: Encodable {
        var id: String
        var kind: String
        var depth: Int
    }
    struct Edge: Encodable {
        var source: String
        var target: String
        var edgeType: UInt16
        var timestamp: JSONTime
        enum CodingKeys: String, CodingKey { case source, target, edgeType = "edge_type", timestamp }
    }
    var id: String
    var depth: Int
    var nodes: [Node]
    var edges: [Edge]
    var truncated: Bool
}

/// `/api/timeline`: events per type per bucket.
struct TimelineAnswer: Encodable {
    var start: JSONTime
    var bucketSeconds: Double
    var buckets: Int
    /// Type name: the count in each bucket, types in code order, those with no event left out.
    var series: JSONObject<[Int]>
    enum CodingKeys: String, CodingKey { case start, bucketSeconds = "bucket_seconds", buckets, series }
}

/// `/api/grid/agents`: agents (each with its nodes) and every node. Each node is under its agent and in `nodes`:
/// its JSON (`Node`) is encoded once and written twice.
struct AgentsAnswer: Encodable {
    struct Agent: Encodable {
        var agentId: String
        var state: String
        @Nullable var lastHeartbeat: JSONTime?
        var lastTransition: String
        var lastTransitionAt: JSONTime
        @Nullable var hostname: String?
        @Nullable var endpoint: String?
        var nodes: [RawJSON]
        enum CodingKeys: String, CodingKey {
            case agentId = "agent_id", state, lastHeartbeat = "last_heartbeat", lastTransition = "last_transition"
            case lastTransitionAt = "last_transition_at", hostname, endpoint, nodes
        }
    }
    struct Node: Encodable {
        var nodeId: String
        var agentId: String
        var state: String
        @Nullable var pid: Int?
        @Nullable var port: Int?
        var restartCount: Int
        var lastEvent: String
        var lastEventAt: JSONTime
        @Nullable var detail: String?
        enum CodingKeys: String, CodingKey {
            case nodeId = "node_id", agentId = "agent_id", state, pid, port, restartCount = "restart_count"
            case lastEvent = "last_event", lastEventAt = "last_event_at", detail
        }
    }
    /// The moment asked (`?at=`); left out for the current state.
    var at: JSONTime?
    var agents: [Agent]
    var nodes: [RawJSON]

    init(_ agents: [AgentState], nodes: [NodeState], at: Int64?) throws {
        let encoder = JSONStreamEncoder()
        var encoded: [String: RawJSON] = [:]
        encoded.reserveCapacity(nodes.count)
        for n in nodes { encoded[n.nodeId] = RawJSON(try encoder.encode(Node(n))) }
        func node(_ n: NodeState) throws -> RawJSON { try encoded[n.nodeId] ?? RawJSON(encoder.encode(Node(n))) }
        self.at = at.map(JSONTime.init)
        self.agents = try agents.map { a in
            Agent(agentId: a.agentId, state: a.health.rawValue, lastHeartbeat: a.lastHeartbeat.map(JSONTime.init),
                  lastTransition: a.lastTransition, lastTransitionAt: JSONTime(a.lastTransitionAt), hostname: a.hostname,
                  endpoint: a.endpoint, nodes: try a.nodes.map(node))
        }
        self.nodes = try nodes.map(node)
    }
}

extension AgentsAnswer.Node {
    init(_ n: NodeState) {
        self.init(nodeId: n.nodeId, agentId: n.agentId, state: n.state.rawValue, pid: n.pid, port: n.port,
                  restartCount: n.restartCount, lastEvent: n.lastEvent, lastEventAt: JSONTime(n.lastEventAt), detail: n.detail)
    }
}

/// `POST /api/grid/events/query`: the question, how it was read, and the answer.
struct QuestionAnswer: Encodable {
    struct Reading: Encodable {
        var action: String
        /// `group` and `count_distinct`: the key grouped by; `top`: `group` with a limit.
        var groupBy: String?
        var top: Int?
        var query: RawJSON
        var sentence: String
        enum CodingKeys: String, CodingKey { case action, groupBy = "group_by", top, query, sentence }

        init(_ i: Interpretation) {
            action = i.actionName
            switch i.action {
            case .group(let key, let top):
                groupBy = key.rawValue
                self.top = top
            case .countDistinct(let key):
                groupBy = key.rawValue
            default:
                break
            }
            query = RawJSON(writing: i.query.json(into:))
            sentence = i.sentence
        }
    }
    /// The answer, by kind: `events` (a page), `count` (with its breakdown), `groups`, `chain`.
    enum Result: Encodable {
        case events(EventsPage)
        case count(Int, breakdown: [Bucket])
        case groups([Bucket])
        case chain([APIEvent])

        init(_ answer: Answer) {
            switch answer {
            case .events(let page): self = .events(EventsPage(page))
            case .count(let n, let breakdown): self = .count(n, breakdown: breakdown)
            case .groups(let groups): self = .groups(groups)
            case .chain(let events): self = .chain(events.map(APIEvent.init))
            }
        }

        enum CodingKeys: String, CodingKey { case kind, events, nextCursor = "next_cursor", count, breakdown, groups }

        func encode(to encoder: any Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            switch self {
            case .events(let page):
                try c.encode("events", forKey: .kind)
                try c.encode(page.events, forKey: .events)
                try c.encode(page.nextCursor, forKey: .nextCursor)  // null on the last page
            case .count(let n, let breakdown):
                try c.encode("count", forKey: .kind)
                try c.encode(n, forKey: .count)
                try c.encode(breakdown, forKey: .breakdown)
            case .groups(let groups):
                try c.encode("groups", forKey: .kind)
                try c.encode(groups, forKey: .groups)
            case .chain(let events):
                try c.encode("chain", forKey: .kind)
                try c.encode(events, forKey: .events)
            }
        }
    }
    var question: String
    var interpretation: Reading
    var result: Result
}

extension Bucket: Encodable {
    enum CodingKeys: String, CodingKey { case key, count }
    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(key, forKey: .key)
        try c.encode(count, forKey: .count)
    }
}

/// `/api/stats`.
struct StatsAnswer: Encodable {
    struct Ingest: Encodable {
        var eventsTotal: Int
        var ratePerSecond: Double
        var ackP99Micros: Int
        var connections: Int
        enum CodingKeys: String, CodingKey {
            case eventsTotal = "events_total", ratePerSecond = "rate_per_second", ackP99Micros = "ack_p99_micros", connections
        }
    }
    struct Compaction: Encodable {
        var compactedSegments: Int
        var compactedBytes: Int
        var compactedEvents: Int
        var uncompactedDataBytes: Int
        var indexFiles: Int
        var indexBytes: Int
        var diskBytes: Int
        enum CodingKeys: String, CodingKey {
            case compactedSegments = "compacted_segments", compactedBytes = "compacted_bytes", compactedEvents = "compacted_events"
            case uncompactedDataBytes = "uncompacted_data_bytes", indexFiles = "index_files", indexBytes = "index_bytes", diskBytes = "disk_bytes"
        }
    }
    struct Retention: Encodable {
        var deletedSegments: Int
        var deletedEvents: Int
        var deletedBytes: Int
        var lastDeletedSegment: UInt64
        @Nullable var lastDeletion: JSONTime?
        enum CodingKeys: String, CodingKey {
            case deletedSegments = "deleted_segments", deletedEvents = "deleted_events", deletedBytes = "deleted_bytes"
            case lastDeletedSegment = "last_deleted_segment", lastDeletion = "last_deletion"
        }
    }
    struct OwnLogs: Encodable {
        var dropped: Int
        var suppressed: Int
    }
    var events: Int
    var adjacencyEntries: Int
    var segments: Int
    var sealedSegments: Int
    var dataBytes: Int
    var fileBytes: Int
    var diskBytes: Int
    var duplicatesIgnored: Int
    var lastSequence: UInt64
    @Nullable var oldest: JSONTime?
    @Nullable var newest: JSONTime?
    var ingest: Ingest
    var liveStreams: Int
    var residentBytes: Int
    var types: JSONObject<Int>
    var compaction: Compaction
    var retention: Retention
    var readDamage: [String]
    /// `--log-events`: the daemon's own log records not stored; left out otherwise.
    var ownLogs: OwnLogs?
    /// The replicator's and the aggregator's counters; left out when the daemon does not replicate.
    var replication: RawJSON?
    var aggregation: RawJSON?

    enum CodingKeys: String, CodingKey {
        case events, adjacencyEntries = "adjacency_entries", segments, sealedSegments = "sealed_segments", dataBytes = "data_bytes"
        case fileBytes = "file_bytes", diskBytes = "disk_bytes", duplicatesIgnored = "duplicates_ignored", lastSequence = "last_sequence"
        case oldest, newest, ingest, liveStreams = "live_streams", residentBytes = "resident_bytes", types, compaction, retention
        case readDamage = "read_damage", ownLogs = "own_logs", replication, aggregation
    }
}

/// The answers of `/api/session` (SignIn.swift).
enum SessionAnswer {
    /// `GET`: how this request is signed in (`none`, `bearer`, `cookie`).
    struct Auth: Encodable {
        var auth: String
    }
    /// `POST`: signed in; the session cookie lasts `expires_in` seconds.
    struct SignedIn: Encodable {
        var ok = true
        var expiresIn: Int
        enum CodingKeys: String, CodingKey { case ok, expiresIn = "expires_in" }
    }
    /// `DELETE`: signed out.
    struct SignedOut: Encodable {
        var ok = true
    }
}

/// `POST /api/events`: what was stored of the lines sent.
struct IngestAnswer: Encodable {
    var stored: Int
    var duplicates: Int
    var accepted: Int
    var refusedCount: Int
    /// The first 100 lines refused.
    var refused: [HTTPIngest.Refusal]
    /// The ids of the first 1,000 events accepted.
    var ids: [String]
    enum CodingKeys: String, CodingKey { case stored, duplicates, accepted, refusedCount = "refused_count", refused, ids }
}
