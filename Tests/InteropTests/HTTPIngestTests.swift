import EventStore
import Foundation
import GridEvents
import Testing

@Suite("JSON events over HTTP: POST /api/events", .serialized)
struct HTTPIngestTests {
    static let lines = [
        #"{"event_type":"node_crashed","node_id":"node-7","agent_id":"agent-001","signal":9}"#,
        #"{"event_type":"deploy_finished","version":"1.2.3","ok":true,"entities":["svc-api"]}"#,
        "",
        #"{"event_type":"node_crashed","node_id":"node-8"}"#,
        #"{"event_type":"log","level":"info","label":"batch","message":"imported","node_id":"node-7"}"#,
        #"{"event_type":"spawn_failed","id":"event-spawn_failed-given-1","node_id":"node-1","agent_id":"agent-002","error":"disk full","timestamp":"2026-11-29T02:10:00.123456Z"}"#,
        "not json",
    ]

    @Test func linesAreStoredOrRefusedWithTheirReasonsAndGetGridCLIsIds() throws {
        let daemon = try DaemonUnderTest("ingest")
        let time = "2026-11-29T10:00:00Z"
        let body = Self.lines.joined(separator: "\n") + "\n"
        let a = try http("POST", daemon.base + "/api/events?time=" + time, headers: ["Content-Type": "application/x-ndjson"], body: Data(body.utf8))
        #expect(a.status == 200, "\(a.text)")
        let o = try a.json()
        #expect(o["stored"] as? Int == 4)
        #expect(o["accepted"] as? Int == 4)
        #expect(o["duplicates"] as? Int == 0)
        let refused = try #require(o["refused"] as? [[String: Any]])
        #expect(refused.map { $0["line"] as? Int } == [4, 7], "line numbers count every line, blank ones too")
        #expect((refused[0]["error"] as? String)?.contains("agent_id") == true)
        #expect((refused[1]["error"] as? String)?.hasPrefix("malformed JSON") == true)
        let ids = try #require(o["ids"] as? [String])
        #expect(ids.count == 4)
        #expect(ids.contains("event-spawn_failed-given-1"), "a line with an id keeps it")
        // Every id is readable as soon as the answer came.
        for id in ids { #expect(try http("GET", daemon.base + "/api/events/" + id).status == 200) }
        #expect(try daemon.events("entity=node-7").count == 2, "the crash and the log line about node-7")

        // grid-cli emit, same lines and --time, gives every line the same id: it stores nothing new.
        let file = daemon.dir.file("lines.jsonl")
        try body.write(toFile: file, atomically: true, encoding: .utf8)
        let report = daemon.dir.file("report.txt")
        let cli = Process()
        cli.executableURL = URL(fileURLWithPath: productPath("grid-cli"))
        cli.arguments = ["emit", "--storage", daemon.socket, "--time", time, "--report", report, "--timeout", "20"]
        cli.environment = ["EVENT_SPOOL_DIR": daemon.dir.file("spool"), "PATH": "/usr/bin:/bin"]
        cli.standardInput = FileHandle(forReadingAtPath: file)
        cli.standardError = FileHandle(forWritingAtPath: "/dev/null")
        cli.standardOutput = FileHandle(forWritingAtPath: "/dev/null")
        try cli.run()
        cli.waitUntilExit()
        #expect(cli.terminationStatus == 1, "bad lines: exit 1, every good one stored")
        let cliIds = try String(contentsOfFile: report, encoding: .utf8).split(separator: "\n").map(String.init)
        #expect(cliIds == ids)
        let stats = try http("GET", daemon.base + "/api/stats").json()
        #expect(stats["events"] as? Int == 4, "grid-cli's resend of the same ids stored nothing twice")

        // Posting the same body again: all duplicates.
        let again = try http("POST", daemon.base + "/api/events?time=" + time, body: Data(body.utf8)).json()
        #expect(again["stored"] as? Int == 0)
        #expect(again["duplicates"] as? Int == 4)
    }

    @Test func oneEventMayBePrettyPrinted() throws {
        let daemon = try DaemonUnderTest("ingestone")
        let body = """
            {
              "event_type": "agent_registered", "agent_id": "agent-009", "hostname": "h9",
              "platform": "linux", "agent_endpoint": "http://h9:7100", "max_storage_nodes": 4
            }
            """
        let a = try http("POST", daemon.base + "/api/events", headers: ["Content-Type": "application/json"], body: Data(body.utf8))
        #expect(a.status == 200, "\(a.text)")
        #expect(try a.json()["stored"] as? Int == 1)
        #expect(try daemon.events("entity=agent-009").count == 1)
    }

    @Test func refusalsLimitsAndToken() throws {
        let token = "interop-ingest-token-01234"
        let daemon = try DaemonUnderTest("ingestlim", extra: ["--max-ingest-body", "2KiB", "--token", token])
        let auth = ["Authorization": "Bearer " + token]
        let line = Data(#"{"event_type":"deploy_finished","version":"1"}"#.utf8)
        #expect(try http("POST", daemon.base + "/api/events", body: line).status == 401)
        #expect(try http("POST", daemon.base + "/api/events", headers: auth, body: line).status == 200)
        let big = try http("POST", daemon.base + "/api/events", headers: auth, body: Data(repeating: 0x20, count: 3000))
        #expect(big.status == 413)
        #expect((try big.json()["error"] as? [String: Any])?["code"] as? String == "body_too_large")
        let bad = try http("POST", daemon.base + "/api/events", headers: auth, body: Data("{\"event_type\":\"nope-x\"}\n[1]".utf8))
        #expect(bad.status == 400)
        let error = try #require(try bad.json()["error"] as? [String: Any])
        #expect(error["code"] as? String == "no_events")
        #expect((error["refused"] as? [[String: Any]])?.count == 2)
        #expect(try http("POST", daemon.base + "/api/events", headers: auth, body: Data()).status == 400)
        let badTime = try http("POST", daemon.base + "/api/events?time=yesterday", headers: auth, body: line)
        #expect(badTime.status == 400)
        #expect((try badTime.json()["error"] as? [String: Any])?["code"] as? String == "bad_time")
    }

    @Test func acknowledgedMeansDurable() throws {
        let daemon = try DaemonUnderTest("ingestdur", extra: ["--sync", "always"])
        var body = ""
        for i in 0..<2000 { body += #"{"event_type":"agent_heartbeat","agent_id":"agent-\#(i % 7)","storage_node_count":\#(i)}"# + "\n" }
        let a = try http("POST", daemon.base + "/api/events", body: Data(body.utf8))
        #expect(a.status == 200)
        let ids = try #require(try a.json()["ids"] as? [String])
        daemon.child.kill(SIGKILL)  // right after the answer: a crash
        let store = try EventStore.open(at: daemon.dataDir, options: StoreOptions(readOnly: true))
        defer { store.close() }
        let missing = ids.filter { store.event(id: $0) == nil }
        #expect(ids.count == 1000, "the answer lists at most 1,000 ids")
        #expect(missing.isEmpty, "\(missing.count) acknowledged events lost by a SIGKILL after the answer")
        #expect(store.stats.events == 2000)
    }
}
