import EventEmitter
import Foundation
import GridAgent
import GridControl
import GridMaster
import Logging
import Synchronization
import Testing

final class FakeClock: Sendable {
    let now = Mutex<Int64>(1_764_374_400_000_000)
    func advance(seconds: Double) { now.withLock { $0 += Int64(seconds * 1e6) } }
}

@Suite("Master health and cluster state, agent config")
struct ControlPlaneUnitTests {
    func master(_ clock: FakeClock) -> Master {
        var options = EmitterOptions(producerName: "test")
        options.notice = { _ in }
        var config = MasterConfig()
        config.degradedAfterSeconds = 15
        config.offlineAfterSeconds = 30
        return Master(config: config, events: EventEmitter(storage: nil, options: options), logger: Logger(label: "t"), clock: { clock.now.withLock { $0 } })
    }

    @Test func healthThresholdsAndClusterStates() async throws {
        let clock = FakeClock()
        let m = master(clock)
        for i in 1...3 {
            try await m.register(agentId: "agent-00\(i)", hostname: "h", platform: "p", endpoint: "http://127.0.0.1:1", maxNodes: 2, nodes: [])
        }
        #expect(await m.status.state == "cluster_healthy")
        clock.advance(seconds: 10)
        try await m.heartbeat(agentId: "agent-001", nodeCount: 0, nodes: nil)
        try await m.heartbeat(agentId: "agent-002", nodeCount: 0, nodes: nil)
        clock.advance(seconds: 6)  // agent-003 silent 16 s: degraded
        await m.checkHealth()
        #expect(await m.agentList.first { $0.agentId == "agent-003" }?.health == .degraded)
        #expect(await m.status.state == "cluster_degraded")
        clock.advance(seconds: 15)  // agent-003 silent 31 s: offline; the others 21 s: degraded
        await m.checkHealth()
        #expect(await m.agentList.map(\.health) == [.degraded, .degraded, .offline])
        #expect(await m.status.state == "cluster_critical")
        try await m.heartbeat(agentId: "agent-001", nodeCount: 0, nodes: nil)
        try await m.heartbeat(agentId: "agent-002", nodeCount: 0, nodes: nil)
        try await m.heartbeat(agentId: "agent-003", nodeCount: 0, nodes: nil)
        #expect(await m.agentList.allSatisfy { $0.health == .healthy })
        #expect(await m.status.state == "cluster_healthy")
        // An unknown agent's heartbeat asks it to register again.
        do {
            try await m.heartbeat(agentId: "agent-404", nodeCount: 0, nodes: nil)
            Issue.record("accepted an unknown agent's heartbeat")
        } catch {
            #expect(error.status == 404)
            #expect(error.code == "unknown_agent")
        }
    }

    @Test func spawnIsRefusedClearly() async throws {
        let clock = FakeClock()
        let m = master(clock)
        try await m.register(agentId: "agent-001", hostname: "h", platform: "p", endpoint: "http://127.0.0.1:1", maxNodes: 0, nodes: [])
        for (agent, code) in [("agent-404", "unknown_agent"), ("agent-001", "agent_full"), ("bad id", "bad_request")] {
            do {
                _ = try await m.spawn(agentId: agent, nodeId: "node-1", port: 50000, storagePath: "/tmp/x", memoryLimitMb: 1)
                Issue.record("spawn on \(agent) succeeded")
            } catch {
                #expect(error.code == code, "\(agent): \(error.message)")
            }
        }
    }

    @Test func agentConfigParsesTheExampleAndRejectsMistakes() throws {
        let example = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("agent-config.example.toml").path
        let c = try AgentConfig.load(path: example)
        #expect(c.agentId == "agent-001")
        #expect(c.portMin == 50000 && c.portMax == 50999)
        #expect(c.maxRestarts == 3)
        #expect(c.heartbeatIntervalSeconds == 5)
        for bad in ["agent_id = agent-001", "bogus = 1", "[nope]", "max_storage_nodes = many", "port_range = \"9-1\"", "heartbeat_interval = 0"] {
            #expect(throws: AgentConfig.ParseError.self, "\(bad)") { try AgentConfig.parse(bad) }
        }
    }
}
