import EventStore
import Foundation
import GridControl
import GridEvents
import Testing
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// A free loopback TCP port (bound then released).
func freePort() -> Int {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    defer { close(fd) }
    var addr = sockaddr_in()
    addr.sin_family = sa_family_t(AF_INET)
    addr.sin_port = 0
    addr.sin_addr.s_addr = inet_addr("127.0.0.1")
    _ = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
    var len = socklen_t(MemoryLayout<sockaddr_in>.size)
    _ = withUnsafeMutablePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &len) } }
    return Int(UInt16(bigEndian: addr.sin_port))
}

/// A whole grid on temporary paths and free ports: grid-eventd, grid-master and one grid-agent, with
/// shortened intervals; the agent's storage_root is `dir`. With `token`, the master and the agent share it as the
/// control plane's token and `cli` and `masterGET` send it.
final class LocalGrid {
    let dir = TempDir("grid", mode: 0o755)
    let daemon: DaemonProcess
    let httpPort = freePort()
    let masterPort = freePort()
    let agentPort = freePort()
    let nodePortBase = 52000 + Int.random(in: 0..<500) * 10
    var master: Process?
    var agent: Process?
    var env: [String: String]
    let token: String?

    init(token: String? = nil) throws {
        self.token = token
        daemon = DaemonProcess(dataDir: dir.file("data"), socket: dir.file("s.sock"), extra: [])
        env = ProcessInfo.processInfo.environment
        // Tokens come from the flags and configs below only.
        env[ControlToken.environmentVariable] = nil
        env[ControlToken.fallbackVariable] = nil
        env["EVENT_STORAGE"] = daemon.socket
        env["EVENT_SPOOL_DIR"] = dir.file("spool")
        try startDaemon()
        try startMaster()
        try startAgent()
        try waitFor("agent registered", timeout: 15) { (try? self.masterGET("/api/agents"))?.contains("agent-001") == true }
    }

    func startDaemon() throws {
        daemon.extraHTTP = "127.0.0.1:\(httpPort)"
        try daemon.start()
    }

    func startMaster() throws {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: productPath("grid-master"))
        p.arguments = ["--listen", "127.0.0.1:\(masterPort)", "--degraded-after", "1.5", "--offline-after", "3", "--check-interval", "0.1",
                       "--heartbeat-event-interval", "3600", "--agent-timeout", "10"] + (token.map { ["--token", $0] } ?? [])
        p.environment = env
        p.standardError = FileHandle(forWritingAtPath: logFile("master.log"))
        try p.run()
        master = p
        try waitFor("master listening", timeout: 15) { canConnectTCP(self.masterPort) }
    }

    func startAgent() throws {
        agent = try launchAgent(id: "agent-001", port: agentPort, token: token)
    }

    /// Starts a grid-agent for this grid's master; its log is `<id>.log` (`agent.log` for agent-001).
    func launchAgent(id: String, port: Int, token: String?) throws -> Process {
        let config = """
            agent_id = "\(id)"
            master = "http://127.0.0.1:\(masterPort)"
            listen = "127.0.0.1:\(port)"
            max_storage_nodes = 4
            node_binary = "\(productPath("grid-eventd"))"
            storage_root = "\(dir.path)"
            port_range = "\(nodePortBase)-\(nodePortBase + 9)"
            heartbeat_interval = 0.3
            \(token.map { "token = \"\($0)\"" } ?? "")
            [restart]
            max_restarts = 3
            backoff_seconds = 0.2
            stop_grace_seconds = 3
            """
        FileManager.default.createFile(atPath: dir.file("\(id).toml"), contents: Data(config.utf8))
        let p = Process()
        p.executableURL = URL(fileURLWithPath: productPath("grid-agent"))
        p.arguments = ["--config", dir.file("\(id).toml")]
        p.environment = env
        p.standardError = FileHandle(forWritingAtPath: logFile(id == "agent-001" ? "agent.log" : "\(id).log"))
        try p.run()
        return p
    }

    func logFile(_ name: String) -> String {
        FileManager.default.createFile(atPath: dir.file(name), contents: nil)
        return dir.file(name)
    }

    func cli(_ args: [String]) -> (status: Int32, stdout: String, stderr: String) {
        let token = self.token.map { ["--token", $0] } ?? []
        return (try? Child("grid-cli", args + ["--master", "http://127.0.0.1:\(masterPort)"] + token, environment: env).wait(timeout: 30)) ?? (-1, "", "")
    }

    func masterGET(_ path: String) throws -> String {
        var w = JSONWriter()
        w.value(try ControlClient(timeoutSeconds: 5, token: token).callBlocking("GET", "http://127.0.0.1:\(masterPort)\(path)"))
        return w.text
    }

    /// Events in the store (through its query API), oldest first, as (type, fields) for an entity or all.
    func events(entity: String? = nil, types: [String] = []) -> [[String: Any]] {
        var uri = "http://127.0.0.1:\(httpPort)/api/events?limit=1000&order=oldest"
        if let entity { uri += "&entity=\(entity)" }
        if !types.isEmpty { uri += "&type=" + types.joined(separator: ",") }
        guard let data = try? Data(contentsOf: URL(string: uri)!),
            let obj = try? JSONSerialization.jsonObject(with: data) as? [String: Any]
        else { return [] }
        return obj["events"] as? [[String: Any]] ?? []
    }

    func types(entity: String? = nil) -> [String] { events(entity: entity).compactMap { $0["event_type"] as? String } }

    func waitFor(_ what: String, timeout: Double, _ condition: () -> Bool) throws {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if condition() { return }
            usleep(50_000)
        }
        throw HarnessError("timed out waiting for \(what); agent log: \((try? String(contentsOfFile: dir.file("agent.log"), encoding: .utf8))?.suffix(1500) ?? ""); master log: \((try? String(contentsOfFile: dir.file("master.log"), encoding: .utf8))?.suffix(1500) ?? "")")
    }

    func stopAll() {
        for p in [agent, master].compactMap({ $0 }) where p.isRunning {
            p.terminate()
            p.waitUntilExit()
        }
        daemon.stop()
    }

    deinit {
        for p in [agent, master].compactMap({ $0 }) where p.isRunning { kill(p.processIdentifier, SIGKILL) }
    }
}

