import EventDaemon
import EventEmitter
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

/// A daemon on temporary paths with a known fixture, and its HTTP API on a real loopback server.
final class APIFixture: @unchecked Sendable {
    let dir: String
    let daemon: GridEventDaemon
    let events: [GridEvent]
    let app: Application<RouterResponder<BasicRequestContext>>

    init() throws {
        dir = NSTemporaryDirectory() + "http-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        var config = DaemonConfig(dataDirectory: dir + "/data")
        config.socketPath = dir + "/s.sock"
        config.metricsIntervalSeconds = 3600
        config.streamKeepaliveSeconds = 0.2
        var logger = Logger(label: "test")
        logger.logLevel = .warning
        daemon = GridEventDaemon(config: config, logger: logger)
        try daemon.start()
        var grid = SampleGrid(seed: 3, agents: 5, nodes: 20, start: GridClock.nowMicros() - 3_600_000_000, span: 3_600_000_000)
        events = grid.events(2000)
        try daemon.store!.append(events.flatMap { $0.records() })
        let html = GridEvent(id: "event-spawn_failed-0000000000aa-1", timestamp: GridClock.nowMicros() - 1000,
                             kind: .spawnFailed(nodeId: "node-x", agentId: "agent-001", error: "<script>alert(1)</script>"))
        try daemon.store!.append(html.records())
        app = Application(router: HTTPAPI.router(daemon.apiContext()!), configuration: .init(address: .hostname("127.0.0.1", port: 0)), logger: logger)
    }

    deinit {
        daemon.shutdown()
        try? FileManager.default.removeItem(atPath: dir)
    }
}

func object(_ response: TestResponse) throws -> [String: Any] {
    try #require(try JSONSerialization.jsonObject(with: Data(buffer: response.body)) as? [String: Any])
}

