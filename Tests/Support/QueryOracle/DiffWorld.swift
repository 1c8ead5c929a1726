import EventStore
import Foundation
import GridEvents
import EventQuery

/// A small deterministic random generator (xorshift), so a seed replays a run exactly.
public struct SeededRandom: Sendable {
    public var state: UInt64
    public init(seed: UInt64) { state = seed | 1 }
    public mutating func next() -> UInt64 {
        state ^= state << 13
        state ^= state >> 7
        state ^= state << 17
        return state
    }
}

/// Settings of a differential run, from the environment: `DIFFTEST_SEED` replays one run, `DIFFTEST_SECONDS`
/// keeps building new worlds with new seeds until that many seconds have passed (`make difftest SECONDS=600`).
public enum DiffSettings {
    public static func env(_ name: String) -> String? {
        guard let v = ProcessInfo.processInfo.environment[name], !v.isEmpty else { return nil }
        return v
    }

    /// The seed of the first world: `DIFFTEST_SEED`, or a fresh random one (printed, so a failure replays).
    public static let firstSeed: UInt64 = env("DIFFTEST_SEED").flatMap { UInt64($0) } ?? UInt64.random(in: 1...(UInt64.max >> 1))
    /// Seconds to keep going with new seeds; 0 runs one world.
    public static let seconds: Double = env("DIFFTEST_SECONDS").flatMap { Double($0) } ?? 0
}

/// How big a generated world is.
public struct DiffShape: Sendable {
    public init(events: Int, hotEvents: Int, agents: Int, nodes: Int, segmentCapacity: Int) {
        self.events = events
        self.hotEvents = hotEvents
        self.agents = agents
        self.nodes = nodes
        self.segmentCapacity = segmentCapacity
    }

    /// Events of the ordinary population.
    public var events: Int
    /// Events of one hot agent (`agent-000`), mostly `spawn_requested`: above 100,000 it crosses the engine's
    /// read caps, as an entity and as a type.
    public var hotEvents: Int
    public var agents: Int
    public var nodes: Int
    public var segmentCapacity: Int

    /// The world `make test` checks: crosses the 256-event chunk, the 100,000-event caps, many segments.
    public static let standard = DiffShape(
        events: DiffSettings.env("DIFFTEST_EVENTS").flatMap { Int($0) } ?? 24_000,
        hotEvents: DiffSettings.env("DIFFTEST_HOT").flatMap { Int($0) } ?? 103_000,
        agents: 60, nodes: 600, segmentCapacity: 2 << 20)
    /// Smaller worlds for the long run's many seeds.
    public static func random(_ rng: inout SeededRandom) -> DiffShape {
        let big = rng.next() % 4 == 0
        return DiffShape(
            events: 2_000 + Int(rng.next() % 30_000), hotEvents: big ? 101_000 + Int(rng.next() % 10_000) : Int(rng.next() % 3_000),
            agents: 3 + Int(rng.next() % 80), nodes: 5 + Int(rng.next() % 900),
            segmentCapacity: [256 << 10, 1 << 20, 4 << 20][Int(rng.next() % 3)])
    }
}

/// A store and the list of events it must hold, generated from one seed: types and entities with skewed
/// popularity, a hot agent, equal timestamps, events arriving out of time order and late, batches resent,
/// custom events, several producers. The list is the oracle: every answer of the engine is compared with one
/// computed from it by plain scans.
public final class DiffWorld: @unchecked Sendable {
    public let seed: UInt64
    public let shape: DiffShape
    public let dir: String
    public private(set) var store: EventStore
    public private(set) var engine: QueryEngine
    /// Every distinct event in arrival order (a resent event adds nothing: the first copy is the one stored).
    public private(set) var events: [GridEvent] = []
    private var known = Set<String>()
    /// The translator's clock: the newest moment of the world.
    public let now: Int64
    public let start: Int64
    public let agents: [String]
    public let nodes: [String]
    public static let hotAgent = "agent-000"
    public static let customNames = ["deploy_finished", "cache_miss", "backup_done"]
    public let producers: [String]
    var rng: SeededRandom
    private var sequence: UInt64 = 0

    public static let day: Int64 = 86_400_000_000

