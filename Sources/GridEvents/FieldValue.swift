/// A field value of an event: what the binary and JSON codecs carry.
public enum FieldValue: Sendable, Equatable, Hashable, CustomStringConvertible {
    case string(String)
    case int(Int64)
    case double(Double)
    case bool(Bool)
    /// Microseconds since the epoch, UTC; RFC 3339 in JSON.
    case time(Int64)
    case null

    public var description: String {
        switch self {
        case .string(let s): return s
        case .int(let i): return String(i)
        case .double(let d): return String(d)
        case .bool(let b): return String(b)
        case .time(let t): return String(t)
        case .null: return "null"
        }
    }

    var intValue: Int64? {
        switch self {
        case .int(let i): return i
        case .double(let d) where d.rounded() == d && abs(d) < 9e18: return Int64(d)
        default: return nil
        }
    }

    var doubleValue: Double? {
        switch self {
        case .double(let d): return d
        case .int(let i): return Double(i)
        default: return nil
        }
    }
}

/// The declared kind of a catalogue field.
public enum FieldKind: String, Sendable {
    case string, int, double, time, bool
}

/// One field of a catalogue event type.
public struct FieldSpec: Sendable {
    public let name: String
    public let kind: FieldKind
    public let optional: Bool
    /// The field names an entity (agent_id, node_id): it becomes an adjacency entry entity -> event.
    public let isEntity: Bool

    init(_ name: String, _ kind: FieldKind, optional: Bool = false, entity: Bool = false) {
        self.name = name
        self.kind = kind
        self.optional = optional
        self.isEntity = entity
    }
}
