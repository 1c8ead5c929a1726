import EventStore

/// The aggregator's per-host positions (`FrameOrder.Position`), kept in its data directory as
/// `aggregation/positions` (docs/FORMAT.md, "Aggregator positions"): text, one line per host, checksummed, written
/// atomically through the store's side files (temporary file, fsync, rename, directory fsync) after each stored
/// batch and before its acks.
///
/// ```
/// sutra-grid-events aggregation positions 1
/// stream GRID_EVENTS
/// processed 52017
/// host h1 10452
/// host h2 977 978 3
/// checksum 5c0d6e3b1f2a9e44
/// ```
/// `processed <n>`: every stream sequence up to n is stored or terminated (`StreamProgress.floor`).
/// `host <id> <last frame stored whole>` and, for a frame being stored in parts, its sequence and next part.
public struct PositionsFile: Sendable {
    public static let directoryName = "aggregation"
    public static let fileName = "positions"
    static let header = "sutra-grid-events aggregation positions 1"
    /// A file larger than this is refused (a million hosts at ~40 bytes).
    static let maxBytes = 64 << 20

    let store: EventStore
    public var path: String { store.directory + "/" + Self.directoryName + "/" + Self.fileName }

    public init(store: EventStore) { self.store = store }

    /// The saved positions for `stream`; nil when there is no file.
    /// - Throws: `PositionsError` when the file is damaged, names another stream or cannot be read.
    public func read(stream: String) throws(PositionsError) -> [String: FrameOrder.Position]? {
        try load(stream: stream)?.positions
    }

    /// The saved positions for `stream` and the stream sequence processed through (`StreamProgress.floor`, absent
    /// from files written before it was kept); nil when there is no file.
    public func load(stream: String) throws(PositionsError) -> (positions: [String: FrameOrder.Position], processed: UInt64?)? {
        let bytes: [UInt8]?
        do {
            bytes = try store.readSideFile(store.directory + "/" + Self.directoryName, Self.fileName, maxBytes: Self.maxBytes)
        } catch {
            throw PositionsError("cannot read \(path): \(error)")
        }
        guard let bytes else { return nil }
        return try Self.parse(bytes, stream: stream, path: path)
    }

    /// Replaces the file atomically with `positions`.
    public func write(stream: String, _ positions: [String: FrameOrder.Position], processed: UInt64? = nil) throws(PositionsError) {
        do {
            let dir = try store.sideDirectory(Self.directoryName)
            try store.writeSideFile(dir, Self.fileName, Self.render(stream: stream, positions, processed: processed))
        } catch {
            throw PositionsError("cannot write \(path): \(error)")
        }
    }

    static func render(stream: String, _ positions: [String: FrameOrder.Position], processed: UInt64? = nil) -> [UInt8] {
        var body = Self.header + "\nstream \(stream)\n"
        if let processed { body += "processed \(processed)\n" }
        for (host, p) in positions.sorted(by: { $0.key < $1.key }) {
            body += "host \(host) \(p.applied)"
            if let part = p.partial { body += " \(part.sequence) \(part.nextPart)" }
            body += "\n"
        }
        return Array((body + "checksum " + hex(Hash.bytes(Array(body.utf8))) + "\n").utf8)
    }

    static func parse(_ bytes: [UInt8], stream: String, path: String) throws(PositionsError) -> (positions: [String: FrameOrder.Position], processed: UInt64?) {
        guard let newline = bytes.lastIndex(of: 0x0A), newline == bytes.count - 1,
              let cut = bytes[..<newline].lastIndex(of: 0x0A)
        else { throw PositionsError("\(path) is not an aggregation positions file (truncated)") }
        let body = Array(bytes[...cut])
        let last = String(decoding: bytes[(cut + 1)..<newline], as: UTF8.self)
        guard last == "checksum " + hex(Hash.bytes(body)) else { throw PositionsError("\(path) fails its checksum") }
        let lines = String(decoding: body, as: UTF8.self).split(separator: "\n").map(String.init)
        guard lines.count >= 2, lines[0] == header else { throw PositionsError("\(path) is not an aggregation positions file") }
        guard lines[1] == "stream " + stream else { throw PositionsError("\(path) belongs to \(lines[1]), not stream \(stream)") }
        var positions: [String: FrameOrder.Position] = [:]
        var processed: UInt64?
        for line in lines.dropFirst(2) {
            let f = line.split(separator: " ").map(String.init)
            if f.count == 2, f[0] == "processed", processed == nil, positions.isEmpty, let n = UInt64(f[1]) {
                processed = n
                continue
            }
            guard f.count == 3 || f.count == 5, f[0] == "host", let applied = UInt64(f[2]) else {
                throw PositionsError("\(path): bad line \"\(line.prefix(200))\"")
            }
            var p = FrameOrder.Position(applied: applied)
            if f.count == 5 {
                guard let s = UInt64(f[3]), let n = Int(f[4]), n >= 1 else { throw PositionsError("\(path): bad line \"\(line.prefix(200))\"") }
                p.partial = .init(sequence: s, nextPart: n)
            }
            positions[f[1]] = p
        }
        return (positions, processed)
    }

    private static func hex(_ v: UInt64) -> String {
        let s = String(v, radix: 16)
        return String(repeating: "0", count: 16 - s.count) + s
    }
}

public struct PositionsError: Error, Sendable, CustomStringConvertible {
    public var description: String
    init(_ d: String) { description = d }
}