func canConnectTCP(_ port: Int) -> Bool {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    defer { close(fd) }
    var addr = sockaddr_in()
    addr.sin_family = sa_family_t(AF_INET)
    addr.sin_port = in_port_t(UInt16(port).bigEndian)
    addr.sin_addr.s_addr = inet_addr("127.0.0.1")
    return withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0 } }
}

@Suite("A real grid: daemon, master and agent", .serialized, .timeLimit(.minutes(5)))
struct GridTests {
    @Test func normalOperations() throws {
        let g = try LocalGrid()
        let spawn = g.cli(["spawn", "--agent", "agent-001", "--node", "node-a", "--port", "\(g.nodePortBase)", "--storage-path", g.dir.file("node-a")])
        #expect(spawn.status == 0, "\(spawn.stderr)")
        #expect(spawn.stdout.contains("started node-a on agent-001"))
        #expect(canConnectTCP(g.nodePortBase), "the node listens on the port asked for")
        #expect(FileManager.default.fileExists(atPath: g.dir.file("node-a") + "/node.sock"), "and uses the path asked for")
        let list = g.cli(["list-nodes"])
        #expect(list.stdout.contains("node-a") && list.stdout.contains("running"))
        let stop = g.cli(["stop", "--node", "node-a", "--agent", "agent-001"])
        #expect(stop.status == 0, "\(stop.stderr)")
        try g.waitFor("stop_succeeded in the store", timeout: 10) { g.types(entity: "node-a").contains("stop_succeeded") }
        #expect(g.types(entity: "node-a") == ["spawn_requested", "spawn_succeeded", "stop_requested", "stop_succeeded"])
        let agentEvents = g.types(entity: "agent-001")
        #expect(agentEvents.first == "agent_registered")
        let succeeded = g.events(entity: "node-a").first { $0["event_type"] as? String == "spawn_succeeded" }
        let fields = succeeded?["fields"] as? [String: Any]
        #expect(fields?["port"] as? Int == g.nodePortBase)
        #expect((fields?["pid"] as? Int ?? 0) > 0)
        #expect((succeeded?["id"] as? String)?.hasPrefix("event-spawn_succeeded-") == true)
        g.stopAll()
    }

