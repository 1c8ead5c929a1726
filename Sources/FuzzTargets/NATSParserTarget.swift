import NATSProtocol

extension FuzzTargets {
    /// `NATSParser` (NATSProtocol): the NATS client protocol as a server sends it (INFO, MSG, HMSG with headers,
    /// PING, PONG, +OK, -ERR). Byte 0: chunk size the stream is fed in (1-256); byte 1: the control-line limit
    /// (64-4159); the rest is the stream. Invariants: feeding in chunks gives the same operations and the same
    /// error as feeding it whole; every operation re-encodes to bytes that parse to the same operation; payloads
    /// respect the limit; nothing is decoded after an error.
    public static let natsParser = FuzzTarget(
        name: "nats-parser", maxLength: 8192,
        run: { bytes in
            var r = InputReader(bytes)
            let chunk = Int(r.u8()) + 1
            let maxLine = 64 + Int(r.u8()) * 16
            let stream = r.rest()
            let whole = parseAll(stream, chunk: stream.count + 1, maxLine: maxLine)
            let chunked = parseAll(stream, chunk: chunk, maxLine: maxLine)
            check(whole.ops == chunked.ops, "chunked parse differs")
            check(whole.error == chunked.error, "chunked error differs: \(String(describing: whole.error)) vs \(String(describing: chunked.error))")
            var again: [UInt8] = []
            for op in whole.ops { again += op.encoded() }
            // Re-encoding normalises headers (`A:b` becomes `A: b`), so the second parse allows larger payloads.
            let reparsed = parseAll(again, chunk: again.count + 1, maxLine: Int.max / 4, maxPayload: 1 << 20)
            check(reparsed.error == nil, "re-encoded operations fail to parse: \(String(describing: reparsed.error))")
            check(reparsed.ops == whole.ops, "re-encoded operations parse differently")
        },
        seeds: {
            let stream = Array(
                ("INFO {\"server_id\":\"X\",\"max_payload\":1048576,\"headers\":true,\"connect_urls\":[\"127.0.0.1:4223\"]}\r\n"
                    + "PING\r\nPONG\r\n+OK\r\n-ERR 'Authorization Violation'\r\nMSG a.b 7 5\r\nhello\r\n"
                    + "MSG a.b 9 _INBOX.x.1 0\r\n\r\n"
                    + "HMSG $JS.x 3 $JS.ACK.S.C.1.2.3.4.5 38 41\r\nNATS/1.0\r\nNats-Msg-Id: h1-7\r\nA:  b\r\n\r\nxyz\r\n"
                    + "HMSG _INBOX.y.2 4 28 28\r\nNATS/1.0 404 No Messages\r\n\r\n\r\n").utf8)
            return [
                [0, 255] + stream,
                [0, 0] + stream,
                [6, 255] + Array("MSG a 1 3\r\nab".utf8),
                [255, 3] + Array("HMSG a 1 12 14\r\nNATS/1.0\r\n\r\nab\r\nPING\r\n".utf8),
                [1, 255] + Array("HMSG a 1 30 30\r\nNATS/1.0 409 Consumer Deleted\r\n\r\n\r\n".utf8),
                [2, 0] + [UInt8](repeating: 0x41, count: 200),
            ]
        })

    static func parseAll(_ stream: [UInt8], chunk: Int, maxLine: Int, maxPayload: Int = 4096)
        -> (ops: [NATSServerOp], error: NATSProtocolError?)
    {
        var parser = NATSParser(maxControlLine: maxLine, maxPayload: maxPayload)
        var ops: [NATSServerOp] = []
        var i = 0
        while i < stream.count {
            let end = min(stream.count, i + max(1, chunk))
            parser.append(stream[i..<end])
            i = end
            do {
                while let op = try parser.next() {
                    if case .msg(let m) = op {
                        check(m.payload.count <= maxPayload, "payload past the limit")
                    }
                    ops.append(op)
                }
            } catch {
                // Poisoned: every later call throws the same error.
                do { _ = try parser.next() } catch let again { check(again == error, "a poisoned parser changed its error") }
                return (ops, error)
            }
            // What is left is one incomplete operation: a control line within its limit or a payload within its.
            check(parser.bufferedBytes <= max(maxLine + 1, maxPayload + 1), "parser buffered \(parser.bufferedBytes) bytes")
        }
        return (ops, nil)
    }
}
