import EventStore

/// Deterministic synthetic batches for tests, crash harnesses and benchmarks: every field of an event can be
/// recomputed from its id, so a reader can tell a correct event from a corrupt one without keeping a copy.
public enum SyntheticEvents {
    /// The id of event `index` of batch `batch` of run `run`.
    public static func id(run: String, batch: Int, index: Int) -> String { "event-synthetic-\(run)-\(batch)-\(index)" }

    /// Payload bytes derived from the id (60...187 bytes), so a batch of events with adjacency averages ~200
    /// bytes per record pair.
    public static func payload(for id: String) -> [UInt8] {
        var state = Hash.id(id)
        let count = 60 + Int(state % 128)
        var out = [UInt8]()
        out.reserveCapacity(count)
        for _ in 0..<count {
            state = state &* 6364136223846793005 &+ 1442695040888963407
            out.append(UInt8(truncatingIfNeeded: state >> 56))
        }
        return out
    }

    public static func entities(batch: Int, index: Int) -> [String] {
        ["agent-\(String(index % 100))", "node-\(String((batch * 7 + index) % 2000))"]
    }

    public static func typeCode(index: Int) -> UInt16 { UInt16(1 + index % 17) }

    public static func timestamp(base: Int64, batch: Int, index: Int) -> Int64 { base + Int64(batch) * 1000 + Int64(index) }

    /// A batch of `events` events, each with adjacency entries entity -> event (typed by the event's type) and
    /// event -> its minute bucket (edge type 999, `TimeBucket`).
    public static func batch(run: String, batch: Int, events: Int, base: Int64 = 1_764_000_000_000_000) -> [Record] {
        var records: [Record] = []
        records.reserveCapacity(events * 4)
        for i in 0..<events {
            let id = id(run: run, batch: batch, index: i)
            let ts = timestamp(base: base, batch: batch, index: i)
            let type = typeCode(index: i)
            let ents = entities(batch: batch, index: i)
            let concept = ConceptRecord(id: id, typeCode: type, timestamp: ts, entities: ents, payload: payload(for: id))
            records.append(.concept(concept))
            for e in ents {
                records.append(.adjacency(AdjacencyEntry(source: Hash.id(e), target: concept.idHash, edgeType: type, timestamp: ts)))
            }
            let bucket = TimeBucket.id(ts)
            records.append(.adjacency(AdjacencyEntry(source: concept.idHash, target: Hash.id(bucket), edgeType: 999, timestamp: ts)))
        }
        return records
    }

    /// Checks that a stored event is exactly what `batch(...)` wrote for its id; returns a problem or nil.
    public static func check(_ event: StoredEvent, base: Int64 = 1_764_000_000_000_000) -> String? {
        let parts = event.id.split(separator: "-")
        guard parts.count == 5, parts[0] == "event", parts[1] == "synthetic", let b = Int(parts[3]), let i = Int(parts[4])
        else { return "unexpected id \(event.id)" }
        if event.payload != payload(for: event.id) { return "payload of \(event.id) differs" }
        if event.entities != entities(batch: b, index: i) { return "entities of \(event.id) differ" }
        if event.typeCode != typeCode(index: i) { return "type of \(event.id) differs" }
        if event.timestamp != timestamp(base: base, batch: b, index: i) { return "timestamp of \(event.id) differs" }
        if event.idHash != Hash.id(event.id) { return "id hash of \(event.id) differs" }
        return nil
    }
}