@Suite("HTTP API over a loopback server", .serialized)
struct HTTPAPITests {
    @Test func routesAnswerWithTheDocumentedShapes() async throws {
        let f = try APIFixture()
        try await f.app.test(.live) { client in
            let recent = try object(try await client.execute(uri: "/api/grid/events/recent?limit=5", method: .get))
            let events = try #require(recent["events"] as? [[String: Any]])
            #expect(events.count == 5)
            let first = events[0]
            #expect(Set(first.keys) == ["id", "event_type", "timestamp", "entities", "fields"])
            #expect((first["timestamp"] as? String)?.hasSuffix("Z") == true)
            #expect((first["timestamp"] as? String)?.count == 27)

            // Structured filter with pagination: every spawn_failed exactly once.
            var seen: [String] = []
            var cursor: String?
            repeat {
                let uri = "/api/events?type=spawn_failed&limit=7" + (cursor.map { "&cursor=\($0)" } ?? "")
                let page = try object(try await client.execute(uri: uri, method: .get))
                seen += (page["events"] as? [[String: Any]] ?? []).compactMap { $0["id"] as? String }
                cursor = page["next_cursor"] as? String
            } while cursor != nil
            let expected = f.events.filter { $0.type == .spawnFailed }.count + 1
            #expect(seen.count == expected)
            #expect(Set(seen).count == expected)

            // One event with its adjacency.
            let crash = try #require(f.events.first { $0.type == .nodeCrashed })
            let one = try object(try await client.execute(uri: "/api/events/\(crash.id)", method: .get))
            #expect((one["event"] as? [String: Any])?["id"] as? String == crash.id)
            let adjacency = try #require(one["adjacency"] as? [[String: Any]])
            #expect(Set(adjacency.compactMap { $0["node"] as? String }) == Set(crash.entities + [GridEvent.timeBucketId(crash.timestamp)]))
            let missing = try await client.execute(uri: "/api/events/event-nope-x-1", method: .get)
            #expect(missing.status == .notFound)
            #expect((try object(missing)["error"] as? [String: Any])?["code"] as? String == "not_found")

            // An entity's timeline.
            let timeline = try object(try await client.execute(uri: "/api/entities/agent-002/events?limit=1000", method: .get))
            #expect((timeline["events"] as? [Any])?.count == f.events.filter { $0.entities.contains("agent-002") }.count)

            // Text search: every word in any string field, any case; a quoted phrase in order; with the other
            // filters and cursors.
            let script = try object(try await client.execute(uri: "/api/events?text=SCRIPT%20alert", method: .get))
            #expect((script["events"] as? [[String: Any]])?.compactMap { $0["id"] as? String } == ["event-spawn_failed-0000000000aa-1"])
            let reversed = try object(try await client.execute(uri: "/api/events?text=%22alert%20script%22", method: .get))
            #expect((reversed["events"] as? [Any])?.count == 0)
            for (text, type) in [("agent", "spawn_failed"), ("data nodes", "spawn_requested")] {
                let q = TextQuery(text)!
                let expectedIds = f.events.filter { e in
                    e.typeName == type && e.entities.contains("agent-002") && q.matches { body in
                        for s in GridText.strings(of: e) { var s = s; s.withUTF8 { body(UnsafeRawBufferPointer($0)) } }
                    }
                }.sorted { $0.timestamp > $1.timestamp }.map(\.id)
                var got: [String] = []
                var after: String?
                repeat {
                    let uri = "/api/events?text=\(text.replacingOccurrences(of: " ", with: "%20"))&type=\(type)&entity=agent-002&limit=3" + (after.map { "&cursor=\($0)" } ?? "")
                    let page = try object(try await client.execute(uri: uri, method: .get))
                    got += (page["events"] as? [[String: Any]] ?? []).compactMap { $0["id"] as? String }
                    after = page["next_cursor"] as? String
                } while after != nil
                #expect(!expectedIds.isEmpty && Set(got) == Set(expectedIds) && got.count == expectedIds.count, "\(text): \(got.count) of \(expectedIds.count): \(got.prefix(5)) vs \(expectedIds.prefix(5))")
            }

            // Traversal and derived agent state: answers checked value by value in HTTPAnswersTests.

            // Stats.
            let stats = try object(try await client.execute(uri: "/api/stats", method: .get))
            #expect(stats["events"] as? Int == f.events.count + 1)
            #expect((stats["types"] as? [String: Int])?["spawn_failed"] == expected)
            // The dashboard's chart (/api/timeline): checked bucket by bucket in HTTPAnswersTests.
            let compaction = try #require(stats["compaction"] as? [String: Any])
            #expect(compaction["compacted_segments"] as? Int == 0)
            #expect((compaction["disk_bytes"] as? Int ?? 0) > 0)
            let retention = try #require(stats["retention"] as? [String: Any])
            #expect(retention["deleted_segments"] as? Int == 0)
            #expect(retention["deleted_events"] as? Int == 0)
            #expect(stats["read_damage"] as? [String] == [])

            // A plain-English question: the interpretation and the answer.
            let asked = try await client.execute(
                uri: "/api/grid/events/query", method: .post, headers: [.contentType: "application/json"],
                body: ByteBuffer(string: #"{"query": "count spawn failures today"}"#))
            #expect(asked.status == .ok)
            let answer = try object(asked)
            let interpretation = try #require(answer["interpretation"] as? [String: Any])
            #expect(interpretation["action"] as? String == "count")
            #expect((interpretation["query"] as? [String: Any])?["types"] as? [String] == ["spawn_failed"])
            #expect((interpretation["sentence"] as? String)?.contains("today") == true)
            let todayStart = GridClock.nowMicros() / 86_400_000_000 * 86_400_000_000
            let todayFailures = f.events.filter { $0.type == .spawnFailed && $0.timestamp >= todayStart }.count + 1
            #expect((answer["result"] as? [String: Any])?["count"] as? Int == todayFailures)

            let page = try await client.execute(uri: "/", method: .get)
            #expect(page.status == .ok)
            #expect(page.headers[.contentType]?.hasPrefix("text/html") == true)
        }
    }

    @Test func badInputGetsJSON4xxNever500() async throws {
        let f = try APIFixture()
        try await f.app.test(.live) { client in
            let cases: [(String, HTTPRequest.Method, String?, HTTPResponse.Status, String)] = [
                ("/api/events?type=bogus", .get, nil, .badRequest, "unknown_type"),
                ("/api/events?since=yesterday", .get, nil, .badRequest, "bad_time"),
                ("/api/events?since=2026-11-29T10:00:00Z&until=2026-11-29T09:00:00Z", .get, nil, .badRequest, "bad_time"),
                ("/api/events?limit=100000", .get, nil, .badRequest, "bad_limit"),
                ("/api/events?limit=abc", .get, nil, .badRequest, "bad_limit"),
                ("/api/events?cursor=forged", .get, nil, .badRequest, "bad_cursor"),
                ("/api/events?order=sideways", .get, nil, .badRequest, "bad_order"),
                ("/api/events?text=%20-%22%22", .get, nil, .badRequest, "bad_text"),
                ("/api/grid/events/recent?limit=0", .get, nil, .badRequest, "bad_limit"),
                ("/api/graph/neighbors", .get, nil, .badRequest, "missing_id"),
                ("/api/graph/neighbors?id=agent-001&depth=10", .get, nil, .badRequest, "bad_depth"),
                ("/api/grid/events/query", .post, "{not json", .badRequest, "malformed_body"),
                ("/api/grid/events/query", .post, #"{"question": "x"}"#, .badRequest, "malformed_body"),
                ("/api/grid/events/query", .post, #"{"query": "tell me a joke"}"#, .badRequest, "not_understood"),
                ("/api/grid/events/query", .post, String(repeating: "x", count: 70_000), .contentTooLarge, "body_too_large"),
                ("/api/nothing", .get, nil, .notFound, "not_found"),
                ("/api/events?entity=has%20space", .get, nil, .badRequest, "bad_entity"),
            ]
            for (uri, method, body, status, code) in cases {
                let r = try await client.execute(uri: uri, method: method, body: body.map { ByteBuffer(string: $0) })
                #expect(r.status == status, "\(uri): \(r.status) \(String(buffer: r.body).prefix(200))")
                let error = try object(r)["error"] as? [String: Any]
                #expect(error?["code"] as? String == code, "\(uri)")
                #expect((error?["message"] as? String)?.isEmpty == false)
            }
            let notUnderstood = try object(try await client.execute(uri: "/api/grid/events/query", method: .post, body: ByteBuffer(string: #"{"query": "tell me a joke"}"#)))
            #expect(((notUnderstood["error"] as? [String: Any])?["suggestions"] as? [String])?.isEmpty == false)
        }
    }

    @Test func htmlInEventFieldsIsEscapedInJSON() async throws {
        let f = try APIFixture()
        try await f.app.test(.live) { client in
            let r = try await client.execute(uri: "/api/events/event-spawn_failed-0000000000aa-1", method: .get)
            let text = String(buffer: r.body)
            #expect(!text.contains("<script>"))
            #expect(((try object(r)["event"] as? [String: Any])?["fields"] as? [String: Any])?["error"] as? String == "<script>alert(1)</script>")
        }
    }

    @Test func liveStreamDeliversAckedEventsWithin100ms() async throws {
        let f = try APIFixture()
        try await f.app.test(.live) { client in
            let port = try #require(client.port)
            let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            defer { close(fd) }
            var addr = sockaddr_in()
            addr.sin_family = sa_family_t(AF_INET)
            addr.sin_port = in_port_t(UInt16(port).bigEndian)
            addr.sin_addr.s_addr = inet_addr("127.0.0.1")
            let ok = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
            #expect(ok == 0)
            let request = "GET /api/events/stream?type=node_crashed HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
            _ = request.withCString { send(fd, $0, strlen($0), 0) }
            var received = ""
            func read(until needle: String, timeout: Double) -> Bool {
                let deadline = Date().addingTimeInterval(timeout)
                var buffer = [UInt8](repeating: 0, count: 65536)
                while Date() < deadline {
                    if received.contains(needle) { return true }
                    var pfd = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
                    if poll(&pfd, 1, 2) > 0 {
                        let n = recv(fd, &buffer, buffer.count, 0)
                        if n <= 0 { return received.contains(needle) }
                        received += String(decoding: buffer[0..<n], as: UTF8.self)
                    }
                }
                return received.contains(needle)
            }
            #expect(read(until: "live stream", timeout: 5), "stream opened: \(received)")
            #expect(received.contains("text/event-stream"))
            var options = EmitterOptions(producerName: "sse-test")
            options.spoolDirectory = f.dir + "/spool"
            options.notice = { _ in }
            let emitter = EventEmitter(storage: f.daemon.config.resolvedSocketPath, options: options)
            let seq = emitter.emit(.nodeCrashed(nodeId: "node-live", agentId: "agent-001", exitCode: nil, signal: 9))
            emitter.emit(.agentHeartbeat(agentId: "agent-001", storageNodeCount: 1))  // filtered out by type
            #expect(emitter.flush(timeout: 10))
            let acked = Date()
            let id = emitter.id(of: .nodeCrashed(nodeId: "node-live", agentId: "agent-001", exitCode: nil, signal: 9), sequence: seq)
            #expect(read(until: id, timeout: 2))
            #expect(Date().timeIntervalSince(acked) < 0.1, "arrived \(Date().timeIntervalSince(acked)) s after the ack")
            #expect(received.contains("event: grid_event"))
            #expect(!received.contains("agent_heartbeat"))
            emitter.close()
        }
    }
}