    /// A world of `shape` from `seed`, its newest events at `now` (by default a moment between a Wednesday and a
    /// Saturday of 2026-11, so that "this week" and "last week" both hold events).
    /// `maxBytes`: retention by size (applied by `compact()`); the oracle keeps every event regardless.
    public init(seed: UInt64, shape: DiffShape, now fixedNow: Int64? = nil, maxBytes: Int? = nil) throws {
        self.seed = seed
        self.shape = shape
        self.maxBytes = maxBytes
        rng = SeededRandom(seed: seed)
        let monday: Int64 = 1_795_392_000_000_000  // 2026-11-23T00:00:00Z, a Monday
        let offset = Int64(rng.next() % UInt64(4 * Self.day))
        now = fixedNow ?? monday + 2 * Self.day + offset
        start = now - 8 * Self.day
        agents = (1...shape.agents).map { i in "agent-" + String(format: "%03d", i) }
        nodes = (1...shape.nodes).map { "node-\($0)" }
        producers = (0..<5).map { _ in
            let s = String(UInt64.random(in: 0...UInt64.max) & 0xFFFF_FFFF_FFFF, radix: 16)
            return String(repeating: "0", count: 12 - s.count) + s
        }
        dir = NSTemporaryDirectory() + "difftest-\(getpid())-\(seed)-\(UInt32.random(in: 0...UInt32.max))"
        store = try EventStore.open(at: dir, options: Self.options(shape, maxBytes))
        engine = QueryEngine(store: store)
        try fill()
    }

    deinit {
        store.close()
        try? FileManager.default.removeItem(atPath: dir)
    }

    public var description: String {
        "seed \(seed) (\(events.count) events, hot \(shape.hotEvents), \(store.stats.segments) segments; replay with DIFFTEST_SEED=\(seed))"
    }

    // MARK: Generating

    private func below(_ n: Int) -> Int { Int(rng.next() % UInt64(max(1, n))) }

    /// A Zipf-like pick from `0..<n`: low indices are much more popular.
    private func zipf(_ n: Int) -> Int {
        let u = Double(rng.next() % 1_000_000) / 1_000_000
        return min(n - 1, max(0, Int(pow(Double(n) + 1, u)) - 1))
    }

    /// The catalogue types in a popularity order of this seed's own (custom events among them).
    private lazy var typeOrder: [EventType] = {
        var types = EventType.allCases.filter { $0 != .eventsDropped }
        for i in types.indices.reversed() { types.swapAt(i, Int(rng.next() % UInt64(i + 1))) }
        return types
    }()

    func nextId(_ typeName: String) -> String {
        sequence += 1
        return GridEvent.makeId(typeName: typeName, producerTag: producers[Int(sequence % 5)], sequence: sequence)
    }