    @Test func agentDegradationAndRecovery() throws {
        let g = try LocalGrid()
        let agent = try #require(g.agent)
        kill(agent.processIdentifier, SIGSTOP)
        try g.waitFor("agent_offline", timeout: 10) { g.types(entity: "agent-001").contains("agent_offline") }
        kill(agent.processIdentifier, SIGCONT)
        try g.waitFor("agent_recovered", timeout: 10) { g.types(entity: "agent-001").contains("agent_recovered") }
        let events = g.events(entity: "agent-001")
        let types = events.compactMap { $0["event_type"] as? String }.filter { $0 != "agent_heartbeat" }
        let d = try #require(types.firstIndex(of: "agent_degraded"))
        let o = try #require(types.firstIndex(of: "agent_offline"))
        let r = try #require(types.firstIndex(of: "agent_recovered"))
        #expect(d < o && o < r)
        let degraded = events.first { $0["event_type"] as? String == "agent_degraded" }?["fields"] as? [String: Any]
        #expect((degraded?["seconds_since_heartbeat"] as? Double ?? 0) >= 1.5)
        let recovered = events.first { $0["event_type"] as? String == "agent_recovered" }?["fields"] as? [String: Any]
        #expect((recovered?["downtime_seconds"] as? Double ?? 0) >= 3)
        let offline = events.first { $0["event_type"] as? String == "agent_offline" }?["fields"] as? [String: Any]
        #expect(offline?["last_seen"] is String)
        let cluster = g.types(entity: "cluster")
        // One agent: once it is not healthy, none is, which is critical by definition (a majority offline or none
        // healthy); healthy again after the recovery.
        #expect(cluster == ["cluster_healthy", "cluster_critical", "cluster_healthy"], "\(cluster)")
        let critical = g.events(entity: "cluster").first { $0["event_type"] as? String == "cluster_critical" }?["fields"] as? [String: Any]
        #expect(critical?["total_agents"] as? Int == 1)
        #expect(critical?["healthy_agents"] as? Int == 0)
        g.stopAll()
    }

    @Test func nodeCrashIsRestarted() throws {
        let g = try LocalGrid()
        let spawn = g.cli(["spawn", "--agent", "agent-001", "--node", "node-c", "--port", "\(g.nodePortBase + 1)", "--storage-path", g.dir.file("node-c"), "--json"])
        #expect(spawn.status == 0, "\(spawn.stderr)")
        let pid = try #require((try? JSONSerialization.jsonObject(with: Data(spawn.stdout.utf8)) as? [String: Any])?["pid"] as? Int)
        kill(pid_t(pid), SIGKILL)
        try g.waitFor("node_restarted", timeout: 10) { g.types(entity: "node-c").contains("node_restarted") }
        let events = g.events(entity: "node-c")
        let crashed = events.first { $0["event_type"] as? String == "node_crashed" }?["fields"] as? [String: Any]
        #expect(crashed?["signal"] as? Int == 9)
        let restarted = events.first { $0["event_type"] as? String == "node_restarted" }?["fields"] as? [String: Any]
        let newPid = try #require(restarted?["new_pid"] as? Int)
        #expect(newPid != pid)
        #expect(restarted?["restart_count"] as? Int == 1)
        #expect(kill(pid_t(newPid), 0) == 0, "the new process is alive")
        g.stopAll()
        #expect(kill(pid_t(newPid), 0) != 0, "stopping the agent stops its nodes")
    }

    @Test func spawnFailureAndUnknownStop() throws {
        let g = try LocalGrid()
        let bad = g.cli(["spawn", "--agent", "agent-001", "--node", "node-x", "--port", "\(g.nodePortBase + 2)", "--storage-path", "/proc/impossible/node-x"])
        #expect(bad.status != 0)
        #expect(bad.stderr.contains("storage path /proc/impossible/node-x"))
        let unknownAgent = g.cli(["spawn", "--agent", "agent-999", "--node", "node-y", "--port", "\(g.nodePortBase + 3)", "--storage-path", g.dir.file("y")])
        #expect(unknownAgent.status != 0)
        #expect(unknownAgent.stderr.contains("agent-999 is not registered"))
        let stop = g.cli(["stop", "--node", "node-ghost", "--agent", "agent-001"])
        #expect(stop.status != 0)
        #expect(stop.stderr.contains("node-ghost is not known"))
        try g.waitFor("stop_failed", timeout: 10) { g.types(entity: "node-ghost").contains("stop_failed") }
        #expect(g.types(entity: "node-x") == ["spawn_requested", "spawn_failed"])
        let failed = g.events(entity: "node-x").last?["fields"] as? [String: Any]
        #expect((failed?["error"] as? String)?.contains("/proc/impossible/node-x") == true)
        #expect(g.types(entity: "node-ghost") == ["stop_requested", "stop_failed"])
        #expect(g.types(entity: "node-y") == ["spawn_requested", "spawn_failed"])
        g.stopAll()
    }

