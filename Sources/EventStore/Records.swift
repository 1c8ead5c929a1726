/// A concept record: one event as the store keeps it. The store does not interpret `payload`; it indexes the
/// id, type, time and entities.
public struct ConceptRecord: Sendable, Equatable {
    /// The event id, 1...`Limits.maxIdLength` bytes of printable ASCII without spaces.
    public var id: String
    /// XXH3-64 of `id`; computed by the initializer.
    public var idHash: UInt64
    /// The event type code (see the event catalogue).
    public var typeCode: UInt16
    /// Microseconds since the Unix epoch, UTC.
    public var timestamp: Int64
    /// The ids of the entities this event mentions (agents, nodes, `cluster`).
    public var entities: [String]
    /// Opaque bytes: the encoded event.
    public var payload: [UInt8]

    public init(id: String, typeCode: UInt16, timestamp: Int64, entities: [String] = [], payload: [UInt8] = []) {
        self.id = id
        self.idHash = Hash.id(id)
        self.typeCode = typeCode
        self.timestamp = timestamp
        self.entities = entities
        self.payload = payload
    }
}

/// An adjacency entry: a typed, timestamped edge between two nodes of the event graph, named by id hash.
public struct AdjacencyEntry: Sendable, Equatable, Hashable {
    public var source: UInt64
    public var target: UInt64
    public var edgeType: UInt16
    public var timestamp: Int64

    public init(source: UInt64, target: UInt64, edgeType: UInt16, timestamp: Int64) {
        self.source = source
        self.target = target
        self.edgeType = edgeType
        self.timestamp = timestamp
    }
}

/// One record of a batch.
public enum Record: Sendable, Equatable {
    case concept(ConceptRecord)
    case adjacency(AdjacencyEntry)
}

/// Hard limits on what the store accepts. Every append is checked against them before anything is written.
public enum Limits {
    /// Longest id (event or entity), in bytes.
    public static let maxIdLength = IdSyntax.maxLength
    /// Most entities one concept record may mention.
    public static let maxEntities = 64
    /// Largest payload of one concept record.
    public static let maxPayload = 1 << 20
    /// Most records in one batch.
    public static let maxRecordsPerBatch = 1 << 20

    /// Checks that `id` is 1...maxIdLength bytes of printable ASCII (0x21...0x7E).
    static func validate(id: String, what: String) throws(StoreError) {
        if !IdSyntax.isValid(id, maxLength: maxIdLength, allowed: IdSyntax.printableASCII) {
            throw StoreError.invalid(
                "invalid \(what) \"\(IdSyntax.shown(id, limit: 80))\": ids are 1 to \(maxIdLength) bytes of printable ASCII without spaces")
        }
    }
}

/// How durable an appended batch is when `append` returns.
public enum Durability: String, Sendable, CaseIterable {
    /// One fdatasync per batch before it is acknowledged.
    case always
    /// Group commit: concurrent appenders share one fdatasync; each returns once a sync covering its batch is done.
    case batch
    /// Written to the operating system only; lost if the machine (not just the process) crashes.
    case none
}

/// Proof that a batch was appended, returned only after the batch reached the store's durability mode.
public struct AppendReceipt: Sendable, Equatable {
    /// The frame's sequence number, unique and increasing across the store.
    public let sequence: UInt64
    /// The segment that holds the frame and the frame's byte offset in it.
    public let segment: UInt64
    public let offset: UInt64
    public let recordCount: Int
    /// True when an fdatasync covering this batch completed before the receipt was made (`always`, `batch`).
    /// False only under `Durability.none`.
    public let isSynced: Bool
}