    func kind(_ type: EventType, agent: String, node: String) -> GridEventKind {
        var r = rng
        defer { rng = r }
        func n(_ k: Int) -> Int { Int(r.next() % UInt64(k)) }
        // Text for the word index: shared words, a phrase and its reverse, case, non-ASCII, and two words longer
        // than the index tells apart (64 bytes) that share their first 64.
        let long = String(repeating: "x", count: 70)
        let errors = ["disk full on /dev/sda1", "connection refused", "port 50051 already in use", "out of memory",
                      "Disk FULL: /var/lib/grid", "refused connection to 10.0.0.7:7100", "Zugriff verweigert: ÜBERGRÖSSE bei Ärger", "İSTANBUL cafe\u{301}",
                      "token \(long)a expired", "token \(long)b expired", "read-only file system (disk full?)"]
        switch type {
        case .agentRegistered:
            return .agentRegistered(agentId: agent, hostname: "host-\(agent)", platform: "linux", agentEndpoint: "10.0.0.\(n(250)):7100", maxStorageNodes: 8 + n(24))
        case .agentHeartbeat: return .agentHeartbeat(agentId: agent, storageNodeCount: n(32))
        case .agentDegraded: return .agentDegraded(agentId: agent, secondsSinceHeartbeat: 15 + Double(n(15)))
        case .agentOffline: return .agentOffline(agentId: agent, lastSeen: start + Int64(n(1000)))
        case .agentRecovered: return .agentRecovered(agentId: agent, downtimeSeconds: Double(n(600)))
        case .agentUnregistered: return .agentUnregistered(agentId: agent)
        case .spawnRequested: return .spawnRequested(nodeId: node, agentId: agent, port: 50000 + n(1000), storagePath: "/data/\(node)", memoryLimitMb: 2048)
        case .spawnSucceeded: return .spawnSucceeded(nodeId: node, agentId: agent, pid: 1000 + n(60000), port: 50000 + n(1000))
        case .spawnFailed: return .spawnFailed(nodeId: node, agentId: agent, error: errors[n(errors.count)])
        case .stopRequested: return .stopRequested(nodeId: node, agentId: agent)
        case .stopSucceeded: return .stopSucceeded(nodeId: node, agentId: agent)
        case .stopFailed: return .stopFailed(nodeId: node, agentId: agent, error: errors[n(errors.count)])
        case .nodeCrashed: return n(2) == 0 ? .nodeCrashed(nodeId: node, agentId: agent, exitCode: nil, signal: 9) : .nodeCrashed(nodeId: node, agentId: agent, exitCode: 1 + n(3), signal: nil)
        case .nodeRestarted: return .nodeRestarted(nodeId: node, agentId: agent, restartCount: 1 + n(5), newPid: 1000 + n(60000))
        case .clusterHealthy: return .clusterHealthy(totalAgents: agents.count, healthyAgents: agents.count, totalNodes: nodes.count, runningNodes: n(nodes.count))
        case .clusterDegraded: return .clusterDegraded(totalAgents: agents.count, healthyAgents: n(agents.count), reason: "agents not healthy")
        case .clusterCritical: return .clusterCritical(totalAgents: agents.count, healthyAgents: 0, reason: "majority offline")
        case .storageMetrics: return .storageMetrics(events: n(1_000_000), bytesOnDisk: n(1 << 30), ingestRate: Double(n(10_000)), ackP99Micros: n(5000), residentBytes: n(1 << 28))
        case .eventsDropped: return .eventsDropped(producerId: "p-\(n(9))", dropped: 1 + n(100))
        case .log:
            return .log(LogEntry(level: LogEntry.levels[n(LogEntry.levels.count)], label: "grid-agent", message: "restarting \(node): \(errors[n(errors.count)])",
                                 metadata: ["node_id": .string(node), "attempt": .int(Int64(n(5))), "detail": .string(errors[n(errors.count)])],
                                 entities: n(2) == 0 ? [node] : [agent, node]))
        case .custom:
            let name = Self.customNames[n(Self.customNames.count)]
            return .custom(name: name, fields: ["version": .string("1.\(n(9))"), "ok": .bool(n(2) == 0)],
                           entities: n(3) == 0 ? [agent] : [agent, node])
        }
    }

    /// Generates the world's events and appends them, in batches of random sizes, mostly in time order with
    /// local disorder, some late, some resent.
    private func fill() throws {
        let total = shape.events + shape.hotEvents
        let span = now - start
        var list: [GridEvent] = []
        list.reserveCapacity(total)
        var burst = 0
        var burstTime: Int64 = 0
        var hotLeft = shape.hotEvents
        for i in 0..<total {
            var ts = start + span * Int64(i) / Int64(total) + Int64(below(1000))
            if burst > 0 {
                ts = burstTime
                burst -= 1
            } else if below(400) == 0 {
                burst = 20 + below(60)  // events sharing one timestamp to the microsecond
                burstTime = ts
            } else if below(3) == 0 {
                ts = ts / 1_000_000 * 1_000_000  // whole seconds: neighbours collide
            }
            let remaining = total - i
            let hot = hotLeft > 0 && below(remaining) < hotLeft
            let kindValue: GridEventKind
            if hot {
                hotLeft -= 1
                // Mostly one node-lifecycle type, so that a type list (one the grid state reads) crosses the caps
                // too; the first nodes it names appear nowhere later, so only a read of the oldest finds them.
                let type: EventType = below(100) < 97 ? .spawnRequested : typeOrder[below(typeOrder.count)]
                let node = i < total / 200 ? "node-early-\(below(10))" : nodes[zipf(nodes.count)]
                kindValue = kind(type, agent: Self.hotAgent, node: node)
            } else {
                let type = typeOrder[zipf(typeOrder.count)]
                kindValue = kind(type, agent: agents[zipf(agents.count)], node: nodes[zipf(nodes.count)])
            }
            list.append(GridEvent(id: nextId(kindValue.typeName), timestamp: ts, kind: kindValue))
        }
        // Arrival: shuffled within windows of 64; 1% arrives late (after a few more batches).
        for s in stride(from: 0, to: list.count, by: 64) {
            let e = min(s + 64, list.count)
            for i in s..<e { list.swapAt(i, s + below(e - s)) }
        }
        var late: [(due: Int, event: GridEvent)] = []
        var resent: [[GridEvent]] = []
        var i = 0
        var batchNumber = 0
        while i < list.count || !late.isEmpty {
            let size = 1 + (below(10) == 0 ? below(2000) : below(300))
            var batch: [GridEvent] = []
            while batch.count < size, i < list.count {
                if below(100) == 0 { late.append((batchNumber + 1 + below(40), list[i])) } else { batch.append(list[i]) }
                i += 1
            }
            let due = late.filter { $0.due <= batchNumber || i >= list.count }
            late.removeAll { $0.due <= batchNumber || i >= list.count }
            batch += due.map(\.event)
            if !batch.isEmpty {
                try append(batch)
                if below(50) == 0 { resent.append(batch) }
            }
            if below(30) == 0, !resent.isEmpty { try append(resent.removeFirst()) }  // a resend after a lost ack
            batchNumber += 1
        }
        for batch in resent { try append(batch) }
    }