    @Test func storeDownEventsArriveLater() throws {
        let g = try LocalGrid()
        #expect(g.daemon.stop() == 0)
        // The grid keeps working without its store.
        let spawn = g.cli(["spawn", "--agent", "agent-001", "--node", "node-d", "--port", "\(g.nodePortBase + 4)", "--storage-path", g.dir.file("node-d")])
        #expect(spawn.status == 0, "\(spawn.stderr)")
        let stop = g.cli(["stop", "--node", "node-d", "--agent", "agent-001"])
        #expect(stop.status == 0, "\(stop.stderr)")
        usleep(500_000)
        try g.startDaemon()
        try g.waitFor("the events of the outage", timeout: 20) { g.types(entity: "node-d").count == 4 }
        #expect(g.types(entity: "node-d") == ["spawn_requested", "spawn_succeeded", "stop_requested", "stop_succeeded"])
        g.stopAll()
    }

    /// The control plane's token end to end (master and agent share it; the agent registers and spawns), each
    /// refusal of the token and of storage_root through the master, with its spawn_failed event.
    @Test func tokensAndStorageRoot() throws {
        let token = "grid-control-token-0123"
        let g = try LocalGrid(token: token)
        let master = "http://127.0.0.1:\(g.masterPort)"
        let agent = "http://127.0.0.1:\(g.agentPort)"
        /// The HTTP status and error code of a call with `token`.
        func status(_ method: String, _ url: String, token: String?, body: String? = nil) -> (Int, String) {
            do {
                _ = try ControlClient(timeoutSeconds: 10, token: token).callBlocking(method, url, body: body)
                return (200, "")
            } catch {
                return (error.status, error.code)
            }
        }
        // The master's API: without the token or with a wrong one, 401 with the JSON error; with it, served.
        for path in ["/api/agents", "/api/status", "/metrics", "/api/nowhere"] {
            #expect(status("GET", master + path, token: nil) == (401, "unauthorized"), "\(path)")
            #expect(status("GET", master + path, token: "grid-control-token-0124") == (401, "unauthorized"), "\(path)")
        }
        #expect(status("POST", master + "/api/agents/register", token: nil, body: "{}") == (401, "unauthorized"))
        #expect(status("GET", master + "/api/status", token: token).0 == 200)
        #expect(status("GET", master + "/api/nowhere", token: token) == (404, "not_found"))
        #expect(try g.masterGET("/api/agents").contains("agent-001"), "the agent registered with the token")
        // The agent's API, likewise: nothing is spawned without the token.
        let direct = SpawnRequest(agentId: nil, nodeId: "node-direct", port: g.nodePortBase + 9, storagePath: "direct").json
        #expect(status("POST", agent + "/api/nodes/spawn", token: nil, body: direct) == (401, "unauthorized"))
        #expect(status("POST", agent + "/api/nodes/spawn", token: "grid-control-token-0124", body: direct) == (401, "unauthorized"))
        #expect(status("GET", agent + "/api/nodes", token: nil) == (401, "unauthorized"))
        #expect(status("GET", agent + "/api/nodes", token: token).0 == 200)
        #expect(!FileManager.default.fileExists(atPath: g.dir.file("direct")))
        // grid-cli: without --token refused with the master's message; with it (g.cli) served.
        let refused = try Child("grid-cli", ["list-agents", "--master", master], environment: g.env).wait(timeout: 30)
        #expect(refused.status != 0)
        #expect(refused.stderr.contains("Authorization: Bearer"), "\(refused.stderr)")
        #expect(g.cli(["list-agents"]).stdout.contains("agent-001"))

        // A legitimate relative path lands below storage_root; the master records the resolved path.
        let ok = g.cli(["spawn", "--agent", "agent-001", "--node", "node-ok", "--port", "\(g.nodePortBase)", "--storage-path", "nodes/node-ok"])
        #expect(ok.status == 0, "\(ok.stderr)")
        #expect(FileManager.default.fileExists(atPath: g.dir.file("nodes/node-ok/node.sock")))
        #expect(g.cli(["list-nodes"]).stdout.contains(g.dir.file("nodes/node-ok")))
        // Outside the root, `..` out of it, a symlink out of it: refused, nothing created, spawn_failed saying why.
        let outside = TempDir("grid-outside")
        #expect(symlink(outside.path, g.dir.file("escape")) == 0)
        let refusals = [("node-out", outside.file("node-out"), "is outside storage_root"),
                        ("node-up", "../\(URL(fileURLWithPath: outside.path).lastPathComponent)/node-up", "climbs out of storage_root"),
                        ("node-ln", "escape/node-ln", "through the symlink \(g.dir.file("escape")) -> \(outside.path)")]
        for (i, (node, path, reason)) in refusals.enumerated() {
            let r = g.cli(["spawn", "--agent", "agent-001", "--node", node, "--port", "\(g.nodePortBase + 1 + i)", "--storage-path", path])
            #expect(r.status != 0, "\(node) was spawned")
            #expect(r.stderr.contains(reason), "\(node): \(r.stderr)")
        }
        #expect(try FileManager.default.contentsOfDirectory(atPath: outside.path).isEmpty, "nothing was created outside")
        for (node, _, reason) in refusals {
            try g.waitFor("spawn_failed of \(node)", timeout: 10) { g.types(entity: node).contains("spawn_failed") }
            #expect(g.types(entity: node) == ["spawn_requested", "spawn_failed"])
            let error = (g.events(entity: node).last?["fields"] as? [String: Any])?["error"] as? String ?? ""
            #expect(error.contains(reason), "\(node): \(error)")
        }

        // An agent with another token is refused by the master and says so; the master, sent to it, is refused too.
        let strangerPort = freePort()
        let stranger = try g.launchAgent(id: "agent-002", port: strangerPort, token: "another-token-0123456")
        defer { kill(stranger.processIdentifier, SIGKILL); stranger.waitUntilExit() }
        try g.waitFor("agent-002's complaint", timeout: 15) {
            ((try? String(contentsOfFile: g.dir.file("agent-002.log"), encoding: .utf8)) ?? "").contains("refused this agent's token")
        }
        #expect(try !g.masterGET("/api/agents").contains("agent-002"))
        let register = RegisterRequest(agentId: "agent-003", hostname: "h", platform: "p", agentEndpoint: "http://127.0.0.1:\(strangerPort)",
                                       maxStorageNodes: 1, nodes: []).json
        #expect(status("POST", master + "/api/agents/register", token: token, body: register).0 == 200)
        let wrongAgent = g.cli(["spawn", "--agent", "agent-003", "--node", "node-w", "--port", "\(g.nodePortBase + 5)", "--storage-path", "w"])
        #expect(wrongAgent.status != 0)
        #expect(wrongAgent.stderr.contains("refused the master's token"), "\(wrongAgent.stderr)")

        #expect(g.cli(["stop", "--node", "node-ok", "--agent", "agent-001"]).status == 0)
        g.stopAll()
    }

