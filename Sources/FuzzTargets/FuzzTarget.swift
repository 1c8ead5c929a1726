#if canImport(Glibc)
import Glibc
#endif

/// One fuzz target: a decoder run over arbitrary bytes with its invariants checked. The libFuzzer executables in
/// `Fuzz/` call `run` from `LLVMFuzzerTestOneInput`; `Tests/FuzzRegressionTests` replays the committed corpus and
/// crash inputs through the same `run` without libFuzzer.
public struct FuzzTarget: Sendable {
    /// The target's name: its executable is `fuzz-<name>`, its inputs live in `Fuzz/Corpus/<name>` and
    /// `Fuzz/Regressions/<name>`.
    public let name: String
    /// The `-max_len` libFuzzer uses for it.
    public let maxLength: Int
    /// Decodes `bytes` and checks the invariants; traps (a crash libFuzzer records) when one does not hold.
    public let run: @Sendable ([UInt8]) -> Void
    /// Real encodings to start fuzzing from (`make fuzz-corpus` writes them to `Fuzz/Corpus/<name>`).
    public let seeds: @Sendable () -> [[UInt8]]

    public init(name: String, maxLength: Int, run: @escaping @Sendable ([UInt8]) -> Void,
                seeds: @escaping @Sendable () -> [[UInt8]]) {
        self.name = name
        self.maxLength = maxLength
        self.run = run
        self.seeds = seeds
    }

    /// The libFuzzer entry: copies the input and runs it. Always returns 0.
    public func fuzz(_ start: UnsafeRawPointer, _ count: Int) -> CInt {
        run(Array(UnsafeRawBufferPointer(start: start, count: count)))
        return 0
    }
}

/// Every fuzz target. Adding one: a file here with a `static let` target, a line in `all`, a line in
/// `Fuzz/Package.swift`'s list and a 5-line entry file in `Fuzz/Targets/<name>/`.
public enum FuzzTargets {
    public static let all: [FuzzTarget] = [
        wireFrames, wireBatch, segmentFrames, storeRecovery, spoolFile, eventJSON, questions, httpQuery, indexFile,
        compactedSegment, natsParser, gridCheckpoint, textTokens,
    ]

    public static func named(_ name: String) -> FuzzTarget? { all.first { $0.name == name } }
}

/// Traps with `message` when `condition` is false: an invariant a decoder broke.
@inline(__always)
func check(_ condition: @autoclosure () -> Bool, _ message: @autoclosure () -> String,
           file: StaticString = #fileID, line: UInt = #line) {
    if !condition() { fatalError("fuzz invariant failed: \(message())", file: file, line: line) }
}

/// Reads fuzz input front to back; past the end it yields zeros, so every input is usable.
struct InputReader {
    let bytes: [UInt8]
    private(set) var position = 0

    init(_ bytes: [UInt8]) { self.bytes = bytes }

    var remaining: Int { bytes.count - position }
    var isAtEnd: Bool { position >= bytes.count }

    mutating func u8() -> UInt8 {
        guard position < bytes.count else { return 0 }
        defer { position += 1 }
        return bytes[position]
    }

    mutating func u16() -> UInt16 { UInt16(u8()) | UInt16(u8()) << 8 }

    mutating func take(_ n: Int) -> [UInt8] {
        let n = max(0, min(n, remaining))
        defer { position += n }
        return Array(bytes[position..<(position + n)])
    }

    mutating func rest() -> [UInt8] { take(remaining) }
}

/// Little-endian helpers for the harnesses that repair checksums.
extension Array where Element == UInt8 {
    func u32(at i: Int) -> UInt32 {
        var v: UInt32 = 0
        for k in 0..<4 { v |= UInt32(self[i + k]) << (8 * k) }
        return v
    }

    mutating func put(_ v: UInt64, at i: Int) {
        for k in 0..<8 { self[i + k] = UInt8(truncatingIfNeeded: v >> (8 * k)) }
    }

    mutating func put(_ v: UInt32, at i: Int) {
        for k in 0..<4 { self[i + k] = UInt8(truncatingIfNeeded: v >> (8 * k)) }
    }
}
