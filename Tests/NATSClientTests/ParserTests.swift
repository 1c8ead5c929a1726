import NATSClient
import NATSProtocol
import Testing

/// The pure parser: every operation, split at every byte, headers, limits and bad input.
@Suite struct ParserTests {
    static let stream: [UInt8] = {
        var s: [UInt8] = []
        s += Array("INFO {\"server_id\":\"X\",\"max_payload\":1048576,\"headers\":true}\r\n".utf8)
        s += Array("PING\r\nPONG\r\n+OK\r\n-ERR 'Authorization Violation'\r\n".utf8)
        s += Array("MSG a.b 7 5\r\nhello\r\n".utf8)
        s += Array("MSG a.b\t9 _INBOX.x.1 0\r\n\r\n".utf8)
        s += Array("HMSG $JS.x 3 $JS.ACK.S.C.1.2.3.4.5 38 41\r\nNATS/1.0\r\nNats-Msg-Id: h1-7\r\nA:  b\r\n\r\nxyz\r\n".utf8)
        s += Array("HMSG _INBOX.y.2 4 28 28\r\nNATS/1.0 404 No Messages\r\n\r\n\r\n".utf8)
        s += Array("msg lower 1 2\r\n\r\n\r\n".utf8)
        return s
    }()

    static let expected: [NATSServerOp] = [
        .info("{\"server_id\":\"X\",\"max_payload\":1048576,\"headers\":true}"),
        .ping, .pong, .ok, .err("Authorization Violation"),
        .msg(NATSInboundMessage(subject: "a.b", sid: 7, payload: Array("hello".utf8))),
        .msg(NATSInboundMessage(subject: "a.b", sid: 9, replyTo: "_INBOX.x.1", payload: [])),
        .msg(NATSInboundMessage(
            subject: "$JS.x", sid: 3, replyTo: "$JS.ACK.S.C.1.2.3.4.5",
            headers: NATSHeaders([("Nats-Msg-Id", "h1-7"), ("A", "b")]), payload: Array("xyz".utf8))),
        .msg(NATSInboundMessage(
            subject: "_INBOX.y.2", sid: 4, headers: NATSHeaders([], status: 404, statusDescription: "No Messages"),
            payload: [])),
        .msg(NATSInboundMessage(subject: "lower", sid: 1, payload: Array("\r\n".utf8))),
    ]

    @Test func wholeStream() throws {
        var p = NATSParser()
        p.append(Self.stream)
        #expect(try p.drain() == Self.expected)
        #expect(p.bufferedBytes == 0)
    }

    @Test func splitAtEveryByte() throws {
        for cut in 0...Self.stream.count {
            var p = NATSParser()
            var ops: [NATSServerOp] = []
            p.append(Self.stream[..<cut])
            ops += try p.drain()
            p.append(Self.stream[cut...])
            ops += try p.drain()
            #expect(ops == Self.expected, "split at \(cut)")
        }
        // One byte at a time.
        var p = NATSParser()
        var ops: [NATSServerOp] = []
        for b in Self.stream {
            p.append([b])
            ops += try p.drain()
        }
        #expect(ops == Self.expected)
    }

    @Test func reencodedOperationsParseTheSame() throws {
        var bytes: [UInt8] = []
        for op in Self.expected { bytes += op.encoded() }
        var p = NATSParser()
        p.append(bytes)
        #expect(try p.drain() == Self.expected)
    }

    @Test func headersHelpers() throws {
        let h = try NATSHeaders.parse(Array("NATS/1.0 503\r\nX: 1\r\nx: 2\r\n\r\n".utf8)[...])
        #expect(h.status == 503)
        #expect(h.statusDescription == nil)
        #expect(h["X"] == "1")
        #expect(h.values("x") == ["1", "2"])
        var m = NATSHeaders()
        m["Nats-Msg-Id"] = "a"
        m["nats-msg-id"] = "b"
        #expect(m.values("Nats-Msg-Id") == ["b"])
        #expect(throws: NATSProtocolError.self) { try NATSHeaders([("Bad Name", "v")]).validate() }
        #expect(throws: NATSProtocolError.self) { try NATSHeaders([("N", "v\r\nInjected: 1")]).validate() }
    }

    @Test func badInputIsAnErrorAndPoisonsTheParser() {
        let bad: [(String, String)] = [
            ("FOO bar\r\n", "unknown op"),
            ("MSG a\r\n", "too few args"),
            ("MSG a b 1\r\nx\r\n", "sid not a number"),
            ("MSG a 1 -1\r\n", "negative size"),
            ("MSG a 1 3\r\nabcde\r\n", "payload not followed by CRLF"),
            ("HMSG a 1 5 3\r\nabc\r\n", "header size larger than total"),
            ("HMSG a 1 12 14\r\nNATS/2.0\r\n\r\nab\r\n", "wrong header version"),
            ("HMSG a 1 16 16\r\nNATS/1.0\r\nAB\r\n\r\n\r\n", "header line without colon"),
            ("PING\n", "LF without CR"),
            ("INFO\r\n", "INFO without JSON"),
            ("MSG a 1 2 3 4\r\n", "too many args"),
            // Found by fuzzing: a status with a leading zero parsed as 44 and re-encoded as `NATS/1.0 44`.
            ("HMSG a 1 16 16\r\nNATS/1.0 044\r\n\r\n\r\n", "status with a leading zero"),
        ]
        for (text, why) in bad {
            var p = NATSParser()
            p.append(Array(text.utf8))
            #expect(throws: NATSProtocolError.self, "\(why)") { try p.drain() }
            p.append(Array("PING\r\n".utf8))
            #expect(throws: NATSProtocolError.self, "poisoned after \(why)") { try p.next() }
        }
    }

