/// Reads what `BinaryWriter` wrote, with bounds checks on every read; never traps on bad input.
public struct BinaryReader {
    public let bytes: ArraySlice<UInt8>
    public private(set) var position: Int

    public init(_ bytes: ArraySlice<UInt8>) {
        self.bytes = bytes
        self.position = bytes.startIndex
    }

    public var remaining: Int { bytes.endIndex - position }
    public var isAtEnd: Bool { position >= bytes.endIndex }

    private mutating func need(_ n: Int) throws(EventError) {
        guard n >= 0, remaining >= n else { throw EventError("truncated: needed \(n) bytes at offset \(position - bytes.startIndex), \(remaining) left") }
    }

    public mutating func u8() throws(EventError) -> UInt8 {
        try need(1)
        defer { position += 1 }
        return bytes[position]
    }

    public mutating func u16() throws(EventError) -> UInt16 {
        try need(2)
        defer { position += 2 }
        return UInt16(bytes[position]) | UInt16(bytes[position + 1]) << 8
    }

    public mutating func u32() throws(EventError) -> UInt32 {
        try need(4)
        var v: UInt32 = 0
        for i in 0..<4 { v |= UInt32(bytes[position + i]) << (8 * i) }
        position += 4
        return v
    }

    public mutating func u64() throws(EventError) -> UInt64 {
        try need(8)
        var v: UInt64 = 0
        for i in 0..<8 { v |= UInt64(bytes[position + i]) << (8 * i) }
        position += 8
        return v
    }

    public mutating func i64() throws(EventError) -> Int64 { Int64(bitPattern: try u64()) }

    public mutating func varint() throws(EventError) -> UInt64 {
        var v: UInt64 = 0
        var shift: UInt64 = 0
        while true {
            let b = try u8()
            if shift == 63, b > 1 { throw EventError("varint overflows 64 bits") }
            v |= UInt64(b & 0x7F) << shift
            if b < 0x80 { return v }
            shift += 7
            if shift > 63 { throw EventError("varint longer than 10 bytes") }
        }
    }

    public mutating func svarint() throws(EventError) -> Int64 {
        let u = try varint()
        return Int64(bitPattern: (u >> 1) ^ (0 &- (u & 1)))
    }

    /// A length-prefixed UTF-8 string of at most `limit` bytes.
    public mutating func string(limit: Int) throws(EventError) -> String {
        let n = try varint()
        guard n <= UInt64(limit) else { throw EventError("string of \(n) bytes exceeds the limit of \(limit)") }
        try need(Int(n))
        let slice = bytes[position..<(position + Int(n))]
        position += Int(n)
        guard let s = String(validating: slice, as: UTF8.self) else { throw EventError("string is not valid UTF-8") }
        return s
    }

    public mutating func bytes(_ n: Int) throws(EventError) -> ArraySlice<UInt8> {
        try need(n)
        defer { position += n }
        return bytes[position..<(position + n)]
    }
}
