import EventStore
import Foundation
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
/// shortened intervals; the agent's storage_root is `dir`.
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

    init() throws {
        daemon = DaemonProcess(dataDir: dir.file("data"), socket: dir.file("s.sock"), extra: [])
        env = ProcessInfo.processInfo.environment
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
                       "--heartbeat-event-interval", "3600", "--agent-timeout", "10"]
        p.environment = env
        p.standardError = FileHandle(forWritingAtPath: logFile("master.log"))
        try p.run()
        master = p
        try waitFor("master listening", timeout: 15) { canConnectTCP(self.masterPort) }
    }

    func startAgent() throws {
        agent = try launchAgent(id: "agent-001", port: agentPort)
    }

    /// Starts a grid-agent for this grid's master; its log is `<id>.log` (`agent.log` for agent-001).
    func launchAgent(id: String, port: Int) throws -> Process {
        let config = """
            agent_id = "\(id)"
            master = "http://127.0.0.1:\(masterPort)"
            listen = "127.0.0.1:\(port)"
            max_storage_nodes = 4
            node_binary = "\(productPath("grid-eventd"))"
            storage_root = "\(dir.path)"
            port_range = "\(nodePortBase)-\(nodePortBase + 9)"
            heartbeat_interval = 0.3
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
        (try? Child("grid-cli", args + ["--master", "http://127.0.0.1:\(masterPort)"]).wait(timeout: 30)) ?? (-1, "", "")
    }

    func masterGET(_ path: String) throws -> String {
        try String(contentsOf: URL(string: "http://127.0.0.1:\(masterPort)\(path)")!, encoding: .utf8)
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
}