    @Test func limits() {
        var p = NATSParser(maxControlLine: 64, maxPayload: 100)
        p.append([UInt8](repeating: UInt8(ascii: "A"), count: 70))
        #expect(throws: NATSProtocolError.controlLineTooLong(limit: 64)) { try p.next() }
        var q = NATSParser(maxControlLine: 64, maxPayload: 100)
        q.append(Array("MSG a 1 101\r\n".utf8))
        #expect(throws: NATSProtocolError.payloadTooLarge(size: 101, limit: 100)) { try q.next() }
        // A long line arriving in pieces is refused as soon as it passes the limit, not buffered forever.
        var r = NATSParser(maxControlLine: 64, maxPayload: 100)
        for _ in 0..<10 { r.append([UInt8](repeating: 0x41, count: 10)) }
        #expect(throws: NATSProtocolError.self) { try r.drain() }
    }

    @Test func clientEncoding() throws {
        var out: [UInt8] = []
        try NATSClientOp.publish(subject: "a.b", replyTo: "r", headers: nil, payload: Array("hi".utf8), into: &out)
        #expect(String(decoding: out, as: UTF8.self) == "PUB a.b r 2\r\nhi\r\n")
        out = []
        try NATSClientOp.publish(
            subject: "a", replyTo: nil, headers: NATSHeaders([("Nats-Msg-Id", "1")]), payload: Array("x".utf8), into: &out)
        #expect(String(decoding: out, as: UTF8.self) == "HPUB a 28 29\r\nNATS/1.0\r\nNats-Msg-Id: 1\r\n\r\nx\r\n")
        #expect(String(decoding: try NATSClientOp.subscribe(subject: "a.*.>", queue: "q", sid: 4), as: UTF8.self) == "SUB a.*.> q 4\r\n")
        for bad in ["", "a b", "a..b", ".a", "a.", "a\r\nPUB x 1", "a.>.b"] {
            #expect(throws: NATSProtocolError.self, "\(bad)") { try NATSClientOp.subscribe(subject: bad, queue: nil, sid: 1) }
        }
        #expect(throws: NATSProtocolError.self) {
            var o: [UInt8] = []
            try NATSClientOp.publish(subject: "a.*", replyTo: nil, headers: nil, payload: [UInt8](), into: &o)
        }
        #expect(NATSSubject.matches("grid.events.h1", pattern: "grid.events.>"))
        #expect(NATSSubject.matches("grid.events.h1", pattern: "grid.*.h1"))
        #expect(!NATSSubject.matches("grid.events", pattern: "grid.events.>"))
        #expect(!NATSSubject.matches("grid.other.h1", pattern: "grid.events.*"))
    }

    @Test func ackSubjectMetadata() {
        let v1 = JetStreamMetadata(ackSubject: "$JS.ACK.GRID.agg-h1.2.17.9.1764000000123456789.42")
        #expect(v1?.stream == "GRID")
        #expect(v1?.consumer == "agg-h1")
        #expect(v1?.delivered == 2)
        #expect(v1?.streamSequence == 17)
        #expect(v1?.consumerSequence == 9)
        #expect(v1?.timestampNanos == 1_764_000_000_123_456_789)
        #expect(v1?.pending == 42)
        let v2 = JetStreamMetadata(ackSubject: "$JS.ACK.hub.ACCHASH.GRID.c.1.5.6.7.8.rand")
        #expect(v2?.domain == "hub")
        #expect(v2?.stream == "GRID")
        #expect(v2?.streamSequence == 5)
        #expect(v2?.pending == 8)
        #expect(JetStreamMetadata(ackSubject: "_INBOX.abc") == nil)
        #expect(JetStreamMetadata(ackSubject: "$JS.ACK.S.C.x.1.2.3.4") == nil)
    }

    @Test func serverURLs() throws {
        let a = try NATSServerAddress(parsing: "nats://u:p%40ss@127.0.0.1:4333")
        #expect(a.host == "127.0.0.1" && a.port == 4333 && a.user == "u" && a.password == "p@ss" && !a.tls)
        let b = try NATSServerAddress(parsing: "tls://tok@example.org")
        #expect(b.tls && b.token == "tok" && b.port == 4222)
        let c = try NATSServerAddress(parsing: "[::1]:5000")
        #expect(c.host == "::1" && c.port == 5000)
        let list = try NATSServerAddress.parseList("nats://a:1, nats://b:2,c")
        #expect(list.map(\.endpoint) == ["a:1", "b:2", "c:4222"])
        for bad in ["", "http://x", "nats://:4222", "nats://h:0", "nats://h:99999", "nats://h:x", "nats://h/path", "nats://h o"] {
            #expect(throws: NATSError.self, "\(bad)") { try NATSServerAddress(parsing: bad) }
        }
        #expect(a.description == "nats://127.0.0.1:4333", "credentials never appear in logs")
    }
}
