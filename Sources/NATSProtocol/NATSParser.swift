/// The NATS client protocol parser: bytes a server sent in, operations out. Pure (no I/O, no clock), so it is unit
/// tested split at every byte and fuzzed (`Fuzz/`, target `nats-parser`).
///
/// Every buffer is bounded: a control line longer than `maxControlLine` and a payload larger than `maxPayload`
/// are errors, so the parser holds at most `max(maxControlLine, maxPayload + header line) +` one appended chunk.
/// After an error the parser is poisoned: the connection must be closed (its byte stream has lost its framing).
public struct NATSParser: Sendable {
    /// Longest control line accepted (NATS servers use 4096).
    public var maxControlLine: Int
    /// Largest MSG/HMSG payload (headers included) accepted; a client sets it from INFO's `max_payload`.
    public var maxPayload: Int

    private var buffer: [UInt8] = []
    private var start = 0
    private var pending: Pending?
    private var failed: NATSProtocolError?

    private struct Pending: Sendable {
        var subject: String
        var sid: UInt64
        var replyTo: String?
        var headerLength: Int?
        var totalLength: Int
        var operation: String
    }

    public init(maxControlLine: Int = 4096, maxPayload: Int = 1 << 20) {
        self.maxControlLine = maxControlLine
        self.maxPayload = maxPayload
    }

    /// Bytes appended but not yet returned as operations.
    public var bufferedBytes: Int { buffer.count - start }

    /// Appends bytes read from the connection.
    public mutating func append<C: Collection>(_ bytes: C) where C.Element == UInt8 {
        if start > 0 && start >= buffer.count / 2 {
            buffer.removeSubrange(0..<start)
            start = 0
        }
        buffer.append(contentsOf: bytes)
    }

    /// The next complete operation, nil when more bytes are needed.
    /// - Throws: `NATSProtocolError` on a framing or limit violation; every later call throws it again.
    public mutating func next() throws(NATSProtocolError) -> NATSServerOp? {
        if let failed { throw failed }
        do {
            return try parseNext()
        } catch {
            failed = error
            throw error
        }
    }

    /// Every complete operation in what has been appended so far.
    public mutating func drain() throws(NATSProtocolError) -> [NATSServerOp] {
        var out: [NATSServerOp] = []
        while let op = try next() { out.append(op) }
        return out
    }

    private mutating func parseNext() throws(NATSProtocolError) -> NATSServerOp? {
        if let p = pending {
            guard buffer.count - start >= p.totalLength + 2 else { return nil }
            let body = buffer[start..<(start + p.totalLength)]
            guard buffer[start + p.totalLength] == 13, buffer[start + p.totalLength + 1] == 10 else {
                throw .missingPayloadTerminator(operation: p.operation)
            }
            var headers: NATSHeaders?
            var payload = body
            if let h = p.headerLength {
                headers = try NATSHeaders.parse(body.prefix(h))
                payload = body.dropFirst(h)
            }
            let message = NATSInboundMessage(
                subject: p.subject, sid: p.sid, replyTo: p.replyTo, headers: headers, payload: Array(payload))
            start += p.totalLength + 2
            pending = nil
            return .msg(message)
        }
        // Find CRLF within the limit.
        let limitEnd = min(buffer.count, start + maxControlLine + 2)
        var end = -1
        var i = start
        while i < limitEnd {
            if buffer[i] == 10 {
                guard i > start, buffer[i - 1] == 13 else {
                    throw .malformedArguments(operation: "?", line: "line ends with LF without CR")
                }
                end = i - 1
                break
            }
            i += 1
        }
        if end < 0 {
            if buffer.count - start > maxControlLine + 1 { throw .controlLineTooLong(limit: maxControlLine) }
            return nil
        }
        let line = buffer[start..<end]
        start = end + 2
        return try parseControl(line)
    }

    private mutating func parseControl(_ line: ArraySlice<UInt8>) throws(NATSProtocolError) -> NATSServerOp? {
        let opEnd = line.firstIndex { $0 == 0x20 || $0 == 0x09 } ?? line.endIndex
        let opName = String(decoding: line[line.startIndex..<opEnd], as: UTF8.self).uppercased()
        let rest = line[opEnd...]
        switch opName {
        case "PING": return .ping
        case "PONG": return .pong
        case "+OK": return .ok
        case "-ERR":
            // Quotes are stripped as bytes, before decoding: a quote next to invalid UTF-8 or a combining mark
            // must not change meaning on a round trip (found by fuzzing).
            var bytes = rest.drop { $0 == 0x20 || $0 == 0x09 }
            if bytes.count >= 2, bytes.first == 0x27, bytes.last == 0x27 { bytes = bytes.dropFirst().dropLast() }
            return .err(String(decoding: bytes, as: UTF8.self))
        case "INFO":
            let json = rest.drop { $0 == 0x20 || $0 == 0x09 }
            guard !json.isEmpty else { throw .malformedArguments(operation: "INFO", line: lineText(line)) }
            return .info(String(decoding: json, as: UTF8.self))
        case "MSG", "HMSG":
            let args = split(rest)
            let withHeaders = opName == "HMSG"
            let counts = withHeaders ? 2 : 1
            guard args.count == 2 + counts || args.count == 3 + counts else {
                throw .malformedArguments(operation: opName, line: lineText(line))
            }
            guard let sid = UInt64(args[1]), let total = decimal(args[args.count - 1]) else {
                throw .malformedArguments(operation: opName, line: lineText(line))
            }
            var headerLength: Int?
            if withHeaders {
                guard let h = decimal(args[args.count - 2]), h <= total, h >= 10 else {
                    throw .malformedArguments(operation: opName, line: lineText(line))
                }
                headerLength = h
            }
            if total > maxPayload { throw .payloadTooLarge(size: total, limit: maxPayload) }
            let reply = args.count == 3 + counts ? args[2] : nil
            pending = Pending(
                subject: args[0], sid: sid, replyTo: reply, headerLength: headerLength, totalLength: total,
                operation: opName)
            return try parseNext()
        default:
            throw .unknownOperation(String(opName.prefix(32)))
        }
    }

    private func split(_ s: ArraySlice<UInt8>) -> [String] {
        var out: [String] = []
        var i = s.startIndex
        while i < s.endIndex {
            while i < s.endIndex, s[i] == 0x20 || s[i] == 0x09 { i += 1 }
            let b = i
            while i < s.endIndex, s[i] != 0x20 && s[i] != 0x09 { i += 1 }
            if b < i { out.append(String(decoding: s[b..<i], as: UTF8.self)) }
        }
        return out
    }

    /// A non-negative decimal of at most 10 digits (payload sizes).
    private func decimal(_ s: String) -> Int? {
        guard !s.isEmpty, s.utf8.count <= 10, s.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }) else { return nil }
        return Int(s)
    }

    private func lineText(_ line: ArraySlice<UInt8>) -> String { String(decoding: line.prefix(200), as: UTF8.self) }
}
