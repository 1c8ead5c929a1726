/// The on-disk layout of segments, frames and records. `docs/FORMAT.md` is the authoritative description;
/// every constant here appears there.
enum Format {
    // Segment file header, 64 bytes.
    static let segmentMagic: [UInt8] = Array("SGEVSEG1".utf8)
    static let formatVersion: UInt32 = 1
    static let segmentHeaderSize = 64

    // Frame header, 32 bytes; frames start at 8-byte aligned offsets.
    static let frameMagic: UInt32 = 0x5247_4653  // bytes "SFGR"
    static let frameHeaderSize = 32
    static let frameAlignment = 8
    static let frameKindBatch: UInt16 = 1
    static let frameKindSeal: UInt16 = 2
    static let sealPayloadSize = 32

    // Records.
    static let recordKindConcept: UInt8 = 1
    static let recordKindAdjacency: UInt8 = 2
    static let recordHeaderSize = 32
    static let adjacencySize = 32

    static func aligned(_ n: Int) -> Int { (n + frameAlignment - 1) & ~(frameAlignment - 1) }

    static func segmentFileName(_ id: UInt64) -> String {
        let digits = String(id)
        return "seg-" + String(repeating: "0", count: max(0, 10 - digits.count)) + digits + ".sgs"
    }

    static func segmentId(fromFileName name: String) -> UInt64? { segmentId(name, suffix: ".sgs") }

    /// The id in a store file name `seg-NNNNNNNNNN<suffix>` (`.sgs`, `.sgc`, `.sgi`); nil for any other name,
    /// including ones that would parse to an id but are not the name the store writes (`seg-5.sgs`).
    static func segmentId(_ name: String, suffix: String) -> UInt64? {
        guard name.hasPrefix("seg-"), name.hasSuffix(suffix), let id = UInt64(name.dropFirst(4).dropLast(suffix.count)),
            name == "seg-" + String(segmentFileName(id).dropFirst(4).dropLast(4)) + suffix
        else { return nil }
        return id
    }

    /// Encodes a segment header.
    static func segmentHeader(id: UInt64, created: Int64, capacity: UInt64) -> [UInt8] {
        var w = BinaryWriter(capacity: segmentHeaderSize)
        w.bytes.append(contentsOf: segmentMagic)
        w.u32(formatVersion)
        w.u32(UInt32(segmentHeaderSize))
        w.u64(id)
        w.i64(created)
        w.u64(capacity)
        w.u64(0)
        w.u64(0)
        let sum = w.bytes.withUnsafeBytes { Hash.bytes($0) }
        w.u64(sum)
        return w.bytes
    }

    struct SegmentHeader: Equatable {
        var id: UInt64
        var version: UInt32
        var created: Int64
        var capacity: UInt64
    }

    /// Decodes and checks a segment header; returns a reason when it is not valid.
    static func parseSegmentHeader(_ buf: UnsafeRawBufferPointer) -> Result<SegmentHeader, FormatProblem> {
        guard buf.count >= segmentHeaderSize else { return .failure(FormatProblem("file shorter than the 64-byte header")) }
        if !segmentMagic.elementsEqual(buf.slice(0, 8)) { return .failure(FormatProblem("bad magic (not a segment file)")) }
        let sum = buf.u64(56)
        if Hash.bytes(buf.slice(0, 56)) != sum { return .failure(FormatProblem("header checksum mismatch")) }
        let version = buf.u32(8)
        if version != formatVersion { return .failure(FormatProblem("unsupported format version \(version) (this build reads 1)")) }
        let capacity = buf.u64(32)
        guard capacity >= UInt64(StoreOptions.minSegmentCapacity), capacity <= UInt64(StoreOptions.maxSegmentCapacity) else {
            return .failure(FormatProblem("capacity \(capacity) is outside the segment sizes this build writes"))
        }
        return .success(SegmentHeader(id: buf.u64(16), version: version, created: buf.i64(24), capacity: buf.u64(32)))
    }

    /// The checksum of a frame: XXH3-64 over the first 24 header bytes, seeded with XXH3-64 of the payload.
    static func frameChecksum(header24: UnsafeRawBufferPointer, payloadHash: UInt64) -> UInt64 {
        Hash.bytes(header24, seed: payloadHash)
    }

    /// Encoded size of a concept record.
    static func conceptSize(_ c: ConceptRecord) -> Int {
        var n = recordHeaderSize + c.id.utf8.count + c.payload.count
        for e in c.entities { n += 2 + e.utf8.count }
        return n
    }

    static func encode(_ c: ConceptRecord, into w: inout BinaryWriter) {
        w.u8(recordKindConcept)
        w.u8(UInt8(c.entities.count))
        w.u16(c.typeCode)
        w.u32(UInt32(conceptSize(c)))
        w.u16(UInt16(c.id.utf8.count))
        w.u16(0)
        w.u32(UInt32(c.payload.count))
        w.u64(c.idHash)
        w.i64(c.timestamp)
        w.utf8(c.id)
        for e in c.entities {
            w.u16(UInt16(e.utf8.count))
            w.utf8(e)
        }
        w.bytes.append(contentsOf: c.payload)
    }

