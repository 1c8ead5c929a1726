import EventStore
#if canImport(Glibc)
import Glibc
#endif

/// The replicator's cursor: the highest frame sequence JetStream has acknowledged, kept in the data directory
/// as `replication.cursor` (text: `sutra-grid-events replication cursor 1`, `stream <name>`, `sequence <n>`,
/// `checksum <XXH3-64 hex of the lines before>`). Written atomically: temporary file, fsync, rename, directory
/// fsync. A missing file means 0 (replicate everything); a damaged one is reported and also means 0 (the
/// stream's duplicate window and the receivers' dedup by id make the resend harmless).
public struct CursorFile: Sendable {
    public let directory: String
    public var path: String { directory + "/replication.cursor" }

    public init(directory: String) { self.directory = directory }

    /// The stored cursor for `stream`; nil when absent. - Throws: a message when the file is damaged or names
    /// another stream.
    public func read(stream: String) throws -> UInt64? {
        guard let f = fopen(path, "r") else { return nil }
        defer { fclose(f) }
        var text = ""
        var buf = [CChar](repeating: 0, count: 4096)
        while fgets(&buf, Int32(buf.count), f) != nil {
            text += String(cString: buf)
            if text.utf8.count > 16384 { break }
        }
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        guard lines.count >= 4, lines[0] == "sutra-grid-events replication cursor 1" else {
            throw CursorError("\(path) is not a replication cursor file")
        }
        let body = lines[0..<3].joined(separator: "\n") + "\n"
        guard lines[3] == "checksum " + hex(Hash.bytes(Array(body.utf8))) else { throw CursorError("\(path) fails its checksum") }
        guard lines[1] == "stream " + stream else {
            throw CursorError("\(path) belongs to \(lines[1]), not stream \(stream)")
        }
        guard lines[2].hasPrefix("sequence "), let n = UInt64(lines[2].dropFirst(9)) else {
            throw CursorError("\(path) has no sequence")
        }
        return n
    }

    /// Replaces the cursor atomically (tmp, fsync, rename, directory fsync).
    public func write(stream: String, sequence: UInt64) throws {
        let body = "sutra-grid-events replication cursor 1\nstream \(stream)\nsequence \(sequence)\n"
        let text = body + "checksum " + hex(Hash.bytes(Array(body.utf8))) + "\n"
        let tmp = path + ".tmp"
        let fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw CursorError("cannot create \(tmp): \(String(cString: strerror(errno)))") }
        let bytes = Array(text.utf8)
        var written = 0
        while written < bytes.count {
            let n = bytes[written...].withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
            if n < 0 {
                if errno == EINTR { continue }
                let e = String(cString: strerror(errno))
                close(fd)
                throw CursorError("cannot write \(tmp): \(e)")
            }
            written += n
        }
        guard fsync(fd) == 0 else {
            let e = String(cString: strerror(errno))
            close(fd)
            throw CursorError("cannot fsync \(tmp): \(e)")
        }
        close(fd)
        guard rename(tmp, path) == 0 else { throw CursorError("cannot rename \(tmp): \(String(cString: strerror(errno)))") }
        let dfd = open(directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if dfd >= 0 {
            _ = fsync(dfd)
            close(dfd)
        }
    }

    private func hex(_ v: UInt64) -> String {
        let s = String(v, radix: 16)
        return String(repeating: "0", count: 16 - s.count) + s
    }
}

public struct CursorError: Error, CustomStringConvertible {
    public var description: String
    init(_ d: String) { description = d }
}
