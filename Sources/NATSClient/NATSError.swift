@_exported import NATSProtocol

/// What can go wrong talking to NATS, each with a message an operator can act on.
public enum NATSError: Error, Sendable, Equatable, CustomStringConvertible {
    /// A server URL that does not parse.
    case invalidURL(String, reason: String)
    /// The server refused our credentials (`-ERR 'Authorization Violation'` and friends). The client keeps retrying,
    /// but slowly (`NATSOptions.authErrorRetryDelay`).
    case authorizationViolation(String)
    /// The server sent `-ERR` with this text.
    case serverError(String)
    /// The server's bytes broke the protocol; the connection was closed.
    case protocolViolation(NATSProtocolError)
    /// No server answered within a connect round (`connect()`), or the connection dropped while an operation waited.
    case notConnected(String)
    case connectionLost
    /// The connection was closed by `close()`.
    case closed
    /// Keepalive pings went unanswered `maxPingsOutstanding` times: the connection was considered dead and closed.
    case staleConnection
    /// Payload (headers included) larger than the server's `max_payload`.
    case payloadTooLarge(size: Int, limit: Int)
    /// Queued outbound bytes (the write buffer, also what waits during a reconnect) would pass `maxOutboundBytes`.
    case outboundBufferFull(limit: Int)
    /// A subscription's consumer fell behind by more than `maxPendingBytes`; this many messages were dropped.
    case slowConsumer(subject: String, dropped: Int)
    /// A request got no reply in time.
    case timeout(String)
    /// A request went to a subject nobody listens on (status 503).
    case noResponders(String)
    /// TLS could not be set up (configuration, handshake, certificate).
    case tls(String)
    /// JetStream answered with an error object.
    case jetStream(code: Int, errorCode: Int, description: String)
    /// A JetStream reply that does not decode.
    case badResponse(String)
    /// An existing stream's settings differ from what was asked for; `setting` names the first difference.
    case streamConfigConflict(stream: String, setting: String, existing: String, wanted: String)
    /// A pull request ended by the server with status 409 (consumer deleted, leadership change, limits).
    case pullTerminated(String)

    public var description: String {
        switch self {
        case .invalidURL(let url, let reason): return "invalid NATS URL \"\(url)\": \(reason)"
        case .authorizationViolation(let text):
            return "NATS refused the credentials (\(text)); check the token or user/password"
        case .serverError(let text): return "NATS server error: \(text)"
        case .protocolViolation(let e): return "NATS protocol violation: \(e)"
        case .notConnected(let why): return "not connected to NATS: \(why)"
        case .connectionLost: return "the NATS connection was lost"
        case .closed: return "the NATS connection is closed"
        case .staleConnection: return "NATS server stopped answering pings; connection closed"
        case .payloadTooLarge(let size, let limit): return "payload of \(size) bytes exceeds the server's max_payload \(limit)"
        case .outboundBufferFull(let limit): return "NATS outbound buffer full (\(limit) bytes); retry later"
        case .slowConsumer(let subject, let dropped): return "slow consumer on \(subject): \(dropped) messages dropped"
        case .timeout(let what): return "NATS request timed out: \(what)"
        case .noResponders(let subject): return "no responders on \(subject)"
        case .tls(let why): return "NATS TLS: \(why)"
        case .jetStream(let code, let errCode, let desc): return "JetStream error \(code)/\(errCode): \(desc)"
        case .badResponse(let why): return "unexpected JetStream response: \(why)"
        case .streamConfigConflict(let stream, let setting, let existing, let wanted):
            return "stream \(stream) exists with \(setting) = \(existing), but \(wanted) was asked for; "
                + "change the setting or remove the stream"
        case .pullTerminated(let why): return "pull request ended by the server: \(why)"
        }
    }
}
