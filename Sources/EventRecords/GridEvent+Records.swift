import EventStore
import GridEvents

// How a grid event is stored, and read back: the one place where the catalogue (GridEvents) meets the engine's
// record types (EventStore). The daemon's writer, the aggregator, the query engine and the tools go through it.

extension GridEvent {
    /// The id hash of the time bucket (one minute) that holds `timestamp`.
    public static func timeBucketId(_ timestamp: Int64) -> String { TimeBucket.id(timestamp) }

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

extension EventType {
    /// The edge type of the adjacency entry event -> time bucket.
    public static let timeBucketEdge: UInt16 = TimeBucket.edgeType
}
