/// Little-endian reads from mapped or loaded store bytes; the caller has checked the bounds (the writer is
/// GridBase's `BinaryWriter`).
extension UnsafeRawBufferPointer {
    @inline(__always) func u8(_ at: Int) -> UInt8 { self[at] }
    @inline(__always) func u16(_ at: Int) -> UInt16 { UInt16(littleEndian: loadUnaligned(fromByteOffset: at, as: UInt16.self)) }
    @inline(__always) func u32(_ at: Int) -> UInt32 { UInt32(littleEndian: loadUnaligned(fromByteOffset: at, as: UInt32.self)) }
    @inline(__always) func u64(_ at: Int) -> UInt64 { UInt64(littleEndian: loadUnaligned(fromByteOffset: at, as: UInt64.self)) }
    @inline(__always) func i64(_ at: Int) -> Int64 { Int64(bitPattern: u64(at)) }
    func string(_ at: Int, _ count: Int) -> String {
        String(decoding: UnsafeRawBufferPointer(rebasing: self[at..<(at + count)]), as: UTF8.self)
    }
    func slice(_ at: Int, _ count: Int) -> UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(rebasing: self[at..<(at + count)])
    }
}
