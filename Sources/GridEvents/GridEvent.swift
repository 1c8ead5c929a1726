import EventStore

/// One grid event: an id, a time and what happened.
public struct GridEvent: Sendable, Equatable {
    /// `event-<type name>-<producer tag>-<sequence>`: unique across producers, fixed when the event is emitted
    /// so a resend carries the same id.
    public var id: String
    /// Microseconds since the epoch, UTC.
    public var timestamp: Int64
    public var kind: GridEventKind
    /// Entities the event is stored with beyond those its kind names: an aggregator adds the origin host
    /// (`host-<id>`). Stored, indexed and shown like the others.
    public var extraEntities: [String] = []

    public init(id: String, timestamp: Int64, kind: GridEventKind, extraEntities: [String] = []) {
        self.id = id
        self.timestamp = timestamp
        self.kind = kind
        self.extraEntities = extraEntities
    }

    public var type: EventType { kind.type }
    public var typeName: String { kind.typeName }
    /// The kind's entities (node before agent, ...), then the extra ones.
    public var entities: [String] { extraEntities.isEmpty ? kind.entities : kind.entities + extraEntities }

    /// The id for event `sequence` of the producer with `producerTag` (12 lowercase hex digits).
    public static func makeId(typeName: String, producerTag: String, sequence: UInt64) -> String {
        "event-" + typeName + "-" + producerTag + "-" + String(sequence)
    }

    /// The id hash of the time bucket (one minute) that holds `timestamp`.
    public static func timeBucketId(_ timestamp: Int64) -> String { TimeBucket.id(timestamp) }

    /// Limits checked by `validate()`.
    public enum Limits {
        public static let maxStringField = 4096
        public static let maxCustomFields = 64
        public static let maxCustomNameLength = 64
    }

    /// Checks id, entity ids, names and string sizes; throws a message naming what is wrong.
    public func validate() throws(EventError) {
        // The same checks and messages as ever, without building field arrays (GridEvent+Validation.swift): the
        // daemon runs this for every event it receives.
        try GridEvent.validate(kind: kind, id: id)
    }

    /// Ids (events, agents, nodes): 1-256 bytes of `A-Z a-z 0-9 . _ : @ / -`.
    public static func validateId(_ id: String, what: String) throws(EventError) {
        var s = id
        let ok = s.withUTF8 { b -> Bool in
            guard !b.isEmpty, b.count <= 256 else { return false }
            for c in b {
                switch c {
                case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
                    UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"), UInt8(ascii: "_"), UInt8(ascii: "."),
                    UInt8(ascii: ":"), UInt8(ascii: "@"), UInt8(ascii: "/"):
                    continue
                default: return false
                }
            }
            return true
        }
        if !ok {
            let shown = id.count > 60 ? String(id.prefix(60)) + "..." : id
            throw EventError("invalid \(what) \"\(shown)\": use 1 to 256 characters of letters, digits and - _ . : @ /")
        }
    }

    /// Custom event names and custom field names: 1-64 of `a-z 0-9 _`, starting with a letter.
    public static func validateCustomName(_ name: String, what: String = "custom event name") throws(EventError) {
        let b = Array(name.utf8)
        let ok = !b.isEmpty && b.count <= Limits.maxCustomNameLength && (b[0] >= 97 && b[0] <= 122)
            && b.allSatisfy { ($0 >= 97 && $0 <= 122) || ($0 >= 48 && $0 <= 57) || $0 == 95 }
        if !ok { throw EventError("invalid \(what) \"\(name.prefix(64))\": use 1 to 64 of a-z, 0-9 and _, starting with a letter") }
        if what == "custom event name", EventType(name: name) != nil || name == "custom" {
            throw EventError("\(name) is a catalogue event type; give the fields of the catalogue type instead")
        }
        if what == "field name", reservedFieldNames.contains(name) {
            throw EventError("\(name) cannot name a field: the flat JSON form uses it for the event itself")
        }
    }

    /// Keys of the flat JSON form that name the event, not a field: a custom field of one of these names would be
    /// read back as the event's own id, time or entities.
    public static let reservedFieldNames: Set<String> = ["event_type", "id", "timestamp", "entities"]

    /// The concept record and adjacency entries that store this event: every entity -> the event (edge type =
    /// the event's type code) and the event -> its one-minute time bucket (edge type 999).
    public func records() -> [Record] {
        let concept = ConceptRecord(
            id: id, typeCode: type.rawValue, timestamp: timestamp, entities: entities, payload: BinaryCodec.encodeFields(kind))
        var out: [Record] = [.concept(concept)]
        for entity in concept.entities {
            out.append(.adjacency(AdjacencyEntry(source: Hash.id(entity), target: concept.idHash, edgeType: type.rawValue, timestamp: timestamp)))
        }
        out.append(.adjacency(AdjacencyEntry(
            source: concept.idHash, target: Hash.id(GridEvent.timeBucketId(timestamp)), edgeType: EventType.timeBucketEdge,
            timestamp: timestamp)))
        return out
    }

    /// Rebuilds an event from a stored concept record.
    public init(stored: StoredEvent) throws(EventError) {
        guard let type = EventType(rawValue: stored.typeCode) else { throw EventError("unknown type code \(stored.typeCode)") }
        let kind = try BinaryCodec.decodeFields(type: type, stored.payload[...])
        let implied = kind.entities
        let extra = stored.entities.count > implied.count ? stored.entities.filter { !implied.contains($0) } : []
        self.init(id: stored.id, timestamp: stored.timestamp, kind: kind, extraEntities: extra)
    }
}

/// RFC 3339 helpers for event JSON.
public enum TimeText {
    public static func format(_ micros: Int64) -> String { TimeFormat.rfc3339(micros: micros) }
    public static func parse(_ text: String) -> Int64? { TimeFormat.parseRFC3339(text) }
}
