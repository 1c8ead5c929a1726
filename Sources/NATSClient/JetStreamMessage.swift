import NIOCore

/// Where a JetStream message sits, parsed from its ack subject
/// (`$JS.ACK.<stream>.<consumer>.<delivered>.<stream seq>.<consumer seq>.<timestamp ns>.<pending>`, or the newer
/// form with domain and account hash before the stream, and a random token after pending).
public struct JetStreamMetadata: Sendable, Equatable {
    public var domain: String?
    public var stream: String
    public var consumer: String
    /// How many times this message has been delivered (1 the first time).
    public var delivered: UInt64
    public var streamSequence: UInt64
    public var consumerSequence: UInt64
    /// When the message was stored, nanoseconds since the epoch.
    public var timestampNanos: Int64
    /// Messages left for this consumer after this one.
    public var pending: UInt64

    /// Parses an ack subject; nil when it is not one.
    public init?(ackSubject: String) {
        let t = ackSubject.split(separator: ".", omittingEmptySubsequences: false)
        guard t.count >= 9, t[0] == "$JS", t[1] == "ACK" else { return nil }
        let base: Int
        if t.count == 9 {
            base = 2
        } else if t.count >= 11 {
            domain = t[2] == "_" ? nil : String(t[2])
            base = 4
        } else {
            return nil
        }
        guard let d = UInt64(t[base + 2]), let s = UInt64(t[base + 3]), let c = UInt64(t[base + 4]),
            let ts = Int64(t[base + 5]), let p = UInt64(t[base + 6])
        else { return nil }
        stream = String(t[base])
        consumer = String(t[base + 1])
        delivered = d
        streamSequence = s
        consumerSequence = c
        timestampNanos = ts
        pending = p
    }
}

/// A message pulled from a consumer, with its acknowledgement verbs.
public struct JetStreamMessage: Sendable {
    public let message: NATSMessage
    let connection: NATSConnection

    public var subject: String { message.subject }
    public var payload: [UInt8] { message.payload }
    public var headers: NATSHeaders? { message.headers }
    /// Stream, consumer, sequences and delivery count; nil when the reply subject is not an ack subject.
    public var metadata: JetStreamMetadata? { message.replyTo.flatMap { JetStreamMetadata(ackSubject: $0) } }

    init(message: NATSMessage, connection: NATSConnection) {
        self.message = message
        self.connection = connection
    }

    /// Acknowledges: processed, never deliver again (`+ACK`).
    public func ack() throws { try send("+ACK") }
    /// Negative acknowledgement: deliver again, after `delay` when given (`-NAK`, `-NAK {"delay": ns}`).
    public func nak(delay: Duration? = nil) throws {
        if let delay {
            let ns = Int64(delay.components.seconds) * 1_000_000_000 + delay.components.attoseconds / 1_000_000_000
            try send("-NAK {\"delay\": \(ns)}")
        } else {
            try send("-NAK")
        }
    }
    /// Terminate: never deliver again, not processed (`+TERM`).
    public func term() throws { try send("+TERM") }
    /// Work in progress: restart the ack timer (`+WPI`).
    public func inProgress() throws { try send("+WPI") }

    /// Acknowledges and waits for the server to confirm it recorded the ack.
    public func ackSync(timeout: TimeAmount? = nil) async throws {
        guard let reply = message.replyTo else { throw NATSError.badResponse("message has no ack subject") }
        _ = try await connection.request(reply, payload: Array("+ACK".utf8), timeout: timeout)
    }

    private func send(_ body: String) throws {
        guard let reply = message.replyTo else { throw NATSError.badResponse("message has no ack subject") }
        try connection.publish(reply, payload: Array(body.utf8))
    }
}
