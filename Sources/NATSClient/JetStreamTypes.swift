/// A stream's configuration (`$JS.API.STREAM.CREATE`). Durations are nanoseconds, as the API has them. Fields
/// left nil are not sent (the server picks its default) and are filled in by the server's answers.
public struct StreamConfig: Codable, Sendable, Equatable {
    public var name: String
    public var subjects: [String]?
    /// `limits`, `interest` or `workqueue`.
    public var retention: String?
    /// `file` or `memory`.
    public var storage: String?
    public var numReplicas: Int?
    /// Nanoseconds during which a repeated `Nats-Msg-Id` is ignored.
    public var duplicateWindow: Int64?
    public var maxAge: Int64?
    public var maxBytes: Int64?
    public var maxMsgs: Int64?
    public var maxMsgSize: Int32?
    /// `old` or `new`.
    public var discard: String?

    enum CodingKeys: String, CodingKey {
        case name, subjects, retention, storage, numReplicas = "num_replicas", duplicateWindow = "duplicate_window"
        case maxAge = "max_age", maxBytes = "max_bytes", maxMsgs = "max_msgs", maxMsgSize = "max_msg_size", discard
    }

    public init(name: String, subjects: [String]? = nil) {
        self.name = name
        self.subjects = subjects
    }
}

/// A stream's message counts and sequence range.
public struct StreamState: Codable, Sendable, Equatable {
    public var messages: UInt64
    public var bytes: UInt64
    public var firstSeq: UInt64
    public var lastSeq: UInt64
    public var consumerCount: Int?

    enum CodingKeys: String, CodingKey {
        case messages, bytes, firstSeq = "first_seq", lastSeq = "last_seq", consumerCount = "consumer_count"
    }
}

/// Where a clustered stream or consumer lives.
public struct ClusterInfo: Codable, Sendable, Equatable {
    public struct Peer: Codable, Sendable, Equatable {
        public var name: String
        public var current: Bool?
        public var lag: UInt64?
    }
    public var name: String?
    public var leader: String?
    public var replicas: [Peer]?
}

/// `$JS.API.STREAM.INFO` / CREATE / UPDATE answers.
public struct StreamInfo: Codable, Sendable {
    public var config: StreamConfig
    public var state: StreamState
    public var cluster: ClusterInfo?
}

/// A consumer's configuration (`$JS.API.CONSUMER.DURABLE.CREATE`).
public struct ConsumerConfig: Codable, Sendable, Equatable {
    public var durableName: String?
    /// `all`, `last`, `new`, `by_start_sequence`...
    public var deliverPolicy: String? = "all"
    public var optStartSeq: UInt64?
    /// `explicit`, `all` or `none`.
    public var ackPolicy: String? = "explicit"
    /// Nanoseconds before an unacknowledged message is delivered again.
    public var ackWait: Int64?
    /// Deliveries before the server gives up on a message (-1: no limit).
    public var maxDeliver: Int?
    public var filterSubject: String?
    public var replayPolicy: String? = "instant"
    /// Messages delivered and not yet acknowledged before the server stops delivering.
    public var maxAckPending: Int?
    /// Pull requests the server keeps waiting at once.
    public var maxWaiting: Int?
    /// Largest batch a pull request may ask for.
    public var maxBatch: Int?
    public var numReplicas: Int?

    enum CodingKeys: String, CodingKey {
        case durableName = "durable_name", deliverPolicy = "deliver_policy", optStartSeq = "opt_start_seq"
        case ackPolicy = "ack_policy", ackWait = "ack_wait", maxDeliver = "max_deliver", filterSubject = "filter_subject"
        case replayPolicy = "replay_policy", maxAckPending = "max_ack_pending", maxWaiting = "max_waiting"
        case maxBatch = "max_batch", numReplicas = "num_replicas"
    }

    public init(durableName: String? = nil) { self.durableName = durableName }
}

/// A consumer's progress.
public struct ConsumerInfo: Codable, Sendable {
    public struct SequenceInfo: Codable, Sendable, Equatable {
        public var consumerSeq: UInt64
        public var streamSeq: UInt64
        enum CodingKeys: String, CodingKey { case consumerSeq = "consumer_seq", streamSeq = "stream_seq" }
    }
    public var streamName: String
    public var name: String
    public var config: ConsumerConfig
    public var delivered: SequenceInfo
    public var ackFloor: SequenceInfo
    public var numAckPending: Int
    public var numRedelivered: Int
    public var numWaiting: Int
    public var numPending: UInt64

    enum CodingKeys: String, CodingKey {
        case streamName = "stream_name", name, config, delivered, ackFloor = "ack_floor"
        case numAckPending = "num_ack_pending", numRedelivered = "num_redelivered", numWaiting = "num_waiting"
        case numPending = "num_pending"
    }
}

/// JetStream's answer to a publish: the stream and sequence it was stored at, and whether it was a duplicate
/// (same `Nats-Msg-Id` within the duplicate window: not stored again).
public struct PubAck: Codable, Sendable, Equatable {
    public var stream: String
    public var seq: UInt64
    public var duplicate: Bool?
    public var domain: String?

    public var isDuplicate: Bool { duplicate ?? false }
}

/// The error object of a JetStream API answer.
struct APIError: Codable {
    var code: Int
    var errCode: Int?
    var description: String?
    enum CodingKeys: String, CodingKey { case code, errCode = "err_code", description }
}

struct APIErrorEnvelope: Codable {
    var error: APIError?
}

struct CreateConsumerRequest: Codable {
    var streamName: String
    var config: ConsumerConfig
    enum CodingKeys: String, CodingKey { case streamName = "stream_name", config }
}

struct PullRequest: Codable {
    var batch: Int
    var expires: Int64?
    var noWait: Bool?
    var maxBytes: Int?
    enum CodingKeys: String, CodingKey { case batch, expires, noWait = "no_wait", maxBytes = "max_bytes" }
}