    /// grid-master and grid-agent refuse to listen beyond loopback without a token of 16 characters or more; they
    /// exit before serving.
    @Test func listeningBeyondLoopbackNeedsAToken() throws {
        let dir = TempDir("grid-bind")
        var env = ProcessInfo.processInfo.environment
        env[ControlToken.environmentVariable] = nil
        env[ControlToken.fallbackVariable] = nil
        env["EVENT_STORAGE"] = ""
        env["EVENT_SPOOL_DIR"] = dir.file("spool")
        for extra in [[], ["--token", "short"]] {
            let port = freePort()
            let r = try Child("grid-master", ["--http", "0.0.0.0:\(port)"] + extra, environment: env).wait(timeout: 20)
            #expect(r.status != 0)
            #expect(r.stderr.contains("--http 0.0.0.0:\(port) binds beyond loopback"), "\(r.stderr)")
            #expect(r.stderr.contains("--token"))
            #expect(!canConnectTCP(port))
        }
        let port = freePort()
        let config = """
            agent_id = "agent-open"
            listen = "0.0.0.0:\(port)"
            storage_root = "\(dir.file("nodes"))"
            """
        FileManager.default.createFile(atPath: dir.file("agent.toml"), contents: Data(config.utf8))
        let r = try Child("grid-agent", ["--config", dir.file("agent.toml")], environment: env).wait(timeout: 20)
        #expect(r.status != 0)
        #expect(r.stderr.contains("binds beyond loopback") && r.stderr.contains("token"), "\(r.stderr)")
        #expect(!canConnectTCP(port))
        // The same agent with a token in its environment passes that check (and stops at the next one here:
        // storage_root cannot be created below a file).
        FileManager.default.createFile(atPath: dir.file("file"), contents: Data())
        let blocked = config.replacingOccurrences(of: dir.file("nodes"), with: dir.file("file") + "/nodes")
        FileManager.default.createFile(atPath: dir.file("agent2.toml"), contents: Data(blocked.utf8))
        env[ControlToken.environmentVariable] = "grid-control-token-0123"
        let r2 = try Child("grid-agent", ["--config", dir.file("agent2.toml")], environment: env).wait(timeout: 20)
        #expect(r2.status != 0)
        #expect(!r2.stderr.contains("beyond loopback"), "\(r2.stderr)")
        #expect(r2.stderr.contains("storage_root \(dir.file("file"))/nodes cannot be created"), "\(r2.stderr)")
    }
}
