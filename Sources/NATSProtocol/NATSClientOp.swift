/// Encodes what a client sends: CONNECT, PUB, HPUB, SUB, UNSUB, PING, PONG. Subjects and headers are checked first,
/// so nothing that could break the framing reaches the wire.
public enum NATSClientOp {
    public static let ping: [UInt8] = Array("PING\r\n".utf8)
    public static let pong: [UInt8] = Array("PONG\r\n".utf8)

    /// `CONNECT {json}`.
    public static func connect(json: String) -> [UInt8] { Array("CONNECT \(json)\r\n".utf8) }

    /// PUB, or HPUB when `headers` is given. Appends to `out`.
    /// - Throws: `NATSProtocolError.invalidSubject` / `.invalidHeader`.
    public static func publish(
        subject: String, replyTo: String?, headers: NATSHeaders?, payload: some Collection<UInt8>,
        into out: inout [UInt8]
    ) throws(NATSProtocolError) {
        try NATSSubject.validate(subject, wildcards: false)
        if let replyTo { try NATSSubject.validate(replyTo, wildcards: false) }
        let reply = replyTo.map { " " + $0 } ?? ""
        if let headers {
            try headers.validate()
            let h = headers.encoded()
            out += Array("HPUB \(subject)\(reply) \(h.count) \(h.count + payload.count)\r\n".utf8)
            out += h
        } else {
            out += Array("PUB \(subject)\(reply) \(payload.count)\r\n".utf8)
        }
        out += payload
        out += [13, 10]
    }

    /// `SUB <subject> [queue] <sid>`.
    public static func subscribe(subject: String, queue: String?, sid: UInt64) throws(NATSProtocolError) -> [UInt8] {
        try NATSSubject.validate(subject, wildcards: true)
        if let queue {
            guard !queue.isEmpty, !queue.utf8.contains(where: { $0 <= 0x20 || $0 == 0x7F }) else {
                throw .invalidSubject("queue group \"\(queue)\" is empty or holds whitespace")
            }
            return Array("SUB \(subject) \(queue) \(sid)\r\n".utf8)
        }
        return Array("SUB \(subject) \(sid)\r\n".utf8)
    }

    /// `UNSUB <sid> [max]`.
    public static func unsubscribe(sid: UInt64, after max: Int? = nil) -> [UInt8] {
        if let max { return Array("UNSUB \(sid) \(max)\r\n".utf8) }
        return Array("UNSUB \(sid)\r\n".utf8)
    }
}

/// Subject rules: 1-1024 bytes, no whitespace or control bytes, dot-separated non-empty tokens; `*` and `>` only
/// as whole tokens of a subscription, `>` only last.
public enum NATSSubject {
    public static func validate(_ subject: String, wildcards: Bool) throws(NATSProtocolError) {
        let bytes = Array(subject.utf8)
        guard !bytes.isEmpty, bytes.count <= 1024 else { throw .invalidSubject("\"\(subject.prefix(64))\" must be 1-1024 bytes") }
        if bytes.contains(where: { $0 <= 0x20 || $0 == 0x7F }) {
            throw .invalidSubject("\"\(subject.prefix(64))\" holds whitespace or a control byte")
        }
        let tokens = bytes.split(separator: UInt8(ascii: "."), omittingEmptySubsequences: false)
        for (i, t) in tokens.enumerated() {
            if t.isEmpty { throw .invalidSubject("\"\(subject.prefix(64))\" has an empty token") }
            let isWild = t.count == 1 && (t.first == UInt8(ascii: "*") || t.first == UInt8(ascii: ">"))
            if isWild {
                if !wildcards { throw .invalidSubject("\"\(subject.prefix(64))\" holds a wildcard; publish to a concrete subject") }
                if t.first == UInt8(ascii: ">") && i != tokens.count - 1 {
                    throw .invalidSubject("\"\(subject.prefix(64))\": `>` must be the last token")
                }
            }
        }
    }

    /// True when `subject` (concrete) matches `pattern` (may hold `*` and `>`).
    public static func matches(_ subject: String, pattern: String) -> Bool {
        let s = subject.split(separator: ".", omittingEmptySubsequences: false)
        let p = pattern.split(separator: ".", omittingEmptySubsequences: false)
        var i = 0
        while i < p.count {
            if p[i] == ">" { return s.count > i }
            guard i < s.count else { return false }
            if p[i] != "*" && p[i] != s[i] { return false }
            i += 1
        }
        return s.count == p.count
    }
}
