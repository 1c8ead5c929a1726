import EventDaemon
import EventStore
import Foundation
import GridEvents
import Hummingbird
import HummingbirdTesting
import Logging
import Testing

/// Loads the dashboard in headless Chromium against a daemon with a known fixture and checks the rendered DOM.
let chromiumPath = ["/usr/bin/chromium", "/usr/bin/chromium-browser"].first { FileManager.default.isExecutableFile(atPath: $0) }

final class DataBox: @unchecked Sendable {
    var data = Data()
}

@Suite("Dashboard in headless Chromium", .serialized)
struct DashboardTests {
    /// Runs Chromium headless with `arguments` plus the URL; returns standard output (the DOM for --dump-dom).
    func chromium(_ arguments: [String], url: String, timeout: Double = 40) throws -> String {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: chromiumPath!)
        let profile = NSTemporaryDirectory() + "chromium-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        defer { try? FileManager.default.removeItem(atPath: profile) }
        p.arguments = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
                       "--user-data-dir=" + profile, "--window-size=1280,800"] + arguments + [url]
        let out = Pipe()
        p.standardOutput = out
        p.standardError = FileHandle.nullDevice
        try p.run()
        let box = DataBox()
        let reader = Thread { box.data = out.fileHandleForReading.readDataToEndOfFile() }
        reader.start()
        let deadline = Date().addingTimeInterval(timeout)
        while p.isRunning, Date() < deadline { usleep(50_000) }
        if p.isRunning { p.terminate() }
        p.waitUntilExit()
        while !reader.isFinished { usleep(10_000) }
        return String(decoding: box.data, as: UTF8.self)
    }

    @Test(.enabled(if: chromiumPath != nil, "needs Debian's chromium (make test installs it)"))
    func pageShowsAgentsStreamAnswerAndChart() async throws {
        let dir = NSTemporaryDirectory() + "dash-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var config = DaemonConfig(dataDirectory: dir + "/data")
        config.socketPath = dir + "/s.sock"
        config.metricsIntervalSeconds = 3600
        config.streamKeepaliveSeconds = 0.5
        var logger = Logger(label: "dash")
        logger.logLevel = .warning
        let daemon = GridEventDaemon(config: config, logger: logger)
        try daemon.start()
        defer { daemon.shutdown() }
        let now = StoreOptions.nowMicros()
        var n: UInt64 = 0
        func e(_ k: GridEventKind, secondsAgo: Int64) -> GridEvent {
            n += 1
            return GridEvent(id: GridEvent.makeId(typeName: k.typeName, producerTag: "dashdashdash", sequence: n), timestamp: now - secondsAgo * 1_000_000, kind: k)
        }
        let fixture = [
            e(.agentRegistered(agentId: "agent-001", hostname: "h1", platform: "linux", agentEndpoint: "127.0.0.1:7101", maxStorageNodes: 4), secondsAgo: 600),
            e(.agentRegistered(agentId: "agent-002", hostname: "h2", platform: "linux", agentEndpoint: "127.0.0.1:7102", maxStorageNodes: 4), secondsAgo: 590),
            e(.spawnRequested(nodeId: "node-7", agentId: "agent-001", port: 50051, storagePath: "/tmp/n7", memoryLimitMb: 256), secondsAgo: 500),
            e(.spawnSucceeded(nodeId: "node-7", agentId: "agent-001", pid: 4242, port: 50051), secondsAgo: 499),
            e(.nodeCrashed(nodeId: "node-7", agentId: "agent-001", exitCode: nil, signal: 9), secondsAgo: 300),
            e(.nodeRestarted(nodeId: "node-7", agentId: "agent-001", restartCount: 1, newPid: 4243), secondsAgo: 299),
            e(.agentDegraded(agentId: "agent-002", secondsSinceHeartbeat: 16), secondsAgo: 200),
            e(.agentOffline(agentId: "agent-002", lastSeen: now - 230_000_000), secondsAgo: 170),
            e(.spawnFailed(nodeId: "node-9", agentId: "agent-001", error: "<script>alert(1)</script>"), secondsAgo: 60),
            e(.agentHeartbeat(agentId: "agent-001", storageNodeCount: 1), secondsAgo: 30),
        ]
        try daemon.store!.append(fixture.flatMap { $0.records() })
        // Appended beside the daemon's writer: hand the grid state what the writer would have.
        daemon.gridState!.observe(fixture)
        let app = Application(router: HTTPAPI.router(daemon.apiContext()!), configuration: .init(address: .hostname("127.0.0.1", port: 0)), logger: logger)
        try await app.test(.live) { client in
            let port = try #require(client.port)
            // "In the last hour", not "today": the fixture's spawn failure is 60 s old, which is yesterday during the
            // first minute after midnight UTC.
            let query = "count%20spawn%20failures%20in%20the%20last%20hour"
            let dom = try chromium(["--virtual-time-budget=6000", "--dump-dom"], url: "http://127.0.0.1:\(port)/?stream=off&q=\(query)")
            // Agent cards with the states the fixture implies.
            #expect(dom.contains(#"class="card healthy" data-agent="agent-001""#), "\(dom.prefix(3000))")
            #expect(dom.contains(#"class="card offline" data-agent="agent-002""#))
            #expect(dom.contains(#"data-node="node-7""#))
            #expect(dom.contains("node-7 restarted pid 4243"))
            // The stream shows the fixture's events, newest first.
            let crash = fixture[4].id
            let stream = String(dom[(dom.range(of: #"<tbody id="stream">"#)?.lowerBound ?? dom.startIndex)...])
            #expect(stream.contains(#"data-id="\#(crash)""#))
            let heartbeatAt = stream.range(of: #"data-id="\#(fixture[9].id)""#)?.lowerBound
            let crashAt = stream.range(of: #"data-id="\#(crash)""#)?.lowerBound
            #expect(heartbeatAt != nil && crashAt != nil && heartbeatAt! < crashAt!)
            // The query's interpretation and answer.
            #expect(dom.contains("Understood: Count of spawn failures in the last hour, by type."), "\(dom.prefix(3000))")
            #expect(dom.contains(#"<div class="big count">1</div>"#))
            // The chart has bars for the fixture's types.
            #expect(dom.contains(#"data-type="node_crashed""#))
            #expect(dom.contains(#"data-type="agent_heartbeat""#))
            // Alerts: the crash, the spawn failure and the offline agent.
            #expect(dom.contains(#"<li class="error" data-id="\#(crash)""#))
            // HTML in event fields renders as text, never as markup.
            #expect(dom.contains("&lt;script&gt;alert(1)&lt;/script&gt;"))
            #expect(!dom.contains("<script>alert(1)"))

            // A screenshot for a person to look at (not committed).
            let shot = FileManager.default.currentDirectoryPath + "/.build/dashboard.png"
            _ = try chromium(["--virtual-time-budget=6000", "--screenshot=" + shot], url: "http://127.0.0.1:\(port)/?stream=off")
            #expect(FileManager.default.fileExists(atPath: shot))
        }
    }
}
