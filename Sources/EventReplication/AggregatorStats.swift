import Foundation
import GridEvents

/// A message the aggregator refused.
public struct Rejection: Sendable, Codable, Equatable {
    public var streamSequence: UInt64
    public var subject: String
    public var reason: String
    public var at: Int64
    enum CodingKeys: String, CodingKey { case streamSequence = "stream_sequence", subject, reason, at }
}

/// Per origin host, on the aggregator.
public struct HostReplicationStats: Sendable, Codable, Equatable {
    /// Highest frame sequence of the host stored here.
    public var lastSequence: UInt64 = 0
    /// The host's newest frame sequence, as its last message said.
    public var headSequence: UInt64 = 0
    /// Frames (batches) the host has committed that are not here yet, as of its last message.
    public var lagFrames: UInt64 = 0
    /// Events in those frames, estimated from the host's average events per frame.
    public var lagEvents = 0
    /// Seconds behind: while frames are missing, the age of the last one received; else the delay from the
    /// host's publish to the store here for the last message.
    public var lagSeconds = 0.0
    public var lastDelaySeconds = 0.0
    public var lastPublished: Int64?
    /// When the aggregator last stored a message of this host (microseconds).
    public var lastHeard: Int64?
    public var frames = 0
    public var events = 0

    public init() {}

    enum CodingKeys: String, CodingKey {
        case lastSequence = "last_replicated_sequence", headSequence = "host_head_sequence", lagFrames = "lag_frames"
        case lagEvents = "lag_events", lagSeconds = "lag_seconds", lastDelaySeconds = "last_delay_seconds"
        case lastPublished = "last_published", lastHeard = "last_heard", frames, events
    }
}

/// The aggregator's state in `/api/stats` (`aggregation`).
public struct AggregatorStats: Sendable, Codable {
    public var stream = ""
    public var consumer = ""
    public var connected = false
    public var ready = false
    public var server: String?
    public var messages = 0
    public var events = 0
    public var rejected = 0
    /// Messages held back (nak'ed) because an earlier frame of their host had not arrived yet.
    public var heldBack = 0
    /// Gaps given up on after waiting (frames that never arrived).
    public var gapsAccepted = 0
    public var rejections: [Rejection] = []
    @SortedKeys public var hosts: [String: HostReplicationStats] = [:]
    public var lastError: String?
    /// The consumer's and the stream's state, as last read (every 2 s while nothing arrives).
    public var consumerState: ConsumerState?
    /// Times this run made its consumer again because it stopped delivering (`StreamProgress`), and why last.
    public var consumerRemade = 0
    public var lastConsumerRemade: String?

    public init() {}

    enum CodingKeys: String, CodingKey {
        case stream, consumer, connected, ready, server, messages, events, rejected, rejections, hosts
        case heldBack = "held_back", gapsAccepted = "gaps_accepted"
        case lastError = "last_error", consumerState = "consumer_state", consumerRemade = "consumer_remade"
        case lastConsumerRemade = "last_consumer_remade"
    }
}

/// The aggregator's durable consumer as the server describes it, with its stream's bounds.
public struct ConsumerState: Sendable, Codable, Equatable {
    public var exists: Bool
    public var deliveredStreamSequence: UInt64?
    public var ackFloorStreamSequence: UInt64?
    public var numPending: UInt64?
    public var numAckPending: Int?
    public var numRedelivered: Int?
    public var streamFirstSequence: UInt64?
    public var streamLastSequence: UInt64?
    /// Every stream sequence up to here is processed by this aggregator.
    public var processedFloor: UInt64
    /// Seconds since a pull last brought a message.
    public var idleSeconds: Double
    public var at: Int64

    public init(
        exists: Bool, deliveredStreamSequence: UInt64?, ackFloorStreamSequence: UInt64?, numPending: UInt64?,
        numAckPending: Int?, numRedelivered: Int?, streamFirstSequence: UInt64?, streamLastSequence: UInt64?,
        processedFloor: UInt64, idleSeconds: Double, at: Int64
    ) {
        self.exists = exists
        self.deliveredStreamSequence = deliveredStreamSequence
        self.ackFloorStreamSequence = ackFloorStreamSequence
        self.numPending = numPending
        self.numAckPending = numAckPending
        self.numRedelivered = numRedelivered
        self.streamFirstSequence = streamFirstSequence
        self.streamLastSequence = streamLastSequence
        self.processedFloor = processedFloor
        self.idleSeconds = idleSeconds
        self.at = at
    }

    enum CodingKeys: String, CodingKey {
        case exists, deliveredStreamSequence = "delivered_stream_sequence", ackFloorStreamSequence = "ack_floor_stream_sequence"
        case numPending = "num_pending", numAckPending = "num_ack_pending", numRedelivered = "num_redelivered"
        case streamFirstSequence = "stream_first_sequence", streamLastSequence = "stream_last_sequence"
        case processedFloor = "processed_floor", idleSeconds = "idle_seconds", at
    }
}
