import EventEmitter
@testable import EventDaemon
import EventReplication
import Foundation
import GridEvents
import GridMaster
import Hummingbird
import HummingbirdTesting
import Logging
import Testing

@Suite("Prometheus /metrics, scraped and parsed with prometheus_client", .serialized)
struct MetricsTests {
    @Test func eventdCountsWhatItStoresAndShowsItsStore() throws {
        let daemon = try DaemonUnderTest("metrics")
        let emitter = EventEmitter(storage: daemon.socket, options: emitterOptions(daemon.dir, "metrics-test"))
        for i in 0..<200 { _ = emitter.emit(.agentHeartbeat(agentId: "agent-00\(i % 4)", storageNodeCount: i)) }
        for i in 0..<100 { _ = emitter.emit(.nodeCrashed(nodeId: "node-\(i)", agentId: "agent-001", exitCode: nil, signal: 9)) }
        #expect(emitter.flush(timeout: 10))
        emitter.close(timeout: 5)
        let lines = (0..<5).map { #"{"event_type":"deploy_finished","version":"1.\#($0)"}"# }.joined(separator: "\n")
        let posted = try http("POST", daemon.base + "/api/events", body: Data(lines.utf8))
        #expect(posted.status == 200, "\(posted.text)")

        let scrape = try http("GET", daemon.base + "/metrics")
        #expect(scrape.status == 200)
        #expect(scrape.headers["content-type"]?.hasPrefix("text/plain; version=0.0.4") == true)
        let m = try ParsedMetrics(scrape.text)
        #expect(m.value("grid_eventd_ingested_events_total", ["type": "agent_heartbeat"]) == 200)
        #expect(m.value("grid_eventd_ingested_events_total", ["type": "node_crashed"]) == 100)
        #expect(m.value("grid_eventd_ingested_events_total", ["type": "custom"]) == 5)
        #expect(m.value("grid_eventd_ingested_events_by_source_total", ["source": "socket"]) == 300)
        #expect(m.value("grid_eventd_ingested_events_by_source_total", ["source": "http"]) == 5)
        #expect((m.value("grid_eventd_ingested_bytes_total", ["source": "socket"]) ?? 0) > 300 * 40)
        #expect(m.type(ofFamily: "grid_eventd_ingested_events") == "counter")
        #expect(m.type(ofFamily: "grid_eventd_ack_latency_seconds") == "histogram")
        let count = try #require(m.value("grid_eventd_ack_latency_seconds_count"))
        #expect(count >= 2, "at least one socket batch and the HTTP request")
        #expect(m.value("grid_eventd_ack_latency_seconds_bucket", ["le": "+Inf"]) == count)
        let buckets = m.families["grid_eventd_ack_latency_seconds"]!.samples.filter { $0.name.hasSuffix("_bucket") }
            .sorted { (Double($0.labels["le"]!) ?? .infinity) < (Double($1.labels["le"]!) ?? .infinity) }.map(\.value)
        #expect(buckets == buckets.sorted(), "cumulative buckets")
        #expect((m.value("grid_eventd_ack_latency_seconds_sum") ?? -1) > 0)
        #expect(m.value("grid_eventd_stored_events") == 305)
        #expect(m.value("grid_eventd_segments", ["state": "active"]) == 1)
        #expect((m.value("grid_eventd_disk_bytes") ?? 0) > 0)
        #expect(m.value("grid_eventd_store_damage_total", ["kind": "read"]) == 0)
        #expect(m.value("grid_eventd_producer_connections") == 0, "the emitter closed its connection")
        // The job of the POST may still count as running for a moment after its answer: 0 or 1, never more.
        #expect((m.value("grid_eventd_writer_queue_depth") ?? -1) >= 0 && (m.value("grid_eventd_writer_queue_depth") ?? 9) <= 1)
        #expect(m.value("grid_eventd_retention_deleted_segments_total") == 0)
    }

    /// The grid-state checkpoints: none before the first; the one written at shutdown after a restart, with its
    /// bytes as the files in data/gridstate hold them.
    @Test func eventdShowsItsGridStateCheckpoints() throws {
        let dir = TempDir("metricscp")
        let first = try DaemonUnderTest("metricscp", dir: dir)
        let lines = (0..<20).map { #"{"event_type":"spawn_succeeded","node_id":"node-\#($0)","agent_id":"agent-001","pid":\#($0 + 10),"port":\#($0 + 9000)}"# }
        #expect(try http("POST", first.base + "/api/events", body: Data(lines.joined(separator: "\n").utf8)).status == 200)
        let before = try ParsedMetrics(try http("GET", first.base + "/metrics").text)
        #expect(before.value("grid_eventd_grid_state_checkpoints", ["state": "usable"]) == 0, "20 grid events: no checkpoint yet")
        #expect(before.value("grid_eventd_grid_state_checkpoint_bytes") == 0)
        first.child.kill(SIGTERM)  // writes the shutdown checkpoint

        let second = try DaemonUnderTest("metricscp", dir: dir)
        let m = try ParsedMetrics(try http("GET", second.base + "/metrics").text)
        #expect(m.type(ofFamily: "grid_eventd_grid_state_checkpoints") == "gauge")
        #expect(m.value("grid_eventd_grid_state_checkpoints", ["state": "usable"]) == 1)
        #expect(m.value("grid_eventd_grid_state_checkpoints", ["state": "unusable"]) == 0)
        let files = try FileManager.default.contentsOfDirectory(atPath: second.dataDir + "/gridstate")
        // Bytes on disk as the store counts them: allocated blocks.
        let onDisk = files.reduce(0) { sum, name in
            var st = stat()
            return sum + (stat(second.dataDir + "/gridstate/" + name, &st) == 0 ? Int(st.st_blocks) * 512 : 0)
        }
        #expect(onDisk > 0)
        #expect(m.value("grid_eventd_grid_state_checkpoint_bytes") == Double(onDisk), "\(files)")
    }

    @Test func eventdMetricsNeedTheTokenWhenOneIsSet() throws {
        let token = "interop-metrics-token-0123"
        let daemon = try DaemonUnderTest("metricstok", extra: ["--token", token])
        #expect(try http("GET", daemon.base + "/metrics").status == 401)
        #expect(try http("GET", daemon.base + "/metrics", headers: ["Authorization": "Bearer wrong-token-wrong-token"]).status == 401)
        let ok = try http("GET", daemon.base + "/metrics", headers: ["Authorization": "Bearer " + token])
        #expect(ok.status == 200)
        _ = try ParsedMetrics(ok.text)
    }

    @Test func masterShowsAgentsAndNodesByState() throws {
        let dir = TempDir("mmetrics")
        let port = freePort()
        let master = try ChildProcess(productPath("grid-master"), ["--listen", "127.0.0.1:\(port)"], log: dir.file("master.log"),
                                      environment: ["EVENT_STORAGE": "", "EVENT_SPOOL_DIR": dir.file("spool")])
        defer { master.kill(SIGTERM) }
        let base = "http://127.0.0.1:\(port)"
        let deadline = Date().addingTimeInterval(20)
        while (try? http("GET", base + "/api/status", timeout: 2)) == nil, Date() < deadline { usleep(50_000) }
        let register = """
            {"agent_id":"agent-001","hostname":"h1","platform":"linux","agent_endpoint":"http://127.0.0.1:1","max_storage_nodes":4,
             "nodes":[{"node_id":"node-1","port":1,"state":"running"},{"node_id":"node-2","port":2,"state":"running"},
                      {"node_id":"node-3","port":3,"state":"crashed"},{"node_id":"node-4","port":4,"state":"weird"}]}
            """
        #expect(try http("POST", base + "/api/agents/register", body: Data(register.utf8)).status == 200)
        let scrape = try http("GET", base + "/metrics")
        #expect(scrape.status == 200, "\(scrape.text)")
        let m = try ParsedMetrics(scrape.text)
        #expect(m.value("grid_master_agents", ["state": "healthy"]) == 1)
        #expect(m.value("grid_master_agents", ["state": "degraded"]) == 0)
        #expect(m.value("grid_master_agents", ["state": "offline"]) == 0)
        #expect(m.value("grid_master_nodes", ["state": "running"]) == 2)
        #expect(m.value("grid_master_nodes", ["state": "crashed"]) == 1)
        #expect(m.value("grid_master_nodes", ["state": "other"]) == 1)
        #expect(m.type(ofFamily: "grid_master_agents") == "gauge")
    }

    @Test func masterMetricsFollowTheTokenRule() async throws {
        var logger = Logger(label: "test")
        logger.logLevel = .critical
        let master = Master(config: MasterConfig(), events: EventEmitter(storage: nil), logger: logger)
        let open = Application(router: MasterHTTP.router(master, metrics: MasterMetrics(), token: nil, loopbackOnly: false))
        try await open.test(.router) { client in
            let r = try await client.execute(uri: "/metrics", method: .get)
            #expect(r.status == .forbidden, "beyond loopback without a token: refused")
        }
        let guarded = Application(router: MasterHTTP.router(master, metrics: MasterMetrics(), token: "t0123456789abcdef", loopbackOnly: false))
        try await guarded.test(.router) { client in
            #expect(try await client.execute(uri: "/metrics", method: .get).status == .unauthorized)
            let r = try await client.execute(uri: "/metrics", method: .get, headers: [.authorization: "Bearer t0123456789abcdef"])
            #expect(r.status == .ok)
            #expect(String(buffer: r.body).contains("grid_master_agents{state=\"healthy\"} 0"))
        }
    }
}

@Suite("Replication metrics from the replicator's and aggregator's stats")
struct ReplicationMetricsTests {
    @Test func lagAndPendingFramesAreGaugesPerHost() throws {
        let dir = TempDir("replmetrics")
        var config = DaemonConfig(dataDirectory: dir.file("data"))
        config.socketPath = dir.file("s.sock")
        config.metricsIntervalSeconds = 3600
        var logger = Logger(label: "test")
        logger.logLevel = .critical
        let daemon = GridEventDaemon(config: config, logger: logger)
        try daemon.start()
        defer { daemon.shutdown() }
        let store = try #require(daemon.store)
        let host = #"{"last_replicated_sequence":40,"host_head_sequence":52,"lag_frames":12,"lag_events":480,"lag_seconds":2.5,"last_delay_seconds":0.1,"frames":40,"events":1600}"#
        let aggregator = try JSONDecoder().decode(AggregatorStats.self, from: Data("""
            {"stream":"GRID_EVENTS","consumer":"aggregator-v","connected":true,"ready":true,"messages":40,"events":1600,"rejected":1,
             "held_back":0,"gaps_accepted":0,"consumer_remade":0,"rejections":[],"hosts":{"web-7":\(host)}}
            """.utf8))
        let replicator = try JSONDecoder().decode(ReplicatorStats.self, from: Data("""
            {"host_id":"web-7","stream":"GRID_EVENTS","subject":"grid.events.web-7","connected":true,"stream_ready":true,"cursor":40,
             "head_sequence":52,"pending_frames":12,"published_messages":40,"published_events":1600,"duplicates":0,"rewinds":2,
             "lost_to_retention":[]}
            """.utf8))
        let text = daemon.metrics.render(DaemonMetrics.Snapshot(
            stats: store.stats, recovery: store.recovery, connections: 0, liveStreams: 0, writerQueue: 0,
            replicator: replicator, aggregator: aggregator))
        let m = try ParsedMetrics(String(decoding: text, as: UTF8.self))
        #expect(m.value("grid_eventd_aggregation_lag_seconds", ["host": "web-7"]) == 2.5)
        #expect(m.value("grid_eventd_aggregation_lag_frames", ["host": "web-7"]) == 12)
        #expect(m.value("grid_eventd_aggregation_lag_events", ["host": "web-7"]) == 480)
        #expect(m.value("grid_eventd_aggregation_rejected_messages_total") == 1)
        #expect(m.value("grid_eventd_replication_pending_frames") == 12)
        #expect(m.value("grid_eventd_replication_rewinds_total") == 2)
        #expect(m.value("grid_eventd_replication_published_events_total") == 1600)
    }
}
