/// A message as a server delivers it (MSG or HMSG): the subject it was published to, the subscription it matched,
/// the reply subject the publisher asked for, its headers (HMSG only) and payload.
public struct NATSInboundMessage: Equatable, Sendable {
    public var subject: String
    public var sid: UInt64
    public var replyTo: String?
    public var headers: NATSHeaders?
    public var payload: [UInt8]

    public init(subject: String, sid: UInt64, replyTo: String? = nil, headers: NATSHeaders? = nil, payload: [UInt8]) {
        self.subject = subject
        self.sid = sid
        self.replyTo = replyTo
        self.headers = headers
        self.payload = payload
    }
}

/// One operation a NATS server sends.
public enum NATSServerOp: Equatable, Sendable {
    /// `INFO {json}`: the JSON text, decoded by the client.
    case info(String)
    case msg(NATSInboundMessage)
    case ping
    case pong
    case ok
    /// `-ERR 'text'`: the text without its quotes.
    case err(String)

    /// The wire form a server would send (used by tests, the fuzz harness and test servers).
    public func encoded() -> [UInt8] {
        switch self {
        case .info(let json): return Array("INFO \(json)\r\n".utf8)
        case .ping: return Array("PING\r\n".utf8)
        case .pong: return Array("PONG\r\n".utf8)
        case .ok: return Array("+OK\r\n".utf8)
        case .err(let text): return Array("-ERR '\(text)'\r\n".utf8)
        case .msg(let m):
            let reply = m.replyTo.map { " " + $0 } ?? ""
            if let headers = m.headers {
                let h = headers.encoded()
                var out = Array("HMSG \(m.subject) \(m.sid)\(reply) \(h.count) \(h.count + m.payload.count)\r\n".utf8)
                out += h
                out += m.payload
                out += [13, 10]
                return out
            }
            var out = Array("MSG \(m.subject) \(m.sid)\(reply) \(m.payload.count)\r\n".utf8)
            out += m.payload
            out += [13, 10]
            return out
        }
    }
}
