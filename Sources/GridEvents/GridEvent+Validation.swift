#if canImport(Glibc)
import Glibc
#endif

extension GridEvent {
    /// The checks of `validate()`, in the same order and with the same messages, for an event not yet made into a
    /// `GridEvent`: `id` nil stands for the id the emitter makes (`event-<type name>-<tag>-<sequence>`, valid
    /// once the type name is). Builds no arrays for catalogue events: the emitter runs it on every event it sends.
    public static func validate(kind: GridEventKind, id: String?) throws(EventError) {
        if let id {
            try validateId(id, what: "event id")
            guard hasTypePrefix(id, kind.typeName) else {
                throw EventError("event id \(id) must start with event-\(kind.typeName)-")
            }
        }
        if case .custom(let name, let fields, let entities) = kind {
            try validateCustomName(name)
            guard fields.count <= Limits.maxCustomFields else {
                throw EventError("custom event \(name) has \(fields.count) fields; the limit is \(Limits.maxCustomFields)")
            }
            for key in fields.keys { try validateCustomName(key, what: "field name") }
            guard entities.count <= 32 else { throw EventError("custom event \(name) mentions \(entities.count) entities; the limit is 32") }
            for entity in entities { try validateId(entity, what: "entity id") }
            for (name, value) in kind.namedFields {
                if case .string(let s) = value, s.utf8.count > Limits.maxStringField {
                    throw EventError("field \(name) is \(s.utf8.count) bytes; the limit is \(Limits.maxStringField)")
                }
                if case .double(let d) = value, !d.isFinite { throw EventError("field \(name) is not a finite number") }
            }
            return
        }
        if case .log(let entry) = kind {
            try entry.validate()
            for (name, value) in kind.namedFields {
                if case .string(let s) = value, s.utf8.count > Limits.maxStringField {
                    throw EventError("field \(name) is \(s.utf8.count) bytes; the limit is \(Limits.maxStringField)")
                }
                if case .double(let d) = value, !d.isFinite { throw EventError("field \(name) is not a finite number") }
            }
            return
        }
        // Entities first (node before agent), then the fields in catalogue order, as `validate()` does.
        @inline(__always) func entity(_ e: String) throws(EventError) { try validateId(e, what: "entity id") }
        @inline(__always) func text(_ name: String, _ s: String) throws(EventError) {
            if s.utf8.count > Limits.maxStringField {
                throw EventError("field \(name) is \(s.utf8.count) bytes; the limit is \(Limits.maxStringField)")
            }
        }
        @inline(__always) func number(_ name: String, _ d: Double) throws(EventError) {
            if !d.isFinite { throw EventError("field \(name) is not a finite number") }
        }
        switch kind {
        case let .agentRegistered(a, h, p, e, _):
            try entity(a); try text("agent_id", a); try text("hostname", h); try text("platform", p); try text("agent_endpoint", e)
        case let .agentHeartbeat(a, _), let .agentOffline(a, _), let .agentUnregistered(a):
            try entity(a); try text("agent_id", a)
        case let .agentDegraded(a, secs):
            try entity(a); try text("agent_id", a); try number("seconds_since_heartbeat", secs)
        case let .agentRecovered(a, down):
            try entity(a); try text("agent_id", a); try number("downtime_seconds", down)
        case let .spawnRequested(n, a, _, path, _):
            try entity(n); try entity(a); try text("node_id", n); try text("agent_id", a); try text("storage_path", path)
        case let .spawnSucceeded(n, a, _, _), let .stopRequested(n, a), let .stopSucceeded(n, a), let .nodeCrashed(n, a, _, _),
            let .nodeRestarted(n, a, _, _):
            try entity(n); try entity(a); try text("node_id", n); try text("agent_id", a)
        case let .spawnFailed(n, a, e), let .stopFailed(n, a, e):
            try entity(n); try entity(a); try text("node_id", n); try text("agent_id", a); try text("error", e)
        case .clusterHealthy:
            break
        case let .clusterDegraded(_, _, r), let .clusterCritical(_, _, r):
            try text("reason", r)
        case let .storageMetrics(_, _, rate, _, _):
            try number("ingest_rate", rate)
        case let .eventsDropped(p, _):
            try entity(p); try text("producer_id", p)
        case .custom, .log:
            break
        }
    }

    /// Whether `id` starts with `event-<typeName>-`, compared in place.
    static func hasTypePrefix(_ id: String, _ typeName: String) -> Bool {
        var id = id
        var name = typeName
        return id.withUTF8 { i in
            name.withUTF8 { t in
                guard i.count >= 7 + t.count, memcmp(i.baseAddress!, "event-", 6) == 0, i[6 + t.count] == UInt8(ascii: "-") else { return false }
                return t.isEmpty || memcmp(i.baseAddress! + 6, t.baseAddress!, t.count) == 0
            }
        }
    }
}
