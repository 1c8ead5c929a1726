/// Arrays of unsigned integers packed at a fixed number of bits each, little-endian bit order, read back one
/// element at a time in O(1) (the index files' time column and posting lists, docs/FORMAT.md).
enum BitPack {
    /// Bits needed to hold every value up to `max` (0 when `max` is 0: every value is 0). Widths above 56 are
    /// stored as 64 (whole aligned words), so one unaligned 8-byte load always holds an element.
    static func width(_ max: UInt64) -> Int {
        let w = max == 0 ? 0 : 64 - max.leadingZeroBitCount
        return w > 56 ? 64 : w
    }

    /// Bytes that `count` elements of `bits` take.
    static func byteCount(_ count: Int, bits: Int) -> Int { (count * bits + 7) / 8 }

    /// Appends `values` at `bits` each (every value must fit).
    static func pack<C: Collection>(_ values: C, bits: Int, into w: inout BinaryWriter) where C.Element == UInt64 {
        if bits == 0 { return }
        if bits == 64 {
            for v in values { w.u64(v) }
            return
        }
        var acc: UInt64 = 0
        var pending = 0
        for v in values {
            acc |= v << UInt64(pending)
            pending += bits
            while pending >= 8 {
                w.u8(UInt8(truncatingIfNeeded: acc))
                acc >>= 8
                pending -= 8
            }
        }
        if pending > 0 { w.u8(UInt8(truncatingIfNeeded: acc)) }
    }

    /// Element `index` of an array packed at `bits` starting at byte `base` of `buf`. Never reads outside `buf`
    /// (bytes beyond it read as zero), so a damaged or lying file cannot make a read fault.
    @inline(__always)
    static func extract(_ buf: UnsafeRawBufferPointer, base: Int, index: Int, bits: Int) -> UInt64 {
        if bits == 0 { return 0 }
        if bits == 64 {
            let at = base &+ index &* 8
            return at >= 0 && at <= buf.count - 8 ? buf.u64(at) : 0
        }
        let bit = index &* bits
        let at = base &+ (bit >> 3)
        let word: UInt64
        if at >= 0, at <= buf.count - 8 {
            word = buf.u64(at)
        } else {
            var w: UInt64 = 0
            for i in 0..<8 where at + i >= 0 && at + i < buf.count { w |= UInt64(buf[at + i]) << UInt64(8 * i) }
            word = w
        }
        return (word >> UInt64(bit & 7)) & ((1 << UInt64(bits)) - 1)
    }
}
