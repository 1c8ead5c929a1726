#if canImport(Glibc)
import Glibc
#endif

/// Totals of what retention deleted, kept in the manifest so they survive restarts.
public struct RetentionTotals: Sendable, Equatable {
    public var segments = 0
    public var events = 0
    public var bytes = 0
    /// When the last deletion happened (microseconds since the epoch), 0 when never.
    public var lastDeletion: Int64 = 0
    /// The last segment deleted (0 when none).
    public var lastSegment: UInt64 = 0
}

/// The store's manifest (`MANIFEST`): which sealed segments are compacted and where retention has cut the
/// log. A text file whose last line is a checksum of the lines before it; replaced atomically (write a
/// temporary file, fsync, rename, fsync the directory), so a crash leaves the old manifest or the new one.
/// Layout in docs/FORMAT.md ("Manifest").
struct Manifest: Equatable {
    static let fileName = "MANIFEST"
    static let firstLine = "sutra-grid-events manifest 1"

    var generation: UInt64 = 0
    /// Segments below this id were deleted by retention; their files are removed if found.
    var firstSegment: UInt64 = 0
    var compacted: Set<UInt64> = []
    var retention = RetentionTotals()

    func encode() -> String {
        var s = Manifest.firstLine + "\n"
        s += "generation \(generation)\n"
        s += "first-segment \(firstSegment)\n"
        s += "compacted" + compacted.sorted().map { " \($0)" }.joined() + "\n"
        s += "retention-deleted-segments \(retention.segments)\n"
        s += "retention-deleted-events \(retention.events)\n"
        s += "retention-deleted-bytes \(retention.bytes)\n"
        s += "retention-last-deletion \(retention.lastDeletion)\n"
        s += "retention-last-segment \(retention.lastSegment)\n"
        return s + "checksum " + hex(Hash.bytes(Array(s.utf8))) + "\n"
    }

    static func parse(_ text: String) -> Result<Manifest, FormatProblem> {
        var all = text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        while all.last == "" { all.removeLast() }
        guard let last = all.last, last.hasPrefix("checksum ") else { return .failure(FormatProblem("no checksum line")) }
        all.removeLast()
        let body = all.map { $0 + "\n" }.joined()
        let stated = String(last.dropFirst("checksum ".count)).trimmingWhitespace
        guard stated == hex(Hash.bytes(Array(body.utf8))) else { return .failure(FormatProblem("checksum mismatch")) }
        var m = Manifest()
        var lines = body.split(separator: "\n")
        guard lines.first.map(String.init) == firstLine else { return .failure(FormatProblem("unknown manifest version")) }
        lines.removeFirst()
        for line in lines {
            let parts = line.split(separator: " ")
            guard let key = parts.first else { continue }
            let values = parts.dropFirst().compactMap { Int64($0) }
            guard values.count == parts.count - 1 else { return .failure(FormatProblem("bad line \"\(line)\"")) }
            let v = values.first ?? 0
            switch key {
            case "generation": m.generation = UInt64(max(0, v))
            case "first-segment": m.firstSegment = UInt64(max(0, v))
            case "compacted": m.compacted = Set(values.map { UInt64(max(0, $0)) })
            case "retention-deleted-segments": m.retention.segments = Int(v)
            case "retention-deleted-events": m.retention.events = Int(v)
            case "retention-deleted-bytes": m.retention.bytes = Int(v)
            case "retention-last-deletion": m.retention.lastDeletion = v
            case "retention-last-segment": m.retention.lastSegment = UInt64(max(0, v))
            default: break  // lines added by later versions are ignored
            }
        }
        return .success(m)
    }

    /// Reads the manifest of `directory`: nil when there is none, a problem when it is damaged.
    static func read(_ directory: String, _ sys: SystemCalls) throws(StoreError) -> Result<Manifest, FormatProblem>? {
        switch try readWholeFile(directory + "/" + fileName, maxBytes: 1 << 20, sys) {
        case .missing: return nil
        case .tooLarge(let size): return .failure(FormatProblem("manifest of \(size) bytes is implausibly large"))
        case .bytes(let bytes): return parse(String(decoding: bytes, as: UTF8.self))
        }
    }

    /// Replaces the manifest atomically.
    func write(_ directory: String, _ sys: SystemCalls) throws(StoreError) {
        let path = directory + "/" + Manifest.fileName
        try writeFileAtomically(path, Array(encode().utf8), directory: directory, sys)
    }
}

/// What `readWholeFile` found.
enum WholeFile {
    case missing
    case tooLarge(UInt64)
    case bytes([UInt8])
}

/// The whole file at `path` in one read: `.missing` when there is no such file, `.tooLarge` (nothing read) when it
/// is over `maxBytes`.
/// - Throws: `StoreError` for any other failure (EIO, EMFILE, ...: the file may be fine, so a caller must not take
///   this for damage).
func readWholeFile(_ path: String, maxBytes: Int, _ sys: SystemCalls) throws(StoreError) -> WholeFile {
    let fd: Int32
    do throws(StoreError) {
        fd = try sys.open(path, flags: O_RDONLY)
    } catch {
        if error.errno == ENOENT { return .missing }
        throw error
    }
    defer { sys.close(fd) }
    let size = try sys.fileSize(fd, path: path)
    guard size <= UInt64(max(0, maxBytes)) else { return .tooLarge(size) }
    return .bytes(try sys.pread(fd, count: Int(size), at: 0, path: path))
}

/// Writes `bytes` to `path` so that a crash leaves the old file or the new one: a temporary file is written and
/// synced, renamed over `path`, and the directory synced.
func writeFileAtomically(_ path: String, _ bytes: [UInt8], directory: String, _ sys: SystemCalls) throws(StoreError) {
    let tmp = path + ".tmp"
    let fd = try sys.open(tmp, flags: O_WRONLY | O_CREAT | O_TRUNC)
    do throws(StoreError) {
        try sys.pwriteAll(fd, bytes, at: 0, path: tmp)
        try sys.fsync(fd, path: tmp)
        sys.close(fd)
    } catch {
        sys.close(fd)
        try? sys.unlink(tmp)
        throw error
    }
    try sys.rename(tmp, path)
    try sys.syncDirectory(directory)
}

func hex(_ v: UInt64) -> String {
    let s = String(v, radix: 16)
    return String(repeating: "0", count: 16 - s.count) + s
}
