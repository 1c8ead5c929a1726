import EventEmitter
import Foundation
import GridEvents
import GridEventsLogging
import Logging
import Testing

/// Captures what the handler hands its sink.
final class CaptureSink: GridEventsLogSink, @unchecked Sendable {
    private let lock = NSLock()
    private var items: [(LogEntry, Int64)] = []
    func emitLog(_ entry: LogEntry, timestamp: Int64) { lock.withLock { items.append((entry, timestamp)) } }
    var entries: [LogEntry] { lock.withLock { items.map(\.0) } }
}

func emitterOptions(_ dir: TempDir, _ name: String) -> EmitterOptions {
    var o = EmitterOptions(producerName: name)
    o.spoolDirectory = dir.file("spool")
    o.notice = { _ in }
    return o
}

@Suite("swift-log backend: log records as events", .serialized)
struct LogHandlerTests {
    @Test func recordsAtOrAboveTheLevelBecomeEventsAboutTheirEntities() throws {
        let daemon = try DaemonUnderTest("logh")
        let emitter = EventEmitter(storage: daemon.socket, options: emitterOptions(daemon.dir, "log-handler-test"))
        defer { emitter.close(timeout: 5) }
        var logger = Logger(label: "payments") { GridEventsLogHandler(label: $0, emitter: emitter, eventLevel: .info) }
        logger[metadataKey: "request-id"] = "r-1"
        let infoLine = #line + 1
        logger.info("charging for node-7", metadata: ["node_id": "node-7", "attempt": .stringConvertible(3)])
        logger.debug("below the level: not an event", metadata: ["node_id": "node-7"])
        logger.error("card declined", metadata: ["agent_id": "agent-001", "ratio": .stringConvertible(0.5), "ok": .stringConvertible(false)])
        #expect(emitter.flush(timeout: 10))

        let node = try daemon.events("entity=node-7")
        #expect(node.count == 1, "one record above the level mentions node-7: \(node)")
        let e = try #require(node.first)
        #expect(e["event_type"] as? String == "log")
        #expect(e["entities"] as? [String] == ["node-7"])
        let f = try #require(e["fields"] as? [String: Any])
        #expect(f["level"] as? String == "info")
        #expect(f["label"] as? String == "payments")
        #expect(f["message"] as? String == "charging for node-7")
        #expect(f["line"] as? Int == infoLine)
        #expect((f["file"] as? String)?.hasSuffix("LogHandlerTests.swift") == true)
        #expect(f["source"] as? String == "InteropTests")
        #expect(f["request_id"] as? String == "r-1", "the logger's own metadata, key made a field name")
        #expect(f["attempt"] as? Int == 3, "an Int given as such stays a number")
        #expect(f["node_id"] as? String == "node-7")

        let agent = try daemon.events("entity=agent-001")
        #expect(agent.count == 1)
        let af = try #require(agent.first?["fields"] as? [String: Any])
        #expect(af["level"] as? String == "error")
        #expect(af["ratio"] as? Double == 0.5)
        #expect(af["ok"] as? Bool == false)
        #expect(try daemon.events("type=log").count == 2, "the debug record was not recorded")

        // "what happened to node-7" includes the service's own record about it.
        let answer = try http("POST", daemon.base + "/api/grid/events/query", body: Data(#"{"query":"what happened to node-7"}"#.utf8))
        #expect(answer.status == 200)
        #expect(answer.text.contains("charging for node-7"))
    }

    @Test func metadataBecomesFieldsAndEntitiesByTheDocumentedRules() throws {
        let sink = CaptureSink()
        let provider = Logger.MetadataProvider { ["trace.id": "abc"] }
        var logger = Logger(label: "svc") {
            GridEventsLogHandler(label: $0, sink: sink, eventLevel: .notice, entityKeys: ["host"], metadataProvider: provider)
        }
        logger.logLevel = .trace  // a Logger's level does not lower the event level
        logger.info("not recorded")
        var many: Logger.Metadata = [:]
        for i in 0..<70 { many[String(format: "k%02d", i)] = "\(i)" }
        logger.notice("many", metadata: many)
        let long = String(repeating: "é", count: 3000)  // 6000 bytes
        logger.warning(
            "\(long)",
            metadata: ["Host": "web-7", "node_id": "not an id!", "level": "x", "a.b": "1", "a_b": "2", "list": ["x", "y"], "9lives": "z"])
        struct Oops: Error {}
        logger.critical("failed", error: Oops())

        let entries = sink.entries
        #expect(entries.count == 3)
        #expect(entries[0].metadata.count == 64, "past 64 metadata fields the rest are left out")
        #expect(entries[0].metadata["k00"] == .string("0") && entries[0].metadata["k69"] == nil)
        let w = entries[1]
        #expect(w.message.utf8.count <= 4096 && w.message.utf8.count >= 4094, "a long message is cut at 4096 bytes")
        #expect(w.message.unicodeScalars.allSatisfy { $0 == "é" }, "never inside a character")
        #expect(w.metadata["host"] == .string("web-7"))
        #expect(w.entities == ["web-7"], "a configured entity key; node_id's value is not a valid id, so no entity")
        #expect(w.metadata["m_level"] == .string("x"), "a fixed field's name is not taken by metadata")
        #expect(w.metadata["a_b"] == .string("2") || w.metadata["a_b"] == .string("1"))
        #expect(w.metadata["list"] == .string(#"["x", "y"]"#), "an array as its description")
        #expect(w.metadata["m_9lives"] == .string("z"))
        #expect(w.metadata["trace_id"] == .string("abc"), "the metadata provider's metadata")
        #expect(entries[2].metadata["error"] == .string("Oops()"))
        #expect(entries[2].level == "critical")
        for e in entries { try GridEvent(id: "event-log-000000000001-1", timestamp: 1, kind: .log(e)).validate() }
    }

    @Test func loggingNeverWaitsForAnAbsentDaemon() throws {
        let dir = TempDir("lognb")
        let emitter = EventEmitter(storage: dir.file("nobody.sock"), options: emitterOptions(dir, "log-no-daemon"))
        defer { emitter.close(timeout: 0) }
        let logger = Logger(label: "busy") { GridEventsLogHandler(label: $0, emitter: emitter) }
        let start = Date()
        for i in 0..<20_000 { logger.info("record \(i)", metadata: ["node_id": "node-1"]) }
        let seconds = Date().timeIntervalSince(start)
        #expect(emitter.stats.emitted == 20_000)
        #expect(seconds < 10, "20,000 records took \(seconds) s with no daemon: the caller waited")
    }

    @Test func daemonsRecordTheirOwnLogsWithoutFeedingOnThem() throws {
        let daemon = try DaemonUnderTest("logown", extra: ["--log-events", "debug", "--log-level", "debug"])
        // Traffic that makes the daemon log (connections at debug and info), then quiet.
        let emitter = EventEmitter(storage: daemon.socket, options: emitterOptions(daemon.dir, "log-own-traffic"))
        for i in 0..<200 { _ = emitter.emit(.agentHeartbeat(agentId: "agent-00\(i % 3)", storageNodeCount: i)) }
        #expect(emitter.flush(timeout: 10))
        emitter.close(timeout: 5)
        // grid-master with --log-events sends its records through its emitter.
        let masterPort = freePort()
        let master = try ChildProcess(productPath("grid-master"), ["--listen", "127.0.0.1:\(masterPort)", "--log-events", "info"],
                                      log: daemon.dir.file("master.log"),
                                      environment: ["EVENT_STORAGE": daemon.socket, "EVENT_SPOOL_DIR": daemon.dir.file("spool")])
        let deadline = Date().addingTimeInterval(20)
        var masterLogs: [[String: Any]] = []
        while Date() < deadline {
            masterLogs = try daemon.events("type=log").filter { ($0["fields"] as? [String: Any])?["label"] as? String == "grid-master" }
            if !masterLogs.isEmpty { break }
            usleep(100_000)
        }
        #expect(!masterLogs.isEmpty, "grid-master's startup record arrives as a log event: \(master.log)")
        master.kill(SIGTERM)

        // grid-agent with --log-events: its records (here: it cannot reach a master) are about the agent.
        let closed = freePort()
        let config = """
            agent_id = "agent-logs"
            master = "http://127.0.0.1:\(closed)"
            listen = "127.0.0.1:\(freePort())"
            max_storage_nodes = 1
            node_binary = "\(productPath("grid-eventd"))"
            data_root = "\(daemon.dir.file("nodes"))"
            port_range = "\(closed)-\(closed)"
            heartbeat_interval = 0.3
            """
        FileManager.default.createFile(atPath: daemon.dir.file("agent.toml"), contents: Data(config.utf8))
        let agent = try ChildProcess(productPath("grid-agent"), ["--config", daemon.dir.file("agent.toml"), "--log-events", "info"],
                                     log: daemon.dir.file("agent.log"),
                                     environment: ["EVENT_STORAGE": daemon.socket, "EVENT_SPOOL_DIR": daemon.dir.file("agent-spool")])
        var agentLogs: [[String: Any]] = []
        let agentDeadline = Date().addingTimeInterval(20)
        while Date() < agentDeadline {
            agentLogs = try daemon.events("type=log&entity=agent-logs")
            if !agentLogs.isEmpty { break }
            usleep(100_000)
        }
        agent.kill(SIGTERM)
        #expect(!agentLogs.isEmpty, "grid-agent's records arrive as log events about agent-logs: \(agent.log)")
        #expect(agentLogs.contains { ($0["fields"] as? [String: Any])?["label"] as? String == "grid-agent agent-logs" })
        #expect(agentLogs.allSatisfy { ($0["entities"] as? [String])?.contains("agent-logs") == true })

        let own = { try daemon.events("type=log").filter { ($0["fields"] as? [String: Any])?["label"] as? String == "grid-eventd" } }
        usleep(500_000)
        let first = try own()
        #expect(!first.isEmpty, "grid-eventd's own records are stored")
        #expect(first.contains { ($0["fields"] as? [String: Any])?["message"].map { "\($0)" }?.contains("listening") == true })
        // Quiet now: reading events and scraping make no new records, and nothing feeds on itself.
        sleep(2)
        let second = try own()
        #expect(second.count == first.count, "own log events grew from \(first.count) to \(second.count) with no input")
        // What was not stored is counted: at least the records logged while the store opened (before the writer).
        let ownLogs = try #require(try http("GET", daemon.base + "/api/stats").json()["own_logs"] as? [String: Any])
        #expect((ownLogs["dropped"] as? Int ?? 0) >= 1, "\(ownLogs)")
        #expect(ownLogs["suppressed"] as? Int != nil, "\(ownLogs)")
        let m = try ParsedMetrics(try http("GET", daemon.base + "/metrics").text)
        #expect((m.value("grid_eventd_own_log_records_not_stored_total", ["reason": "dropped"]) ?? 0) >= 1)
        #expect(m.value("grid_eventd_own_log_records_not_stored_total", ["reason": "suppressed"]) != nil)
    }
}