    /// Appends a batch to the store and to the oracle (an id already stored adds nothing).
    public func append(_ batch: [GridEvent]) throws {
        var start = 0
        while start < batch.count {
            // Split batches that would not fit a small segment.
            let end = min(batch.count, start + max(1, shape.segmentCapacity / 1024))
            try store.append(batch[start..<end].flatMap { $0.records() })
            start = end
        }
        for e in batch where known.insert(e.id).inserted { events.append(e) }
        rows = nil
        ordered = nil
        adjacencyCache = nil
    }

    /// New events for appending while a reader pages: some newer than everything, some in the middle.
    public func freshEvents(_ count: Int) -> [GridEvent] {
        (0..<count).map { _ in
            let ts = below(2) == 0 ? now + Int64(below(1_000_000)) : start + Int64(below(Int(now - start)))
            let k = kind(typeOrder[zipf(typeOrder.count)], agent: agents[zipf(agents.count)], node: nodes[zipf(nodes.count)])
            return GridEvent(id: nextId(k.typeName), timestamp: ts, kind: k)
        }
    }

    /// Writes index files and compacts every sealed segment.
    public func compact() throws {
        while try store.runMaintenance().didWork {}
    }

    /// Closes the store, so that another owner (a daemon) can open the directory; the oracle keeps working.
    public func closeStore() {
        store.close()
    }

    /// Closes and opens the store again (index files mapped, the active segment scanned).
    public func reopen() throws {
        store.close()
        store = try EventStore.open(at: dir, options: Self.options(shape, maxBytes))
        engine = QueryEngine(store: store)
    }

    public let maxBytes: Int?

    static func options(_ shape: DiffShape, _ maxBytes: Int?) -> StoreOptions {
        var options = GridText.options(StoreOptions(segmentCapacity: shape.segmentCapacity))
        options.backgroundMaintenance = false
        options.maxBytes = maxBytes
        return options
    }

    // MARK: The oracle's view

    /// One event as the oracle sees it, in arrival order (a class: the oracle filters many rows per check).
    public final class Row {
        public let index: Int
        public let event: GridEvent
        public let timestamp: Int64
        public let type: EventType
        public let typeName: String
        public let entities: Set<String>
        public let agent: String?
        public let node: String?
        /// The words of each string field value (the oracle's own tokenizer, `oracleWords`).
        public let fieldWords: [[String]]

        init(index: Int, event: GridEvent) {
            self.index = index
            self.event = event
            timestamp = event.timestamp
            type = event.type
            typeName = event.typeName
            entities = Set(event.entities)
            var agent: String?
            var node: String?
            for (name, value) in event.kind.namedFields {
                if case .string(let s) = value {
                    if name == "agent_id" { agent = s }
                    if name == "node_id" { node = s }
                }
            }
            self.agent = agent
            self.node = node
            fieldWords = event.kind.namedFields.compactMap { field in
                if case .string(let s) = field.value { return DiffWorld.oracleWords(s) }
                return nil
            }
        }
    }

    private var rows: [Row]?
    private var ordered: [Row]?
    private var adjacencyCache: [String: [OracleEdge]]?

    /// The rows in time order (ties by arrival): the order the store keeps.
    public var timeOrdered: [Row] {
        if let ordered { return ordered }
        let made = table.sorted { $0.timestamp != $1.timestamp ? $0.timestamp < $1.timestamp : $0.index < $1.index }
        ordered = made
        return made
    }

    /// Every node's edges (see `adjacency()`), built once per state of the world.
    public var graph: [String: [OracleEdge]] {
        if let adjacencyCache { return adjacencyCache }
        let made = adjacency()
        adjacencyCache = made
        return made
    }

    public var table: [Row] {
        if let rows { return rows }
        let made = events.enumerated().map { Row(index: $0, event: $1) }
        rows = made
        return made
    }
}
