/// What happened: one case per catalogue type, with its typed fields. Times are microseconds since the epoch.
public enum GridEventKind: Sendable, Equatable {
    case agentRegistered(agentId: String, hostname: String, platform: String, agentEndpoint: String, maxStorageNodes: Int)
    case agentHeartbeat(agentId: String, storageNodeCount: Int)
    case agentDegraded(agentId: String, secondsSinceHeartbeat: Double)
    case agentOffline(agentId: String, lastSeen: Int64)
    case agentRecovered(agentId: String, downtimeSeconds: Double)
    case agentUnregistered(agentId: String)
    case spawnRequested(nodeId: String, agentId: String, port: Int, storagePath: String, memoryLimitMb: Int)
    case spawnSucceeded(nodeId: String, agentId: String, pid: Int, port: Int)
    case spawnFailed(nodeId: String, agentId: String, error: String)
    case stopRequested(nodeId: String, agentId: String)
    case stopSucceeded(nodeId: String, agentId: String)
    case stopFailed(nodeId: String, agentId: String, error: String)
    case nodeCrashed(nodeId: String, agentId: String, exitCode: Int?, signal: Int?)
    case nodeRestarted(nodeId: String, agentId: String, restartCount: Int, newPid: Int)
    case clusterHealthy(totalAgents: Int, healthyAgents: Int, totalNodes: Int, runningNodes: Int)
    case clusterDegraded(totalAgents: Int, healthyAgents: Int, reason: String)
    case clusterCritical(totalAgents: Int, healthyAgents: Int, reason: String)
    case storageMetrics(events: Int, bytesOnDisk: Int, ingestRate: Double, ackP99Micros: Int, residentBytes: Int)
    case eventsDropped(producerId: String, dropped: Int)
    /// A service's log record: fixed fields, metadata fields and entities.
    case log(LogEntry)
    /// A process's own event. `name` is 1-64 of `a-z 0-9 _` and not a catalogue name.
    case custom(name: String, fields: [String: FieldValue], entities: [String])

    public var type: EventType {
        switch self {
        case .agentRegistered: return .agentRegistered
        case .agentHeartbeat: return .agentHeartbeat
        case .agentDegraded: return .agentDegraded
        case .agentOffline: return .agentOffline
        case .agentRecovered: return .agentRecovered
        case .agentUnregistered: return .agentUnregistered
        case .spawnRequested: return .spawnRequested
        case .spawnSucceeded: return .spawnSucceeded
        case .spawnFailed: return .spawnFailed
        case .stopRequested: return .stopRequested
        case .stopSucceeded: return .stopSucceeded
        case .stopFailed: return .stopFailed
        case .nodeCrashed: return .nodeCrashed
        case .nodeRestarted: return .nodeRestarted
        case .clusterHealthy: return .clusterHealthy
        case .clusterDegraded: return .clusterDegraded
        case .clusterCritical: return .clusterCritical
        case .storageMetrics: return .storageMetrics
        case .eventsDropped: return .eventsDropped
        case .log: return .log
        case .custom: return .custom
        }
    }

    /// `spawn_failed`, or a custom event's own name.
    public var typeName: String {
        if case .custom(let name, _, _) = self { return name }
        return type.name
    }

