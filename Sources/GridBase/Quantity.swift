/// Parsing of the operator's quantities: retention ages (`30d`, `12h`, `90m`, `45s`, `2w`) and sizes (`50GB`,
/// `512MiB`, `1000000`). Decimal units are powers of 1000, binary ones (`KiB`, `MiB`, `GiB`, `TiB`) of 1024.
public enum Quantity {
    /// A duration in microseconds. - Throws: `QuantityError` naming what is accepted.
    public static func duration(_ text: String) throws(QuantityError) -> Int64 {
        let s = text.trimmingWhitespace.lowercased()
        let units: [(String, Int64)] = [("w", 604_800), ("d", 86_400), ("h", 3_600), ("m", 60), ("s", 1)]
        for (suffix, seconds) in units where s.hasSuffix(suffix) {
            if let n = Int64(s.dropLast(suffix.count)), n > 0, n <= Int64.max / 1_000_000 / seconds {
                return n * seconds * 1_000_000
            }
        }
        throw QuantityError(
            "\"\(text)\" is not a duration: use a positive whole number with s, m, h, d or w (e.g. 30d, 12h)")
    }

    /// A size in bytes. - Throws: `QuantityError` naming what is accepted.
    public static func bytes(_ text: String) throws(QuantityError) -> Int {
        let s = text.trimmingWhitespace.lowercased()
        let units: [(String, Int)] = [
            ("kib", 1 << 10), ("mib", 1 << 20), ("gib", 1 << 30), ("tib", 1 << 40),
            ("kb", 1_000), ("mb", 1_000_000), ("gb", 1_000_000_000), ("tb", 1_000_000_000_000),
            ("k", 1_000), ("m", 1_000_000), ("g", 1_000_000_000), ("t", 1_000_000_000_000), ("b", 1), ("", 1),
        ]
        for (suffix, scale) in units where s.hasSuffix(suffix) {
            let digits = String(s.dropLast(suffix.count)).trimmingWhitespace
            if let n = Int(digits), n > 0, n <= Int.max / scale { return n * scale }
        }
        throw QuantityError("\"\(text)\" is not a size: use a positive number with KB, MB, GB, TB, KiB, MiB, GiB or TiB (e.g. 50GB)")
    }
}

/// A quantity an operator wrote that `Quantity` cannot read; the message names what is accepted.
public struct QuantityError: Error, CustomStringConvertible, Equatable {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}
