import ArgumentParser
import EventStore
import Foundation
import GridBase
import GridVersion

@main
struct SegDump: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "segdump",
        abstract: "Inspect and verify the segment files of a grid-eventd data directory.",
        discussion: """
            Reads read-only and takes no lock, so it is safe on a directory a running daemon holds (a frame being
            written at that instant shows as an incomplete tail).

              segdump DIR               one line per segment and totals, index files, the manifest
              segdump FILE --records    every frame and record with its adjacency entries
              segdump DIR --verify      check every checksum (frames, compressed blocks, index files, manifest);
                                        exit 1 naming each bad frame's or block's segment and offset
              segdump DIR --json        the same as JSON
            """,
        version: GridVersion.current)

    @Argument(help: "A data directory, one segment file (seg-NNNNNNNNNN.sgs) or one compacted segment (.sgc).")
    var path: String

    @Flag(help: "Check every checksum; exit with status 1 if any frame or header is bad.")
    var verify = false

    @Flag(help: "Print every frame and record (events and adjacency entries).")
    var records = false

    @Flag(help: "Machine-readable JSON output.")
    var json = false

    mutating func run() throws {
        // A reader that leaves early (`segdump --records | head`) ends segdump quietly (StandardOutput).
        StandardOutput.ignoreSIGPIPE()
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDir) else {
            throw ValidationError("no such file or directory: \(path)")
        }
        let files = isDir.boolValue ? try SegmentInspector.segmentFiles(in: path) : [path]
        var reports: [SegmentReport] = []
        var names: [UInt64: String] = [:]
        let asJSON = json
        // Records and each segment's problems are written as they are found (not gathered first), through a
        // 64 KiB buffer; the table and totals, which need every segment, come after them.
        let out = StreamOut()
        let progress = isatty(2) == 1 ? Progress(segments: files.count) : nil
        var recordCount = 0
        var problems: [String] = []
        if asJSON && records { out.write("{\"records\":[") }
        func recordJSON(_ object: [String: Any]) {
            let data = (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])) ?? Data("{}".utf8)
            out.write((recordCount == 0 ? "\n" : ",\n") + String(decoding: data, as: UTF8.self))
        }
        for (n, file) in files.enumerated() {
            var lastFrame: UInt64 = .max
            progress?.segment(n + 1, file)
            let report = try SegmentInspector.inspect(path: file, onRecord: records ? { frame, record in
                if frame.offset != lastFrame {
                    lastFrame = frame.offset
                    if !asJSON {
                        out.write(
                            "frame @\(frame.offset) seq \(frame.sequence): \(frame.recordCount) records (\(frame.concepts) events, \(frame.adjacency) adjacency), \(frame.size) bytes\n"
                        )
                    }
                }
                switch record {
                case .concept(let c):
                    names[c.idHash] = c.id
                    for e in c.entities { names[Hash.id(e)] = e }
                    if asJSON {
                        recordJSON([
                            "frame": frame.offset, "kind": "event", "id": c.id, "type": c.typeCode,
                            "timestamp": TimeFormat.rfc3339(micros: c.timestamp), "entities": c.entities,
                            "payload_bytes": c.payload.count,
                        ])
                    } else {
                        out.write(
                            "  event  \(c.id)  type \(c.typeCode)  \(TimeFormat.rfc3339(micros: c.timestamp))  entities [\(c.entities.joined(separator: ", "))]  payload \(c.payload.count) bytes\n"
                        )
                    }
                case .adjacency(let a):
                    let source = names[a.source] ?? SegDump.hex(a.source)
                    let target = names[a.target] ?? SegDump.hex(a.target)
                    if asJSON {
                        recordJSON([
                            "frame": frame.offset, "kind": "adjacency", "source": source, "target": target,
                            "edge_type": a.edgeType, "timestamp": TimeFormat.rfc3339(micros: a.timestamp),
                        ])
                    } else {
                        out.write("  adj    \(source) -> \(target)  edge \(a.edgeType)  \(TimeFormat.rfc3339(micros: a.timestamp))\n")
                    }
                }
                recordCount += 1
                progress?.records(recordCount)
            } : nil)
            reports.append(report)
            let found = segmentProblems(report, index: n, count: files.count)
            problems += found
            if verify && !asJSON { for p in found { out.write("verify: BAD \(p)\n") } }
        }
        progress?.finish()
        if asJSON && records { out.write("\n],\n") }

        let indexes = isDir.boolValue ? try SegmentInspector.indexFiles(in: path).map { try SegmentInspector.inspectIndex(path: $0) } : []
        let manifest = isDir.boolValue ? try SegmentInspector.inspectManifest(in: path) : nil
        let laterProblems = indexProblems(indexes, reports) + manifestProblems(manifest, reports)
        problems += laterProblems
        if json {
            var object: [String: Any] = [
                "segments": reports.map(jsonObject),
                "totals": [
                    "segments": reports.count, "frames": reports.reduce(0) { $0 + $1.batchFrames },
                    "records": reports.reduce(0) { $0 + $1.records }, "events": reports.reduce(0) { $0 + $1.concepts },
                    "adjacency": reports.reduce(0) { $0 + $1.adjacency },
                    "data_bytes": reports.reduce(0) { $0 + $1.dataBytes },
                ],
            ]
            object["index_files"] = indexes.map { i -> [String: Any] in
                var o: [String: Any] = [
                    "segment": i.segment, "path": i.path, "file_bytes": i.fileBytes, "events": i.events,
                    "adjacency": i.adjacency, "duplicates": i.duplicates, "frames": i.frames,
                    "sections": Dictionary(uniqueKeysWithValues: i.sections.map { ($0.name, $0.bytes) }),
                    "status": i.problem.map { "BAD: \($0)" } ?? "ok",
                ]
                if let p = i.problem { o["problem"] = p }
                return o
            }
            if let m = manifest {
                var o: [String: Any] = [
                    "path": m.path, "generation": m.generation, "first_segment": m.firstSegment, "compacted": m.compacted,
                    "retention": [
                        "deleted_segments": m.retention.segments, "deleted_events": m.retention.events,
                        "deleted_bytes": m.retention.bytes, "last_segment": m.retention.lastSegment,
                        "last_deletion": m.retention.lastDeletion == 0 ? "" : TimeFormat.rfc3339(micros: m.retention.lastDeletion),
                    ],
                ]
                if let p = m.problem { o["problem"] = p }
                object["manifest"] = o
            }
            if verify { object["verify"] = ["ok": problems.isEmpty, "problems": problems] }
            let data = try JSONSerialization.data(withJSONObject: object, options: [.prettyPrinted, .sortedKeys])
            var text = String(decoding: data, as: UTF8.self)
            // With --records the object was opened (and its records written) already: the rest joins it.
            if records { text.removeFirst() }
            out.write(text + "\n")
            out.flush()
        } else {
            out.flush()
            printTable(reports)
            if !indexes.isEmpty { printIndexes(indexes) }
            if let m = manifest {
                if let p = m.problem {
                    print("manifest: BAD \(p)")
                } else {
                    print(
                        "manifest: generation \(m.generation), first segment \(m.firstSegment), compacted [\(m.compacted.map(String.init).joined(separator: " "))], retention deleted \(m.retention.segments) segment(s), \(m.retention.events) events, \(m.retention.bytes) bytes"
                    )
                }
            }
            if verify {
                if problems.isEmpty {
                    print("verify: OK, every checksum matched (\(reports.reduce(0) { $0 + $1.records }) records)")
                } else {
                    // The segments' problems were written as each was read; these need every segment first.
                    for p in laterProblems { print("verify: BAD \(p)") }
                    print("verify: \(problems.count) problem(s)")
                }
            }
        }
        if verify && !problems.isEmpty { throw ExitCode(1) }
    }

    func totalDisk(_ reports: [SegmentReport]) -> Int {
        reports.reduce(0) { $0 + ($1.compressed != nil ? Int($1.fileBytes) : $1.dataBytes) }
    }

    func ratio(_ a: Int, _ b: Int) -> String {
        b == 0 ? "-" : String(format: "%.1f", Double(a) / Double(b))
    }

    static func hex(_ v: UInt64) -> String {
        let s = String(v, radix: 16)
        return "#" + String(repeating: "0", count: 16 - s.count) + s
    }

    /// A segment's bad header, bad frames and torn tail (the last of a directory's segments may end torn: that is a
    /// crash's unfinished write, not damage).
    func segmentProblems(_ r: SegmentReport, index i: Int, count: Int) -> [String] {
        var problems: [String] = []
        if let h = r.headerProblem { problems.append("segment \(r.id) (\(r.path)) offset 0: \(h)") }
        for d in r.damage { problems.append("segment \(r.id) (\(r.path)) offset \(d.offset): \(d.reason), \(d.length) bytes") }
        if let t = r.tornTail, i != count - 1 || !isDirectoryInput {
            problems.append("segment \(r.id) (\(r.path)) offset \(t.offset): \(t.reason) (torn tail), \(t.length) bytes")
        } else if r.headerProblem == nil, !r.sealed, i != count - 1, isDirectoryInput {
            let end = r.frames.last.map { $0.offset + UInt64($0.size) } ?? 64
            problems.append("segment \(r.id) (\(r.path)) offset \(end): no seal frame, the segment was cut short (\(r.fileBytes) of \(r.capacity) bytes)")
        }
        return problems
    }

    /// Index files that fail a checksum, or whose counts disagree with their segment.
    func indexProblems(_ indexes: [IndexReport], _ reports: [SegmentReport]) -> [String] {
        var problems: [String] = []
        for i in indexes {
            if let p = i.problem {
                problems.append("index of segment \(i.segment) (\(i.path)): \(p)")
                continue
            }
            guard let seg = reports.first(where: { $0.id == i.segment && $0.isClean }) else { continue }
            if i.events + i.duplicates != seg.concepts {
                problems.append(
                    "index of segment \(i.segment) (\(i.path)): \(i.events) events + \(i.duplicates) duplicates, the segment holds \(seg.concepts)")
            }
        }
        return problems
    }

    /// A manifest that fails its checksum, or names compacted segments that are not there.
    func manifestProblems(_ manifest: ManifestReport?, _ reports: [SegmentReport]) -> [String] {
        guard let m = manifest else { return [] }
        if let p = m.problem { return ["manifest (\(m.path)): \(p)"] }
        var problems: [String] = []
        for id in m.compacted where !reports.contains(where: { $0.id == id && $0.compressed != nil }) {
            problems.append("manifest (\(m.path)) names segment \(id) as compacted; its .sgc file is missing")
        }
        for r in reports where r.id < m.firstSegment {
            problems.append("segment \(r.id) is below the manifest's first segment \(m.firstSegment) (retention did not finish)")
        }
        return problems
    }

    func printIndexes(_ indexes: [IndexReport]) {
        print("index files:")
        for i in indexes {
            let sections = i.sections.map { "\($0.name) \($0.bytes)" }.joined(separator: ", ")
            print("  segment \(i.segment): \(i.fileBytes) bytes, \(i.events) events, \(i.frames) frames (\(sections)): \(i.problem.map { "BAD: \($0)" } ?? "ok")")
        }
    }

    var isDirectoryInput: Bool {
        var isDir: ObjCBool = false
        return FileManager.default.fileExists(atPath: path, isDirectory: &isDir) && isDir.boolValue
    }

    func status(_ r: SegmentReport) -> String {
        if let h = r.headerProblem { return "BAD HEADER: \(h)" }
        var parts: [String] = [r.damage.isEmpty ? "ok" : "BAD: \(r.damage.count) damaged region(s)"]
        if let c = r.compressed {
            parts.append("lz4\(c.level > 1 ? "hc" : "") \(c.blocks) blocks, ratio \(ratio(c.rawBytes, Int(r.fileBytes)))")
        }
        parts.append(r.sealed ? "sealed" : "active")
        if let t = r.tornTail { parts.append("incomplete tail at \(t.offset)") }
        return parts.joined(separator: ", ")
    }

    func jsonObject(_ r: SegmentReport) -> [String: Any] {
        var o: [String: Any] = [
            "id": r.id, "path": r.path, "file_bytes": r.fileBytes, "data_bytes": r.dataBytes, "frames": r.batchFrames,
            "records": r.records, "events": r.concepts, "adjacency": r.adjacency, "sealed": r.sealed,
            "capacity": r.capacity, "created": TimeFormat.rfc3339(micros: r.created),
            "damage": r.damage.map { ["offset": $0.offset, "length": $0.length, "reason": $0.reason] },
            "status": status(r),
        ]
        if let c = r.compressed {
            o["compressed"] = [
                "blocks": c.blocks, "level": c.level, "raw_bytes": c.rawBytes, "bad_blocks": c.badBlocks,
                "ratio": Double(c.rawBytes) / Double(max(1, r.fileBytes)),
                "bytes_per_event": Double(r.fileBytes) / Double(max(1, r.concepts)),
            ]
        }
        if let h = r.headerProblem { o["header_problem"] = h }
        if let t = r.tornTail { o["torn_tail"] = ["offset": t.offset, "length": t.length, "reason": t.reason] }
        if let m = r.minTimestamp { o["min_time"] = TimeFormat.rfc3339(micros: m) }
        if let m = r.maxTimestamp { o["max_time"] = TimeFormat.rfc3339(micros: m) }
        return o
    }

    func printTable(_ reports: [SegmentReport]) {
        var rows: [[String]] = [["segment", "data_bytes", "disk_bytes", "bytes/event", "frames", "records", "events", "adjacency", "first_time", "last_time", "status"]]
        for r in reports {
            let disk = r.compressed != nil ? Int(r.fileBytes) : r.dataBytes
            rows.append([
                String(r.id), String(r.dataBytes), String(disk), ratio(disk, r.concepts), String(r.batchFrames), String(r.records), String(r.concepts),
                String(r.adjacency), r.minTimestamp.map { TimeFormat.rfc3339(micros: $0) } ?? "-",
                r.maxTimestamp.map { TimeFormat.rfc3339(micros: $0) } ?? "-", status(r),
            ])
        }
        rows.append([
            "total", String(reports.reduce(0) { $0 + $1.dataBytes }), String(totalDisk(reports)),
            ratio(totalDisk(reports), reports.reduce(0) { $0 + $1.concepts }), String(reports.reduce(0) { $0 + $1.batchFrames }),
            String(reports.reduce(0) { $0 + $1.records }), String(reports.reduce(0) { $0 + $1.concepts }),
            String(reports.reduce(0) { $0 + $1.adjacency }),
            reports.compactMap(\.minTimestamp).min().map { TimeFormat.rfc3339(micros: $0) } ?? "-",
            reports.compactMap(\.maxTimestamp).max().map { TimeFormat.rfc3339(micros: $0) } ?? "-",
            "\(reports.count) segment(s)",
        ])
        let widths = (0..<rows[0].count).map { c in rows.map { $0[c].count }.max() ?? 0 }
        for row in rows {
            var line = ""
            for (c, cell) in row.enumerated() {
                let pad = String(repeating: " ", count: widths[c] - cell.count)
                line += (c == 0 || c >= 8 ? cell + pad : pad + cell) + (c == row.count - 1 ? "" : "  ")
            }
            print(line.replacingOccurrences(of: "\\s+$", with: "", options: .regularExpression))
        }
    }
}