    /// The catalogue fields in binary order (empty for custom events; see `customFields`).
    public var fieldValues: [FieldValue] {
        func s(_ v: String) -> FieldValue { .string(v) }
        func i(_ v: Int) -> FieldValue { .int(Int64(v)) }
        switch self {
        case let .agentRegistered(a, h, p, e, m): return [s(a), s(h), s(p), s(e), i(m)]
        case let .agentHeartbeat(a, n): return [s(a), i(n)]
        case let .agentDegraded(a, secs): return [s(a), .double(secs)]
        case let .agentOffline(a, last): return [s(a), .time(last)]
        case let .agentRecovered(a, down): return [s(a), .double(down)]
        case let .agentUnregistered(a): return [s(a)]
        case let .spawnRequested(n, a, port, path, mem): return [s(n), s(a), i(port), s(path), i(mem)]
        case let .spawnSucceeded(n, a, pid, port): return [s(n), s(a), i(pid), i(port)]
        case let .spawnFailed(n, a, e): return [s(n), s(a), s(e)]
        case let .stopRequested(n, a): return [s(n), s(a)]
        case let .stopSucceeded(n, a): return [s(n), s(a)]
        case let .stopFailed(n, a, e): return [s(n), s(a), s(e)]
        case let .nodeCrashed(n, a, code, sig): return [s(n), s(a), code.map(i) ?? .null, sig.map(i) ?? .null]
        case let .nodeRestarted(n, a, count, pid): return [s(n), s(a), i(count), i(pid)]
        case let .clusterHealthy(t, h, tn, rn): return [i(t), i(h), i(tn), i(rn)]
        case let .clusterDegraded(t, h, r): return [i(t), i(h), s(r)]
        case let .clusterCritical(t, h, r): return [i(t), i(h), s(r)]
        case let .storageMetrics(e, b, rate, p99, rss): return [i(e), i(b), .double(rate), i(p99), i(rss)]
        case let .eventsDropped(p, d): return [s(p), i(d)]
        case .log(let entry): return entry.fixedValues
        case .custom: return []
        }
    }

    /// All fields by name, in catalogue order (custom events: sorted by name; log events: the fixed fields present,
    /// then the metadata sorted by name).
    public var namedFields: [(name: String, value: FieldValue)] {
        if case .custom(_, let fields, _) = self {
            return fields.keys.sorted().map { ($0, fields[$0]!) }
        }
        if case .log(let entry) = self {
            let fixed = zip(type.fields, entry.fixedValues).filter { !($0.0.optional && $0.1 == .null) }.map { ($0.0.name, $0.1) }
            return fixed + entry.metadata.keys.sorted().map { ($0, entry.metadata[$0]!) }
        }
        return zip(type.fields, fieldValues).map { ($0.name, $1) }
    }

    /// The entities this event mentions, in order: node before agent, `cluster` for cluster events,
    /// `storage` for the daemon's metrics.
    public var entities: [String] {
        switch self {
        case .clusterHealthy, .clusterDegraded, .clusterCritical: return ["cluster"]
        case .storageMetrics: return ["storage"]
        case .custom(_, _, let entities): return entities
        case .log(let entry): return entry.entities
        default:
            var out: [String] = []
            for (spec, value) in zip(type.fields, fieldValues) where spec.isEntity {
                if case .string(let id) = value { out.append(id) }
            }
            return out
        }
    }

    /// Builds a catalogue event from named fields, checking every field's presence and kind.
    /// - Throws: `EventError` naming the missing or mistyped field.
    public init(type: EventType, fields: [String: FieldValue]) throws(EventError) {
        guard type != .custom else { throw EventError("use .custom(name:fields:entities:) for custom events") }
        if type == .log {
            self = .log(try LogEntry.make(fields: fields.keys.sorted().map { ($0, fields[$0]!) }, entities: nil))
            return
        }
        for key in fields.keys where !type.fields.contains(where: { $0.name == key }) {
            throw EventError("\(type.name) has no field \"\(key)\"; its fields are \(type.fields.map(\.name).joined(separator: ", "))")
        }
        var values: [FieldValue] = []
        for spec in type.fields {
            let v = fields[spec.name] ?? .null
            values.append(try GridEventKind.coerce(v, to: spec, in: type))
        }
        self = try GridEventKind(type: type, values: values)
    }

    static func coerce(_ v: FieldValue, to spec: FieldSpec, in type: EventType) throws(EventError) -> FieldValue {
        if v == .null {
            if spec.optional { return .null }
            throw EventError("\(type.name) needs field \"\(spec.name)\" (\(spec.kind.rawValue))")
        }
        switch spec.kind {
        case .string:
            if case .string = v { return v }
        case .int:
            if let i = v.intValue { return .int(i) }
        case .double:
            if let d = v.doubleValue { return .double(d) }
        case .bool:
            if case .bool = v { return v }
        case .time:
            if case .time = v { return v }
            if case .string(let s) = v, let t = TimeText.parse(s) { return .time(t) }
            if let i = v.intValue { return .time(i) }
        }
        throw EventError("field \"\(spec.name)\" of \(type.name) must be \(spec.kind.rawValue), got \(v)")
    }

