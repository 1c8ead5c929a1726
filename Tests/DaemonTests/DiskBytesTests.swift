import EventRecords
import EventStore
import Foundation
import GridEvents
import Testing

/// The bytes a store takes on disk, as reported by `storage_metrics` and `/api/stats`: what the files occupy
/// (compacted segments, index files, the active segment's reservation), not the bytes of frames once written.
@Suite("grid-eventd: bytes on disk", .serialized)
struct DiskBytesTests {
    /// What `du` would say of the store's files: allocated blocks of every segment, compacted and index file.
    func allocatedBytes(_ dir: String) throws -> Int {
        var total = 0
        for name in try FileManager.default.contentsOfDirectory(atPath: dir)
        where name.hasSuffix(".sgs") || name.hasSuffix(".sgc") || name.hasSuffix(".sgi") {
            var st = stat()
            guard stat(dir + "/" + name, &st) == 0 else { continue }
            total += Int(st.st_blocks) * 512
        }
        return total
    }

    @Test func storageMetricsReportTheRealDiskUseAfterCompaction() throws {
        let dir = TempDir("diskbytes")
        let data = dir.file("data")
        let daemon = DaemonProcess(
            dataDir: data, socket: dir.file("s.sock"),
            extra: ["--segment-size", "262144", "--compression", "fast", "--metrics-interval", "0.3"])
        try daemon.start()
        let producer = try Child("emit-load", [
            "--storage", daemon.socket, "--count", "20000", "--producer", "disk", "--spool-dir", dir.file("spool"), "--seed", "9",
        ])
        let result = producer.wait(timeout: 120)
        #expect(result.status == 0, "\(result.stderr)")
        // Let maintenance compact every sealed segment (only the active one stays raw), then let a few metrics
        // events be written.
        let deadline = Date().addingTimeInterval(30)
        var raw = Int.max
        while Date() < deadline {
            raw = (try? FileManager.default.contentsOfDirectory(atPath: data).filter { $0.hasSuffix(".sgs") }.count) ?? .max
            if raw <= 1 { break }
            usleep(100_000)
        }
        #expect(raw <= 1, "every sealed segment is compacted")
        usleep(1_500_000)
        #expect(daemon.stop() == 0)
        let onDisk = try allocatedBytes(data)
        try withStore(data) { store in
            let st = store.stats
            let newest = store.events(type: EventType.storageMetrics.rawValue, limit: 1).first
            guard let newest, case .storageMetrics(_, let reported, _, _, _) = try GridEvent(stored: newest).kind else {
                Issue.record("no storage_metrics event")
                return
            }
            // Compaction makes the bytes written differ from the disk use: the metric must follow the disk.
            #expect(abs(st.dataBytes - onDisk) > 262_144, "fixture: compaction changed the size (\(st.dataBytes) written, \(onDisk) on disk)")
            #expect(abs(reported - onDisk) <= 65_536,
                    "storage_metrics says \(reported) bytes on disk; the files take \(onDisk) (\(st.dataBytes) written)")
            #expect(abs(st.diskBytes - onDisk) <= 65_536, "stats: \(st.diskBytes) vs \(onDisk)")
        }
    }
}