/// Standard output through a 64 KiB buffer, written as it fills (segdump's records and problems stream); a
/// reader that went away ends segdump with status 0 (`StandardOutput`).
final class StreamOut {
    private var buffer: [UInt8] = []

    init() { buffer.reserveCapacity(1 << 16) }

    func write(_ text: String) {
        buffer += text.utf8
        if buffer.count >= 1 << 16 { flush() }
    }

    func flush() {
        buffer.withUnsafeBytes { StandardOutput.write($0) }
        buffer.removeAll(keepingCapacity: true)
    }

    deinit { flush() }
}

/// A progress line on standard error (only on a terminal): the segment being read and the records so far.
final class Progress {
    let segments: Int
    private var current = 0
    private var name = ""
    private var last = Date.distantPast

    init(segments: Int) { self.segments = segments }

    func segment(_ n: Int, _ path: String) {
        current = n
        name = (path as NSString).lastPathComponent
        show(records: nil)
    }

    func records(_ count: Int) {
        guard count & 1023 == 0, Date().timeIntervalSince(last) >= 0.25 else { return }
        show(records: count)
    }

    private func show(records: Int?) {
        last = Date()
        let text = "\rsegdump: segment \(current) of \(segments) (\(name))" + (records.map { ", \($0) records" } ?? "") + "\u{1B}[K"
        FileHandle.standardError.write(Data(text.utf8))
    }

    func finish() { FileHandle.standardError.write(Data("\r\u{1B}[K".utf8)) }
}