    /// Builds a catalogue event from values in binary order (already of the right kinds).
    init(type: EventType, values v: [FieldValue]) throws(EventError) {
        guard v.count == type.fields.count else { throw EventError("\(type.name) has \(type.fields.count) fields, got \(v.count)") }
        func s(_ k: Int) throws(EventError) -> String {
            guard case .string(let x) = v[k] else { throw EventError("field \(type.fields[k].name) must be a string") }
            return x
        }
        func i(_ k: Int) throws(EventError) -> Int {
            guard case .int(let x) = v[k], let n = Int(exactly: x) else { throw EventError("field \(type.fields[k].name) must be an integer") }
            return n
        }
        func d(_ k: Int) throws(EventError) -> Double {
            guard let x = v[k].doubleValue else { throw EventError("field \(type.fields[k].name) must be a number") }
            return x
        }
        func t(_ k: Int) throws(EventError) -> Int64 {
            guard case .time(let x) = v[k] else { throw EventError("field \(type.fields[k].name) must be a time") }
            return x
        }
        func oi(_ k: Int) throws(EventError) -> Int? { v[k] == .null ? nil : try i(k) }
        switch type {
        case .agentRegistered: self = .agentRegistered(agentId: try s(0), hostname: try s(1), platform: try s(2), agentEndpoint: try s(3), maxStorageNodes: try i(4))
        case .agentHeartbeat: self = .agentHeartbeat(agentId: try s(0), storageNodeCount: try i(1))
        case .agentDegraded: self = .agentDegraded(agentId: try s(0), secondsSinceHeartbeat: try d(1))
        case .agentOffline: self = .agentOffline(agentId: try s(0), lastSeen: try t(1))
        case .agentRecovered: self = .agentRecovered(agentId: try s(0), downtimeSeconds: try d(1))
        case .agentUnregistered: self = .agentUnregistered(agentId: try s(0))
        case .spawnRequested: self = .spawnRequested(nodeId: try s(0), agentId: try s(1), port: try i(2), storagePath: try s(3), memoryLimitMb: try i(4))
        case .spawnSucceeded: self = .spawnSucceeded(nodeId: try s(0), agentId: try s(1), pid: try i(2), port: try i(3))
        case .spawnFailed: self = .spawnFailed(nodeId: try s(0), agentId: try s(1), error: try s(2))
        case .stopRequested: self = .stopRequested(nodeId: try s(0), agentId: try s(1))
        case .stopSucceeded: self = .stopSucceeded(nodeId: try s(0), agentId: try s(1))
        case .stopFailed: self = .stopFailed(nodeId: try s(0), agentId: try s(1), error: try s(2))
        case .nodeCrashed: self = .nodeCrashed(nodeId: try s(0), agentId: try s(1), exitCode: try oi(2), signal: try oi(3))
        case .nodeRestarted: self = .nodeRestarted(nodeId: try s(0), agentId: try s(1), restartCount: try i(2), newPid: try i(3))
        case .clusterHealthy: self = .clusterHealthy(totalAgents: try i(0), healthyAgents: try i(1), totalNodes: try i(2), runningNodes: try i(3))
        case .clusterDegraded: self = .clusterDegraded(totalAgents: try i(0), healthyAgents: try i(1), reason: try s(2))
        case .clusterCritical: self = .clusterCritical(totalAgents: try i(0), healthyAgents: try i(1), reason: try s(2))
        case .storageMetrics: self = .storageMetrics(events: try i(0), bytesOnDisk: try i(1), ingestRate: try d(2), ackP99Micros: try i(3), residentBytes: try i(4))
        case .eventsDropped: self = .eventsDropped(producerId: try s(0), dropped: try i(1))
        case .log:
            let entry = LogEntry(level: try s(0), label: try s(1), message: try s(2), source: v[3] == .null ? nil : try s(3),
                                 file: v[4] == .null ? nil : try s(4), line: v[5] == .null ? nil : try i(5))
            try entry.validate()
            self = .log(entry)
        case .custom: throw EventError("custom events carry named fields")
        }
    }
}

/// A malformed event: missing or mistyped field, bad id, bytes that do not decode.
public struct EventError: Error, Sendable, Equatable, CustomStringConvertible {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}
