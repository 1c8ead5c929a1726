internal import CXXHashInline

/// xxHash entry points: XXH3-64 for ids and frame checksums. Compiled in from the header-only xxHash
/// (`CXXHashInline`), so no module links libxxhash.
public enum Hash {
    /// The 64-bit XXH3 hash of a string's UTF-8 bytes. This is the id hash stored in concept records and used as
    /// the node key of adjacency entries. O(n), about 1 ns per byte.
    public static func id(_ string: String) -> UInt64 {
        var s = string
        return s.withUTF8 { grid_xxh3_64($0.baseAddress, $0.count) }
    }

    /// The 64-bit XXH3 hash of bytes.
    public static func bytes(_ bytes: UnsafeRawBufferPointer) -> UInt64 {
        grid_xxh3_64(bytes.baseAddress, bytes.count)
    }

    /// The 64-bit XXH3 hash of bytes with a seed.
    public static func bytes(_ bytes: UnsafeRawBufferPointer, seed: UInt64) -> UInt64 {
        grid_xxh3_64_seeded(bytes.baseAddress, bytes.count, seed)
    }

    /// The 64-bit XXH3 hash of a byte array.
    public static func bytes(_ array: [UInt8]) -> UInt64 {
        array.withUnsafeBytes { bytes($0) }
    }
}
