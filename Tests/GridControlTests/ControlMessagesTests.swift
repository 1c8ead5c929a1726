import GridControl
import GridEvents
import Testing

@Suite struct ControlMessagesTests {
    func parse(_ text: String) throws -> JSONValue { try JSONValue.parse(Array(text.utf8), limit: 1 << 20) }

    @Test func requestsRoundTripThroughTheirJSON() throws {
        let nodes = [NodeReport(nodeId: "node-1", port: 9001, storagePath: "/d/1", pid: 42, state: "running", restartCount: 2),
                     NodeReport(nodeId: "node-2", port: 9002, storagePath: "/d/\"2\"", pid: nil, state: "starting")]
        let register = RegisterRequest(agentId: "agent-001", hostname: "h", platform: "linux", agentEndpoint: "http://127.0.0.1:7001",
                                       maxStorageNodes: 8, nodes: nodes)
        #expect(try RegisterRequest(parse(register.json)) == register)
        let beat = HeartbeatRequest(storageNodeCount: 2, nodes: nodes)
        #expect(try HeartbeatRequest(parse(beat.json)) == beat)
        #expect(try HeartbeatRequest(parse("{}")) == HeartbeatRequest(storageNodeCount: 0, nodes: nil))
        let spawn = SpawnRequest(agentId: "agent-001", nodeId: "node-3", port: 9003, storagePath: "/d/3", memoryLimitMb: 256)
        #expect(try SpawnRequest(parse(spawn.json), needsAgent: true) == spawn)
        var toAgent = spawn
        toAgent.agentId = nil
        #expect(try SpawnRequest(parse(toAgent.json), needsAgent: false) == toAgent)
        let stop = StopRequest(agentId: "agent-001", nodeId: "node-3")
        #expect(try StopRequest(parse(stop.json), needsAgent: true) == stop)
    }

    @Test func missingKeysAreA400NamingTheKey() throws {
        #expect(throws: ControlError.self) { try SpawnRequest(parse("{\"node_id\":\"n\",\"port\":1,\"storage_path\":\"/p\"}"), needsAgent: true) }
        do {
            _ = try SpawnRequest(parse("{\"agent_id\":\"a\",\"node_id\":\"n\",\"storage_path\":\"/p\"}"), needsAgent: true)
            Issue.record("a spawn without port was read")
        } catch let error as ControlError {
            #expect(error.status == 400 && error.code == "bad_request" && error.message.contains("\"port\""))
        }
        let body = try parse(ControlError(status: 404, code: "unknown_agent", message: "agent x").json)
        #expect(body["error"]?["code"]?.stringValue == "unknown_agent")
        #expect(body["error"]?["message"]?.stringValue == "agent x")
    }

    @Test func routes() {
        #expect(ControlRoute.heartbeat("agent-1") == "/api/agents/agent-1/heartbeat")
        #expect(ControlRoute.unregister("agent-1") == "/api/agents/agent-1/unregister")
    }
}
