@testable import EventDaemon
import Foundation
@testable import GridMaster
import Testing

/// docs/openapi.yaml against live servers: schemathesis (examples, coverage, fuzzing and stateful phases, bounded in
/// examples and time) checks that every answer's status, content type and body match the spec, that nothing answers
/// 5xx, that what the spec calls invalid is refused and that undeclared methods get 405. Schema-valid inputs may
/// still be refused when they break a rule a schema cannot state (a question the translator cannot read, a cursor
/// this server did not issue, an id whose prefix must match its type): those routes list the 400 they answer, and
/// schemathesis' positive_data_acceptance check is left out. Not fuzzed: the live stream (it never ends) and the
/// master's spawn and stop (they call the agent endpoint a fuzzer registered, which could be any address; checked
/// below by hand on loopback).
@Suite("OpenAPI contract, checked with schemathesis", .serialized)
struct OpenAPITests {
    static let spec = repoRoot + "/docs/openapi.yaml"

    /// The paths the spec lists, from its lines `  /path:`.
    static func specPaths() throws -> Set<String> {
        let text = try String(contentsOfFile: spec, encoding: .utf8)
        return Set(text.split(separator: "\n").compactMap { line -> String? in
            guard line.hasPrefix("  /"), line.hasSuffix(":"), !line.hasPrefix("   ") else { return nil }
            return String(line.dropFirst(2).dropLast())
        })
    }

