import EventQuery
import EventStore
import GridEvents
import Hummingbird

/// The dashboard's views of the grid: the agents and nodes (now or at a moment) and the events-per-type chart.
enum GridRoutes {
    static func addRoutes(to router: Router<BasicRequestContext>, api: APIContext) {
        router.get("/api/grid/agents") { request, _ in
            // `at`: the state as of that moment (every event with a timestamp at or before it).
            let at = try HTTPAPI.adapt { () throws(ParameterError) in try QueryParameters.time(HTTPAPI.lookup(request), "at") }
            return try await api.answer {
                let states: (agents: [AgentState], nodes: [NodeState])
                do throws(GridStateError) {
                    if let at {
                        states = try api.gridState.states(at: at)
                    } else {
                        states = api.gridState.states()
                    }
                } catch {
                    throw APIError(.historyDeleted, error.description)
                }
                return try AgentsAnswer(states.agents, nodes: states.nodes, at: at)
            }
        }
        router.get("/api/timeline") { request, _ in
            // Events per type per bucket over the last `minutes` (the dashboard's chart).
            let minutes = try HTTPAPI.intParameter(request, "minutes", default: 60, range: 1...10_080)
            let buckets = try HTTPAPI.intParameter(request, "buckets", default: 60, range: 1...500)
            let span = Int64(minutes) * 60_000_000
            let width = max(1, span / Int64(buckets))
            let start = api.now() - width * Int64(buckets)
            return try await api.answer {
                TimelineAnswer(start: JSONTime(start), bucketSeconds: Double(width) / 1e6, buckets: buckets,
                               series: JSONObject(timeline(api.store, from: start, width: width, buckets: buckets)))
            }
        }
    }

    /// The count of each type in each of `buckets` buckets of `width` µs from `start`, types in code order, those
    /// with no event in any bucket left out. Two binary searches per bucket and segment, no record read, and no cap
    /// on how many are counted.
    static func timeline(_ store: EventStore, from start: Int64, width: Int64, buckets: Int) -> [(key: String, value: [Int])] {
        store.typeCounts().keys.sorted().compactMap { code in
            let counts = (0..<buckets).map { i in
                let from = start + Int64(i) * width
                return store.count(type: code, in: from..<(from + width))
            }
            guard counts.contains(where: { $0 > 0 }) else { return nil }
            return (EventType(rawValue: code)?.name ?? String(code), counts)
        }
    }
}
