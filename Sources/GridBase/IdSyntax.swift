/// The one id check: 1 to `maxLength` bytes, each accepted by a byte class. Producers use the strict class
/// (`gridId`, what the catalogue and the control plane accept); the store accepts any printable ASCII, so that it
/// never refuses what an older or foreign producer wrote.
public enum IdSyntax {
    /// The longest id, in bytes, everywhere.
    public static let maxLength = 256

    /// `A-Z a-z 0-9 . _ : @ / -`: events, agents, nodes, entities.
    @inlinable @inline(__always)
    public static func gridId(_ c: UInt8) -> Bool {
        switch c {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
            UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"), UInt8(ascii: "_"), UInt8(ascii: "."),
            UInt8(ascii: ":"), UInt8(ascii: "@"), UInt8(ascii: "/"):
            return true
        default: return false
        }
    }

    /// Printable ASCII without space (0x21...0x7E): what the store accepts.
    @inlinable @inline(__always)
    public static func printableASCII(_ c: UInt8) -> Bool { c >= 0x21 && c <= 0x7E }

    /// True when `id` is 1...maxLength bytes all accepted by `allowed`. O(n), no allocation. `@inlinable`, like
    /// `BinaryWriter`: the store checks every id of every append through it, and inlined across the module
    /// boundary the byte class is inlined too instead of called through a closure per byte.
    @inlinable
    public static func isValid(_ id: String, maxLength: Int = IdSyntax.maxLength, allowed: (UInt8) -> Bool) -> Bool {
        var s = id
        return s.withUTF8 { bytes -> Bool in
            guard !bytes.isEmpty, bytes.count <= maxLength else { return false }
            for b in bytes where !allowed(b) { return false }
            return true
        }
    }

    /// `id` cut to `limit` characters with "..." for an error message.
    public static func shown(_ id: String, limit: Int) -> String {
        id.count > limit ? String(id.prefix(limit)) + "..." : id
    }
}

/// A producer's tag: 12 random lowercase hex digits (48 bits), part of every event id the producer makes
/// (`event-<type>-<tag>-<sequence>`), so ids from different producers and restarts do not collide.
public enum ProducerTag {
    public static func random() -> String {
        let tag = String(UInt64.random(in: 0...UInt64.max) & 0xFFFF_FFFF_FFFF, radix: 16)
        return String(repeating: "0", count: 12 - tag.count) + tag
    }
}