    @Test func everyRouteIsInTheSpec() throws {
        let paths = try Self.specPaths()
        for r in HTTPAPI.routes.routes + MasterHTTP.routes.routes {
            let path = "/" + r.pattern.joined(separator: "/")
            #expect(paths.contains(path), "route \(path) is missing from docs/openapi.yaml")
        }
        #expect(paths.count == Set(HTTPAPI.routes.routes.map { "/" + $0.pattern.joined(separator: "/") })
            .union(MasterHTTP.routes.routes.map { "/" + $0.pattern.joined(separator: "/") }).count,
            "the spec lists no route the servers lack")
    }

    /// Every code of grid-eventd's error catalogue is in the spec's table with its status, once.
    @Test func everyErrorCodeIsInTheSpec() throws {
        let text = try String(contentsOfFile: Self.spec, encoding: .utf8)
        let codes = APIErrorCode.catalogue.map(\.code)
        #expect(Set(codes).count == codes.count, "a code is listed twice: \(codes)")
        for entry in APIErrorCode.catalogue {
            let status = entry.code == "bad_request" ? "4xx" : String(entry.status.code)
            let row = "| `\(entry.code)` | \(status) | \(entry.meaning) |"
            #expect(text.contains(row), "docs/openapi.yaml lacks the row \(row)")
        }
        let rows = text.split(separator: "\n").filter { $0.hasPrefix("    | `") }
        #expect(rows.count == codes.count + 2, "the spec's table has rows the catalogue lacks: \(rows.count)")
    }

    func schemathesis(_ base: String, tag: String, exclude: [String], dir: TempDir) throws {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.currentDirectoryURL = URL(fileURLWithPath: dir.path)
        p.arguments = ["schemathesis", "run", Self.spec, "--url", base, "--include-tag", tag, "--max-examples", "15", "--max-time", "30",
                       "--seed", "18", "--no-color", "--exclude-checks", "positive_data_acceptance", "--request-timeout", "10"]
            + exclude.flatMap { ["--exclude-path", $0] }
        let log = dir.file("schemathesis-\(tag).txt")
        FileManager.default.createFile(atPath: log, contents: nil)
        p.standardOutput = FileHandle(forWritingAtPath: log)
        p.standardError = FileHandle(forWritingAtPath: log)
        try p.run()
        let deadline = Date().addingTimeInterval(150)
        while p.isRunning, Date() < deadline { usleep(100_000) }
        if p.isRunning { kill(p.processIdentifier, SIGKILL) }
        p.waitUntilExit()
        let output = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
        #expect(p.terminationStatus == 0, "schemathesis found \(tag) answers that differ from docs/openapi.yaml:\n\(output.suffix(6000))")
        #expect(output.contains("generated"), "schemathesis ran: \(output.suffix(2000))")
    }

    @Test func eventdAgreesWithTheSpec() throws {
        let daemon = try DaemonUnderTest("openapi")
        // An agent with nodes, so /api/grid/agents (now and `at`) answers agent and node objects the spec describes.
        let seed = [#"{"event_type":"agent_registered","agent_id":"agent-001","hostname":"h1","platform":"linux","agent_endpoint":"http://127.0.0.1:1","max_storage_nodes":8}"#]
            + (0..<5).map { #"{"event_type":"spawn_succeeded","node_id":"node-\#($0)","agent_id":"agent-001","pid":\#(100 + $0),"port":\#(9000 + $0)}"# }
            + (0..<50).map { #"{"event_type":"node_crashed","node_id":"node-\#($0 % 5)","agent_id":"agent-001","signal":9}"# }
        let stored = try http("POST", daemon.base + "/api/events", body: Data(seed.joined(separator: "\n").utf8))
        #expect(try stored.json()["stored"] as? Int == seed.count, "\(stored.text)")
        let agents = try http("GET", daemon.base + "/api/grid/agents?at=2999-01-01T00:00:00Z")
        let agentList = try agents.json()["agents"] as? [Any]
        #expect(agents.status == 200 && agentList?.count == 1, "\(agents.text)")
        try schemathesis(daemon.base, tag: "eventd", exclude: ["/api/events/stream"], dir: daemon.dir)
    }

    @Test func masterAgreesWithTheSpec() throws {
        let dir = TempDir("openapim")
        let port = freePort()
        let master = try ChildProcess(productPath("grid-master"), ["--listen", "127.0.0.1:\(port)"], log: dir.file("master.log"),
                                      environment: ["EVENT_STORAGE": "", "EVENT_SPOOL_DIR": dir.file("spool")])
        defer { master.kill(SIGTERM) }
        let base = "http://127.0.0.1:\(port)"
        let deadline = Date().addingTimeInterval(20)
        while (try? http("GET", base + "/api/status", timeout: 2)) == nil, Date() < deadline { usleep(50_000) }
        try schemathesis(base, tag: "master", exclude: ["/api/nodes/spawn", "/api/nodes/stop"], dir: dir)

        // spawn and stop by hand, on loopback: an agent whose endpoint does not answer, an unknown agent and node.
        let closed = freePort()
        let register = #"{"agent_id":"agent-x","hostname":"h","platform":"linux","agent_endpoint":"http://127.0.0.1:\#(closed)","max_storage_nodes":2}"#
        #expect(try http("POST", base + "/api/agents/register", body: Data(register.utf8)).status == 200)
        let spawn = try http("POST", base + "/api/nodes/spawn",
                             body: Data(#"{"agent_id":"agent-x","node_id":"node-x","port":1,"storage_path":"/tmp/x"}"#.utf8))
        #expect([502, 504].contains(spawn.status), "\(spawn.status) \(spawn.text)")
        #expect(((try spawn.json())["error"] as? [String: Any])?["code"] as? String == "agent_error" || spawn.status == 504)
        let unknown = try http("POST", base + "/api/nodes/spawn", body: Data(#"{"agent_id":"agent-y","node_id":"n","port":1,"storage_path":"/x"}"#.utf8))
        #expect(unknown.status == 404)
        let stop = try http("POST", base + "/api/nodes/stop", body: Data(#"{"agent_id":"agent-x","node_id":"node-nope"}"#.utf8))
        #expect(stop.status == 404)
        #expect(((try stop.json())["error"] as? [String: Any])?["code"] as? String == "unknown_node")
        #expect(try http("POST", base + "/api/nodes/stop", body: Data("{}".utf8)).status == 400)
    }
}
