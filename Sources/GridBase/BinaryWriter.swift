/// The one byte writer of the project: appends little-endian integers, LEB128 varints, raw UTF-8 and
/// length-prefixed strings to a byte array. The store's frames and index files, the event codecs, the wire
/// protocol, the spool and the replication messages all write through it; each reader checks bounds on its side
/// (`BinaryReader` in GridEvents, the mapped-buffer accessors in EventStore).
///
/// The methods are `@inlinable` so that the store's hot paths (frame encoding) inline them across the module
/// boundary as they did when the writer was internal to the store.
public struct BinaryWriter: Sendable {
    public var bytes: [UInt8]

    @inlinable
    public init(capacity: Int = 64) {
        bytes = []
        bytes.reserveCapacity(capacity)
    }

    @inlinable @inline(__always) public mutating func u8(_ v: UInt8) { bytes.append(v) }
    @inlinable @inline(__always)
    public mutating func u16(_ v: UInt16) { withUnsafeBytes(of: v.littleEndian) { bytes.append(contentsOf: $0) } }
    @inlinable @inline(__always)
    public mutating func u32(_ v: UInt32) { withUnsafeBytes(of: v.littleEndian) { bytes.append(contentsOf: $0) } }
    @inlinable @inline(__always)
    public mutating func u64(_ v: UInt64) { withUnsafeBytes(of: v.littleEndian) { bytes.append(contentsOf: $0) } }
    @inlinable @inline(__always) public mutating func i64(_ v: Int64) { u64(UInt64(bitPattern: v)) }

    /// An unsigned LEB128 varint: 1 to 10 bytes.
    @inlinable
    public mutating func varint(_ v: UInt64) {
        var v = v
        while v >= 0x80 {
            bytes.append(UInt8(truncatingIfNeeded: v) | 0x80)
            v >>= 7
        }
        bytes.append(UInt8(v))
    }

    /// Zigzag-encoded signed varint.
    @inlinable
    public mutating func svarint(_ v: Int64) { varint(UInt64(bitPattern: (v << 1) ^ (v >> 63))) }

    /// A varint byte count, then the string's UTF-8 bytes.
    @inlinable
    public mutating func string(_ s: String) {
        var s = s
        s.withUTF8 { b in
            varint(UInt64(b.count))
            bytes.append(contentsOf: b)
        }
    }

    /// The string's UTF-8 bytes, without a length (the store's records carry their lengths in fixed headers).
    @inlinable @inline(__always)
    public mutating func utf8(_ s: String) {
        var s = s
        s.withUTF8 { bytes.append(contentsOf: $0) }
    }

    @inlinable
    public mutating func raw(_ b: some Collection<UInt8>) { bytes.append(contentsOf: b) }

    /// `n` zero bytes (room for a header written later, padding).
    @inlinable
    public mutating func zeros(_ n: Int) { bytes.append(contentsOf: repeatElement(0, count: n)) }
}
