/// A violation of the NATS client protocol found while parsing what a server sent, or while encoding what a client
/// is about to send. Each case carries what an operator needs to find the cause.
public enum NATSProtocolError: Error, Equatable, Sendable, CustomStringConvertible {
    /// A control line (everything up to CRLF) longer than the limit: the peer is not a NATS server or is broken.
    case controlLineTooLong(limit: Int)
    /// An operation name this parser does not know.
    case unknownOperation(String)
    /// An operation whose arguments do not parse (count, numbers, sizes).
    case malformedArguments(operation: String, line: String)
    /// A message payload larger than the limit (the server's `max_payload`, or the client's own bound).
    case payloadTooLarge(size: Int, limit: Int)
    /// A message payload not followed by CRLF.
    case missingPayloadTerminator(operation: String)
    /// A header block (HMSG/HPUB) that does not start with `NATS/1.0` or has a malformed line.
    case malformedHeaders(String)
    /// A subject, reply subject, queue group or header that cannot be sent.
    case invalidSubject(String)
    case invalidHeader(String)

    public var description: String {
        switch self {
        case .controlLineTooLong(let limit): return "NATS control line longer than \(limit) bytes"
        case .unknownOperation(let op): return "unknown NATS operation \"\(op)\""
        case .malformedArguments(let op, let line): return "malformed \(op) arguments: \"\(line)\""
        case .payloadTooLarge(let size, let limit): return "NATS payload of \(size) bytes exceeds the limit of \(limit)"
        case .missingPayloadTerminator(let op): return "\(op) payload not followed by CRLF"
        case .malformedHeaders(let why): return "malformed NATS headers: \(why)"
        case .invalidSubject(let why): return "invalid NATS subject: \(why)"
        case .invalidHeader(let why): return "invalid NATS header: \(why)"
        }
    }
}
