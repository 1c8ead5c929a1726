import GridBase
import GridEvents

/// One spooled event: who produced it, its sequence number and the event.
public struct SpoolRecord: Sendable, Equatable {
    public var producer: String
    public var sequence: UInt64
    public var event: GridEvent
    /// Spool offset just past this record (set by `read`).
    public var end: UInt64 = 0

    public init(producer: String, sequence: UInt64, event: GridEvent, end: UInt64 = 0) {
        self.producer = producer
        self.sequence = sequence
        self.event = event
        self.end = end
    }
}

/// The record codec (docs/FORMAT.md, "Emitter spool"): a record is its body length (u32), the XXH3-64 of its body
/// (u64), and the body: producer id (string), sequence (u64), the event in binary form.
extension Spool {
    /// Appends one spool record (header, then body: producer, sequence, the event's binary form) to `out`.
    public static func appendRecord(
        producer: String, sequence: UInt64, kind: GridEventKind, timestamp: Int64, id: String?, producerTag: String,
        to out: inout [UInt8]
    ) {
        let start = out.count
        out.append(contentsOf: zeroHeader)
        EventEncoder.string(producer, &out)
        EventEncoder.u64(sequence, &out)
        EventEncoder.append(kind: kind, timestamp: timestamp, id: id, producerTag: producerTag, sequence: sequence, to: &out)
        let length = out.count - start - recordHeader
        let sum = out.withUnsafeBytes { Hash.bytes(UnsafeRawBufferPointer(rebasing: $0[(start + recordHeader)...])) }
        out.withUnsafeMutableBytes { b in
            b.storeBytes(of: UInt32(length).littleEndian, toByteOffset: start, as: UInt32.self)
            b.storeBytes(of: sum.littleEndian, toByteOffset: start + 4, as: UInt64.self)
        }
    }

    private static let zeroHeader = [UInt8](repeating: 0, count: recordHeader)

    /// An upper bound of a record's size, for reserving room before encoding it.
    public static func recordBound(producer: String, kind: GridEventKind, id: String?, producerTag: String) -> Int {
        recordHeader + 5 + producer.utf8.count + 8 + EventEncoder.sizeBound(kind: kind, id: id, producerTag: producerTag)
    }
}
