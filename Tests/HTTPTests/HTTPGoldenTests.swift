import EventDaemon
import EventQuery
import EventStore
import Foundation
import GridEvents
import GridFixtures
import Hummingbird
import HummingbirdTesting
import Logging
import NIOCore
import Testing

/// A daemon over a store of fixed events (fixed ids and timestamps), with a fixed clock and fixed counters, so that
/// every JSON answer is the same from run to run.
final class GoldenAPI: @unchecked Sendable {
    static let start: Int64 = 1_764_374_400_000_000  // 2025-11-29T00:00:00Z
    static let now = start + 3_900_000_000  // 01:05, five minutes after the newest event
    let dir: String
    let daemon: GridEventDaemon
    let events: [GridEvent]
    let context: APIContext

    init() throws {
        dir = NSTemporaryDirectory() + "http-golden-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        var grid = SampleGrid(seed: 11, agents: 6, nodes: 24, start: Self.start, span: 3_600_000_000)
        var events = grid.events(1500)
        // Strings that need escaping: markup, quotes, control characters, non-ASCII, U+2028.
        events.append(GridEvent(id: "event-spawn_failed-0000000000aa-1", timestamp: Self.start + 3_000_000_000,
                                kind: .spawnFailed(nodeId: "node-x", agentId: "agent-001", error: "<script>\"a\"\\b</script>\n\t\u{1}é✓\u{2028}")))
        self.events = events
        let store = try EventStore.open(at: dir + "/data")
        try store.append(events.flatMap { $0.records() })
        store.close()
        var config = DaemonConfig(dataDirectory: dir + "/data")
        config.socketPath = dir + "/s.sock"
        config.metricsIntervalSeconds = 3600
        var logger = Logger(label: "test")
        logger.logLevel = .warning
        daemon = GridEventDaemon(config: config, logger: logger)
        try daemon.start()
        var context = try #require(daemon.apiContext())
        context.now = { GoldenAPI.now }
        context.translator = Translator(now: { GoldenAPI.now })
        context.ingest = { (1234, 2.5, 300, 2) }
        context.ownLogs = { (3, 4) }
        context.replicationStats = { (RawJSON(#"{"role":"golden","lag":[1,2]}"#), nil) }
        self.context = context
    }

    deinit {
        daemon.shutdown()
        try? FileManager.default.removeItem(atPath: dir)
    }
}

/// The exact bytes of every JSON answer the daemon builds, on a fixed store, compared with the answers recorded in
/// Golden/http-bodies.txt (written by the hand-built encoders before the routes were split and their answers became
/// `Encodable` types). Record again with `HTTP_GOLDEN_RECORD=1` only when an answer is meant to change.
@Suite("HTTP answers are byte for byte the recorded ones", .serialized)
struct HTTPGoldenTests {
    static let file = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Golden/http-bodies.txt")

    /// The parts of `/api/stats` that depend on the machine (file system blocks, the test process's memory).
    static func normalized(_ body: String) -> String {
        var s = body
        for key in ["resident_bytes", "disk_bytes"] {
            s = s.replacingOccurrences(of: "\"\(key)\":[0-9]+", with: "\"\(key)\":N", options: .regularExpression)
        }
        return s
    }

    /// One answer: the request, its status and content type (and Allow), then the body on one line.
    static func entry(_ label: String, _ r: TestResponse) -> String {
        var text = "### \(label) -> \(r.status.code) \(r.headers[.contentType] ?? "-")"
        if let allow = r.headers[.allow] { text += " allow: \(allow)" }
        return text + "\n" + normalized(String(buffer: r.body)) + "\n"
    }

    @Test func everyJSONAnswerIsTheRecordedOne() async throws {
        let api = try GoldenAPI()
        let crash = try #require(api.events.first { $0.type == .nodeCrashed })
        let failed = try #require(api.events.first { $0.type == .spawnFailed })
        let at = TimeText.format(GoldenAPI.start + 1_800_000_000)
        func ask(_ q: String) -> String { #"{"query": "\#(q)"}"# }
        let requests: [(HTTPRequest.Method, String, String?)] = [
            (.get, "/api/timeline", nil),
            (.get, "/api/timeline?minutes=180&buckets=7", nil),
            (.get, "/api/timeline?minutes=1&buckets=3", nil),
            (.get, "/api/grid/events/recent?limit=3", nil),
            (.get, "/api/events?limit=4", nil),
            (.get, "/api/events?type=spawn_failed&limit=1000", nil),
            (.get, "/api/events?entity=agent-002&limit=2&order=oldest", nil),
            (.get, "/api/events?text=nothing-matches-this", nil),
            (.get, "/api/events/\(crash.id)", nil),
            (.get, "/api/events/\(failed.id)", nil),
            (.get, "/api/events/event-spawn_failed-0000000000aa-1", nil),
            (.get, "/api/events/event-nope-x-1", nil),
            (.get, "/api/events/bad%20id", nil),
            (.get, "/api/entities/agent-002/events?limit=5", nil),
            (.get, "/api/entities/has%20space/events", nil),
            (.get, "/api/graph/neighbors?id=agent-001", nil),
            (.get, "/api/graph/neighbors?id=agent-001&depth=2&limit=30&per_node=5", nil),
            (.get, "/api/graph/neighbors?id=\(crash.id)&depth=1", nil),
            (.get, "/api/graph/neighbors", nil),
            (.get, "/api/graph/neighbors?id=agent-001&depth=10", nil),
            (.get, "/api/grid/agents", nil),
            (.get, "/api/grid/agents?at=\(at)", nil),
            (.get, "/api/grid/agents?at=yesterday", nil),
            (.get, "/api/stats", nil),
            (.post, "/api/grid/events/query", ask("count spawn failures today")),
            (.post, "/api/grid/events/query", ask("show spawn failures today")),
            (.post, "/api/grid/events/query", ask("top 5 agents by failures this week")),
            (.post, "/api/grid/events/query", ask("how many nodes crashed this week")),
            (.post, "/api/grid/events/query", ask("which agents went offline in the last hour")),
            (.post, "/api/grid/events/query", ask("show the events leading to node-7 crash")),
            (.post, "/api/grid/events/query", ask("what's the crash history of node-3")),
            (.post, "/api/grid/events/query", ask("tell me a joke")),
            (.post, "/api/grid/events/query", "{not json"),
            (.post, "/api/grid/events/query", #"{"question": "x"}"#),
            (.get, "/api/nothing", nil),
            (.delete, "/api/stats", nil),
            (.get, "/api/events?limit=abc", nil),
            (.get, "/api/events?cursor=forged", nil),
            (.get, "/api/events?type=bogus", nil),
            (.get, "/api/session", nil),
            (.delete, "/api/session", nil),
            (.post, "/api/session", #"{"token": "x"}"#),
            (.post, "/api/events", "not json\n" + #"{"id": "event-nope-golden-2", "event_type": "nope", "timestamp": "2025-11-29T00:30:00Z"}"#),
            (.post, "/api/events", "not json\n" + #"{"id": "event-nope-golden-2", "event_type": "nope", "timestamp": "2025-11-29T00:30:00Z"}"#),
            (.post, "/api/events", #"{"id": "event-custom-golden-1", "event_type": "custom", "timestamp": "2025-11-29T01:00:00Z", "fields": {"name": "golden", "n": 3, "x": 1.5}}"# + "\nnot json\n"),
            (.post, "/api/events", ""),
        ]
        let app = Application(router: HTTPAPI.router(api.context))
        var text = try await app.test(.router) { client in
            var text = ""
            for (method, uri, body) in requests {
                let r = try await client.execute(uri: uri, method: method, body: body.map { ByteBuffer(string: $0) })
                text += Self.entry("\(method) \(uri)\(body.map { " " + $0 } ?? "")", r)
            }
            return text
        }
        // Signing in (a daemon with a token), and a route without it; the stats of a daemon that neither
        // replicates nor stores its own logs.
        var plain = api.context
        plain.ownLogs = { nil }
        plain.replicationStats = { (nil, nil) }
        let tokenApp = Application(router: HTTPAPI.router(plain, token: "golden-token"))
        text += try await tokenApp.test(.router) { client in
            let signIn = try await client.execute(uri: "/api/session", method: .post, headers: [.contentType: "application/json"],
                                                  body: ByteBuffer(string: #"{"token": "golden-token"}"#))
            return Self.entry("POST /api/session (token)", signIn)
                + Self.entry("GET /api/stats (no token)", try await client.execute(uri: "/api/stats", method: .get))
                + Self.entry("GET /api/session (bearer)", try await client.execute(uri: "/api/session", method: .get,
                                                                                   headers: [.authorization: "Bearer golden-token"]))
                + Self.entry("GET /api/stats (bearer)", try await client.execute(uri: "/api/stats", method: .get,
                                                                                 headers: [.authorization: "Bearer golden-token"]))
        }
        if ProcessInfo.processInfo.environment["HTTP_GOLDEN_RECORD"] == "1" {
            try FileManager.default.createDirectory(at: Self.file.deletingLastPathComponent(), withIntermediateDirectories: true)
            try text.write(to: Self.file, atomically: true, encoding: .utf8)
            return
        }
        let recorded = try String(contentsOf: Self.file, encoding: .utf8)
        let got = text.split(separator: "\n", omittingEmptySubsequences: false)
        let want = recorded.split(separator: "\n", omittingEmptySubsequences: false)
        #expect(got.count == want.count, "\(got.count) lines, recorded \(want.count)")
        for (i, (g, w)) in zip(got, want).enumerated() where g != w {
            Issue.record("line \(i + 1) differs:\n got:  \(g.prefix(600))\n want: \(w.prefix(600))")
        }
    }
}
