#if canImport(Glibc)
import Glibc
#endif

/// What a read-only inspection of one segment file found (for `segdump`).
public struct SegmentReport: Sendable {
    public var path: String
    /// The segment id from the file name.
    public var id: UInt64
    public var fileBytes: UInt64
    /// Why the header is unreadable, or nil when it is fine.
    public var headerProblem: String?
    public var created: Int64 = 0
    public var capacity: UInt64 = 0
    public var frames: [FrameInfo] = []
    public var damage: [Damage] = []
    /// Bytes after the last good frame that are not zero fill: a torn tail (recovery truncates it) or,
    /// on a live store, a frame being written.
    public var tornTail: Damage?
    public var sealed = false
    /// End of valid data.
    public var dataBytes: Int = 0

    public var batchFrames: Int { frames.filter { $0.kind == .batch }.count }
    public var records: Int { frames.reduce(0) { $0 + $1.recordCount } }
    public var concepts: Int { frames.reduce(0) { $0 + $1.concepts } }
    public var adjacency: Int { frames.reduce(0) { $0 + $1.adjacency } }
    public var minTimestamp: Int64? { frames.filter { $0.kind == .batch }.map(\.minTimestamp).min() }
    public var maxTimestamp: Int64? { frames.filter { $0.kind == .batch }.map(\.maxTimestamp).max() }
    /// True when every checksum matched and nothing was skipped (a torn tail is reported separately).
    public var isClean: Bool { headerProblem == nil && damage.isEmpty }
}

/// Read-only access to segment files for inspection tools. Takes no lock and writes nothing, so it works on a
/// directory that a running daemon holds (a frame being written at that moment shows as a torn tail).
public enum SegmentInspector {
    /// Paths of the segment files in `directory`, in id order.
    public static func segmentFiles(in directory: String) throws(StoreError) -> [String] {
        let sys = SystemCalls.live
        guard sys.isDirectory(directory) == true else {
            throw StoreError(.io, "not a directory", path: directory, errno: ENOTDIR)
        }
        return try sys.listDirectory(directory)
            .compactMap { name in Format.segmentId(fromFileName: name).map { ($0, name) } }
            .sorted { $0.0 < $1.0 }
            .map { directory + "/" + $0.1 }
    }

    /// Scans one segment file, calling `onRecord` for each record of each valid batch frame when given.
    public static func inspect(
        path: String, onRecord: ((FrameInfo, Record) -> Void)? = nil
    ) throws(StoreError) -> SegmentReport {
        let sys = SystemCalls.live
        let name = path.split(separator: "/").last.map(String.init) ?? path
        let fd = try sys.open(path, flags: O_RDONLY)
        defer { sys.close(fd) }
        let size = try sys.fileSize(fd, path: path)
        var report = SegmentReport(path: path, id: Format.segmentId(fromFileName: name) ?? 0, fileBytes: size)
        guard size >= UInt64(Format.segmentHeaderSize) else {
            report.headerProblem = "file shorter than the 64-byte header"
            return report
        }
        let base = try sys.mapReadOnly(fd, length: Int(size), path: path)
        defer { sys.unmap(base, length: Int(size)) }
        let buf = UnsafeRawBufferPointer(start: base, count: Int(size))
        switch Format.parseSegmentHeader(buf) {
        case .failure(let problem):
            report.headerProblem = problem.reason
            return report
        case .success(let h):
            report.created = h.created
            report.capacity = h.capacity
            if h.id != report.id { report.headerProblem = "header names segment \(h.id), file name says \(report.id)" }
        }
        let scan = SegmentScanner.scan(buf, segment: report.id) { info, payload in
            guard let onRecord else { return }
            var it = RecordIterator(payload)
            while let r = it.next() {
                let bytes = payload.slice(r.offset, r.length)
                if r.kind == Format.recordKindConcept {
                    let view = ConceptView(bytes: bytes)
                    guard let tail = view.decodeTail() else { continue }
                    var c = ConceptRecord(id: view.id, typeCode: view.typeCode, timestamp: view.timestamp,
                                          entities: tail.entities, payload: tail.payload)
                    c.idHash = view.idHash
                    onRecord(info, .concept(c))
                } else {
                    onRecord(info, .adjacency(AdjacencyView(bytes: bytes).entry))
                }
            }
        }
        report.frames = scan.frames
        report.damage = scan.damage
        report.tornTail = scan.tornTail
        report.sealed = scan.sealed
        report.dataBytes = scan.end
        return report
    }
}
