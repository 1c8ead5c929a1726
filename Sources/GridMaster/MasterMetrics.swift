import CoreMetrics
import GridBase
import GridControl
import Hummingbird
import Metrics
import NIOCore
import Prometheus

/// grid-master's Prometheus metrics (`GET /metrics`), through swift-metrics with swift-prometheus as the backend
/// on a registry of its own: agents by health, nodes by state (as the agents last reported them), the cluster
/// state. Read from the master at each scrape.
public final class MasterMetrics: Sendable {
    let registry = PrometheusCollectorRegistry()
    let factory: PrometheusMetricsFactory

    /// Node states as agents report them; any other state is counted as `other`, so the label stays bounded.
    static let nodeStates = ["starting", "running", "restarted", "crashed", "failed", "stopping", "stopped"]

    public init() {
        factory = PrometheusMetricsFactory(registry: registry)
    }

    /// The text exposition after reading the master.
    public func render(_ master: Master) async -> [UInt8] {
        let agents = await master.agentList
        let status = await master.status
        for health in [AgentRecord.Health.healthy, .degraded, .offline] {
            CoreMetrics.Gauge(label: "grid_master_agents", dimensions: [("state", health.rawValue)], factory: factory)
                .record(agents.filter { $0.health == health }.count)
        }
        var nodes: [String: Int] = [:]
        for a in agents {
            for n in a.nodes.values { nodes[Self.nodeStates.contains(n.state) ? n.state : "other", default: 0] += 1 }
        }
        for state in Self.nodeStates + ["other"] {
            CoreMetrics.Gauge(label: "grid_master_nodes", dimensions: [("state", state)], factory: factory).record(nodes[state] ?? 0)
        }
        for state in ["cluster_healthy", "cluster_degraded", "cluster_critical"] {
            CoreMetrics.Gauge(label: "grid_master_cluster_state", dimensions: [("state", String(state.dropFirst(8)))], factory: factory)
                .record(status.state == state ? 1 : 0)
        }
        var out: [UInt8] = []
        registry.emit(into: &out)
        return out
    }
}

extension MasterHTTP {
    /// `GET /metrics`. With a token, it must come as `Authorization: Bearer <token>` (checked for every route by
    /// `MasterTokenMiddleware`); without one, a master that listens beyond loopback refuses to show its metrics (403),
    /// as grid-eventd refuses to serve beyond loopback without `--token`.
    static func addMetricsRoute(to router: Router<BasicRequestContext>, _ master: Master, _ metrics: MasterMetrics,
                                token: String?, loopbackOnly: Bool) {
        router.get("/metrics") { _, _ in
            if token == nil, !loopbackOnly {
                return error(ControlError(status: 403, code: "forbidden", message: "grid-master listens beyond loopback: start it with --token to serve /metrics"))
            }
            return Response(status: .ok, headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
                            body: ResponseBody(byteBuffer: ByteBuffer(bytes: await metrics.render(master))))
        }
    }
}
