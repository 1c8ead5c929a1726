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
    /// Set for a compacted segment (`.sgc`).
    public var compressed: CompressedInfo?

    public var batchFrames: Int { frames.filter { $0.kind == .batch }.count }
    public var records: Int { frames.reduce(0) { $0 + $1.recordCount } }
    public var concepts: Int { frames.reduce(0) { $0 + $1.concepts } }
    public var adjacency: Int { frames.reduce(0) { $0 + $1.adjacency } }
    public var minTimestamp: Int64? { frames.filter { $0.kind == .batch }.map(\.minTimestamp).min() }
    public var maxTimestamp: Int64? { frames.filter { $0.kind == .batch }.map(\.maxTimestamp).max() }
    /// True when every checksum matched and nothing was skipped (a torn tail is reported separately).
    public var isClean: Bool { headerProblem == nil && damage.isEmpty }
}

/// What a compacted segment file holds.
public struct CompressedInfo: Sendable {
    public var blocks: Int
    /// 1 for LZ4 fast, 9 for LZ4 HC.
    public var level: Int
    /// Bytes of the original segment (the raw byte space the blocks decompress to).
    public var rawBytes: Int
    public var badBlocks: Int
}

/// What a read-only inspection of one index file found.
public struct IndexReport: Sendable {
    public var path: String
    public var segment: UInt64
    public var fileBytes: UInt64
    public var problem: String?
    public var events = 0
    public var adjacency = 0
    public var duplicates = 0
    public var frames = 0
    public var minTimestamp: Int64?
    public var maxTimestamp: Int64?
    /// Bytes per section, in file order.
    public var sections: [(name: String, bytes: Int)] = []
}

/// What a read-only inspection of the manifest found.
public struct ManifestReport: Sendable {
    public var path: String
    public var problem: String?
    public var generation: UInt64 = 0
    public var firstSegment: UInt64 = 0
    public var compacted: [UInt64] = []
    public var retention = RetentionTotals()
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
            .compactMap { name in (Format.segmentId(fromFileName: name) ?? compactedId(name)).map { ($0, name) } }
            .sorted { $0.0 != $1.0 ? $0.0 < $1.0 : $0.1 < $1.1 }
            .map { directory + "/" + $0.1 }
    }

    static func compactedId(_ name: String) -> UInt64? { Format.segmentId(name, suffix: ".sgc") }

    /// Paths of the index files in `directory`, in segment order.
    public static func indexFiles(in directory: String) throws(StoreError) -> [String] {
        try SystemCalls.live.listDirectory(directory)
            .filter { $0.hasPrefix("seg-") && $0.hasSuffix(".sgi") }
            .sorted()
            .map { directory + "/" + $0 }
    }

    /// Checks an index file: header, every section checksum, and the sizes the readers rely on.
    public static func inspectIndex(path: String) throws(StoreError) -> IndexReport {
        let sys = SystemCalls.live
        let name = path.split(separator: "/").last.map(String.init) ?? path
        let id = Format.segmentId(name, suffix: ".sgi") ?? 0
        let fd = try sys.open(path, flags: O_RDONLY)
        defer { sys.close(fd) }
        let size = try sys.fileSize(fd, path: path)
        var report = IndexReport(path: path, segment: id, fileBytes: size)
        guard size >= UInt64(IndexFile.headerSize) else {
            report.problem = "file shorter than the \(IndexFile.headerSize)-byte header"
            return report
        }
        let base = try sys.mapReadOnly(fd, length: Int(size), path: path)
        defer { sys.unmap(base, length: Int(size)) }
        let buf = UnsafeRawBufferPointer(start: base, count: Int(size))
        switch IndexFile.parseHeader(buf) {
        case .failure(let p):
            report.problem = p.reason
        case .success(let h):
            report.events = h.conceptCount
            report.adjacency = h.adjacencyCount
            report.duplicates = h.duplicateCount
            if h.minTimestamp <= h.maxTimestamp {
                report.minTimestamp = h.minTimestamp
                report.maxTimestamp = h.maxTimestamp
            }
            for (i, section) in h.sections.enumerated() {
                let kind = IndexFile.Section(rawValue: i)!
                report.sections.append((kind.name, section.length))
                if report.problem == nil, Hash.bytes(buf.slice(section.offset, section.length)) != section.checksum {
                    report.problem = "section \(kind.name) at offset \(section.offset) fails its checksum"
                }
            }
            report.frames = h.sections[IndexFile.Section.frames.rawValue].length / IndexFile.frameEntrySize
            if h.segment != id { report.problem = report.problem ?? "header names segment \(h.segment)" }
        }
        return report
    }

    /// Reads the manifest of `directory`; nil when the store has none.
    public static func inspectManifest(in directory: String) throws(StoreError) -> ManifestReport? {
        guard let result = try Manifest.read(directory, SystemCalls.live) else { return nil }
        var report = ManifestReport(path: directory + "/" + Manifest.fileName)
        switch result {
        case .failure(let p): report.problem = p.reason
        case .success(let m):
            report.generation = m.generation
            report.firstSegment = m.firstSegment
            report.compacted = m.compacted.sorted()
            report.retention = m.retention
        }
        return report
    }

    /// Scans one segment file, calling `onRecord` for each record of each valid batch frame when given.
    public static func inspect(
        path: String, onRecord: ((FrameInfo, Record) -> Void)? = nil
    ) throws(StoreError) -> SegmentReport {
        let sys = SystemCalls.live
        let name = path.split(separator: "/").last.map(String.init) ?? path
        if name.hasSuffix(".sgc") { return try inspectCompacted(path: path, name: name, onRecord: onRecord) }
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
        scan(buf, into: &report, onRecord: onRecord)
        return report
    }

    /// Decompresses a compacted segment (checking each block) and scans the result like a segment file.
    private static func inspectCompacted(
        path: String, name: String, onRecord: ((FrameInfo, Record) -> Void)?
    ) throws(StoreError) -> SegmentReport {
        let id = compactedId(name) ?? 0
        var report = SegmentReport(path: path, id: id, fileBytes: 0)
        let file: CompactedFile
        do throws(StoreError) {
            file = try CompactedFile(path: path, segment: id, sys: SystemCalls.live)
        } catch {
            guard error.code == .corrupt else { throw error }
            report.headerProblem = error.message
            return report
        }
        report.fileBytes = UInt64(file.length)
        let (bytes, bad) = file.decompressAll()
        report.compressed = CompressedInfo(
            blocks: file.header.blocks.count, level: file.header.level, rawBytes: file.header.rawLength, badBlocks: bad.count)
        bytes.withUnsafeBytes { buf in
            switch Format.parseSegmentHeader(buf) {
            case .failure(let problem):
                if bad.first?.rawOffset != 0 { report.headerProblem = problem.reason }
            case .success(let h):
                report.created = h.created
                report.capacity = h.capacity
            }
            scan(buf, into: &report, onRecord: onRecord)
        }
        for b in bad {
            let index = file.header.blocks.firstIndex(of: b) ?? 0
            report.damage.append(
                Damage(segment: id, offset: UInt64(b.rawOffset), length: UInt64(b.rawLength),
                       reason: "compressed block \(index) (file offset \(b.fileOffset)) fails its checksum or does not decompress"))
        }
        report.damage.sort { $0.offset < $1.offset }
        return report
    }

    private static func scan(
        _ buf: UnsafeRawBufferPointer, into report: inout SegmentReport, onRecord: ((FrameInfo, Record) -> Void)?
    ) {
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
    }
}