    static func encode(_ a: AdjacencyEntry, into w: inout BinaryWriter) {
        w.u8(recordKindAdjacency)
        w.u8(0)
        w.u16(a.edgeType)
        w.u32(UInt32(adjacencySize))
        w.u64(a.source)
        w.u64(a.target)
        w.i64(a.timestamp)
    }
}

/// A record located inside a frame payload, decoded lazily from mapped bytes.
struct RawRecord {
    var kind: UInt8
    /// Offset of the record in the payload buffer it was read from.
    var offset: Int
    var length: Int
}

/// Iterates the records of a frame payload with full bounds checks; stops with an error on malformed bytes.
struct RecordIterator {
    let payload: UnsafeRawBufferPointer
    var position = 0
    var error: String?

    init(_ payload: UnsafeRawBufferPointer) { self.payload = payload }

    mutating func next() -> RawRecord? {
        guard error == nil, position < payload.count else { return nil }
        guard payload.count - position >= 8 else {
            error = "record header cut short at payload offset \(position)"
            return nil
        }
        let kind = payload.u8(position)
        let length = Int(payload.u32(position + 4))
        guard length >= Format.recordHeaderSize, length <= payload.count - position else {
            error = "record length \(length) out of bounds at payload offset \(position)"
            return nil
        }
        switch kind {
        case Format.recordKindAdjacency:
            guard length == Format.adjacencySize else {
                error = "adjacency record of length \(length) at payload offset \(position)"
                return nil
            }
        case Format.recordKindConcept:
            let idLength = Int(payload.u16(position + 8))
            let payloadLength = Int(payload.u32(position + 12))
            guard Format.recordHeaderSize + idLength + payloadLength <= length else {
                error = "concept record fields exceed its length at payload offset \(position)"
                return nil
            }
        default:
            error = "unknown record kind \(kind) at payload offset \(position)"
            return nil
        }
        let record = RawRecord(kind: kind, offset: position, length: length)
        position += length
        return record
    }
}

/// Field access to a concept record in mapped memory (bounds were checked by `RecordIterator`).
struct ConceptView {
    let bytes: UnsafeRawBufferPointer  // exactly the record
    /// Keeps the bytes alive when they live in a decompressed block.
    var owner: AnyObject? = nil

    var entityCount: Int { Int(bytes.u8(1)) }
    var typeCode: UInt16 { bytes.u16(2) }
    var idLength: Int { Int(bytes.u16(8)) }
    var payloadLength: Int { Int(bytes.u32(12)) }
    var idHash: UInt64 { bytes.u64(16) }
    var timestamp: Int64 { bytes.i64(24) }
    var idBytes: UnsafeRawBufferPointer { bytes.slice(Format.recordHeaderSize, idLength) }
    var id: String { bytes.string(Format.recordHeaderSize, idLength) }
    /// The payload: the record's last `payloadLength` bytes (empty when that does not fit after the id).
    var payloadBytes: UnsafeRawBufferPointer {
        let n = payloadLength
        guard n <= bytes.count - Format.recordHeaderSize - idLength else { return bytes.slice(0, 0) }
        return bytes.slice(bytes.count - n, n)
    }

    /// Entities and payload; nil when the entity list overruns the record.
    func decodeTail() -> (entities: [String], payload: [UInt8])? {
        var p = Format.recordHeaderSize + idLength
        var entities: [String] = []
        entities.reserveCapacity(entityCount)
        for _ in 0..<entityCount {
            guard p + 2 <= bytes.count else { return nil }
            let n = Int(bytes.u16(p))
            p += 2
            guard p + n <= bytes.count else { return nil }
            entities.append(bytes.string(p, n))
            p += n
        }
        guard p + payloadLength == bytes.count else { return nil }
        return (entities, Array(bytes.slice(p, payloadLength)))
    }

    /// Whether the entity list and payload exactly fill the record (what `decodeTail` checks), without
    /// allocating.
    var isWellFormed: Bool {
        var p = Format.recordHeaderSize + idLength
        for _ in 0..<entityCount {
            guard p + 2 <= bytes.count else { return false }
            p += 2 + Int(bytes.u16(p))
            guard p <= bytes.count else { return false }
        }
        return p + payloadLength == bytes.count
    }

    /// Calls `body` with each entity's bytes; false when the list overruns the record.
    func forEachEntity(_ body: (UnsafeRawBufferPointer) -> Void) -> Bool {
        var p = Format.recordHeaderSize + idLength
        for _ in 0..<entityCount {
            guard p + 2 <= bytes.count else { return false }
            let n = Int(bytes.u16(p))
            p += 2
            guard p + n <= bytes.count else { return false }
            body(bytes.slice(p, n))
            p += n
        }
        return true
    }
}

struct AdjacencyView {
    let bytes: UnsafeRawBufferPointer
    var edgeType: UInt16 { bytes.u16(2) }
    var source: UInt64 { bytes.u64(8) }
    var target: UInt64 { bytes.u64(16) }
    var timestamp: Int64 { bytes.i64(24) }
    var entry: AdjacencyEntry { AdjacencyEntry(source: source, target: target, edgeType: edgeType, timestamp: timestamp) }
}

/// Why bytes are not a valid header, frame or record.
struct FormatProblem: Error, CustomStringConvertible {
    var reason: String
    init(_ reason: String) { self.reason = reason }
    var description: String { reason }
}
