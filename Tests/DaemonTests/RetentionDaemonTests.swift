@testable import EventDaemon
import EventStore
import Foundation
import GridEvents
import Testing

/// grid-eventd with compaction and retention switched on from a config file and flags: sealed segments are
/// compacted and the oldest deleted while producers write, the deletion is logged and kept in the manifest.
@Suite("grid-eventd: compaction and retention", .serialized)
struct RetentionDaemonTests {
    @Test func configFileAndFlagsDriveCompactionAndRetention() throws {
        let dir = TempDir("retain")
        let config = dir.file("eventd.toml")
        try """
            # grid-eventd settings; flags on the command line win
            segment_size = 65536
            compression = "high"
            max_bytes = "1GB"
            """.write(toFile: config, atomically: true, encoding: .utf8)
        let daemon = DaemonProcess(
            dataDir: dir.file("data"), socket: dir.file("s.sock"), extra: ["--config", config, "--max-bytes", "300KB"])
        try daemon.start()
        let producer = try Child("emit-load", [
            "--storage", daemon.socket, "--count", "6000", "--producer", "ret", "--spool-dir", dir.file("spool"), "--seed", "4",
        ])
        let result = producer.wait(timeout: 120)
        #expect(result.status == 0, "\(result.stderr)")
        #expect(summary(result.stdout)["acked"] as? Int == 6000, "\(result.stdout)")
        // Maintenance runs after each seal; give the passes a moment: retention has deleted, and every sealed
        // segment left is compacted (only the active segment is a raw file).
        let deadline = Date().addingTimeInterval(30)
        func rawSegments() -> Int {
            (try? FileManager.default.contentsOfDirectory(atPath: dir.file("data")).filter { $0.hasSuffix(".sgs") }.count) ?? 0
        }
        while Date() < deadline, !daemon.log().contains("retention deleted") || rawSegments() > 1 { usleep(50_000) }
        #expect(daemon.stop() == 0)
        let log = daemon.log()
        #expect(log.contains("retention deleted segment(s)"), "\(log.suffix(2000))")
        try withStore(dir.file("data")) { store in
            let st = store.stats
            #expect(st.retention.segments > 0)
            #expect(st.retention.events > 0)
            #expect(st.compactedSegments > 0, "sealed segments are compacted in the background")
            #expect(st.diskBytes <= 300_000 + 65_536 * 2, "the store stays near --max-bytes (\(st.diskBytes))")
            // What retention kept plus what it deleted is everything the producer had acknowledged.
            #expect(st.events + st.retention.events >= 6000)
        }
        let verify = try Child("segdump", [dir.file("data"), "--verify"]).wait()
        #expect(verify.status == 0, "\(verify.stdout.suffix(1500))")
    }

    @Test func badRetentionSettingsAreRefusedWithAClearError() throws {
        let dir = TempDir("retain-bad")
        var r = try Child("grid-eventd", ["--data-dir", dir.file("data"), "--retain", "3 fortnights"]).wait(timeout: 20)
        #expect(r.status != 0)
        #expect(r.stderr.contains("is not a duration"), "\(r.stderr)")
        r = try Child("grid-eventd", ["--data-dir", dir.file("data"), "--max-bytes", "lots"]).wait(timeout: 20)
        #expect(r.status != 0)
        #expect(r.stderr.contains("is not a size"), "\(r.stderr)")
        let config = dir.file("bad.toml")
        try "retain = \"30d\"\nretian = \"1d\"\n".write(toFile: config, atomically: true, encoding: .utf8)
        r = try Child("grid-eventd", ["--data-dir", dir.file("data"), "--config", config, "--http", "127.0.0.1:0"]).wait(timeout: 20)
        #expect(r.status != 0)
        #expect(r.stderr.contains("bad.toml:2: unknown key retian"), "\(r.stderr)")
        // Values from the file are range-checked like the flags (and reach the daemon: a flag default no longer
        // overrides them).
        for (line, message) in [("max_frame = 1000", "max frame"), ("metrics_interval = 0", "metrics interval"),
                                ("frame_timeout = 0", "frame timeout")] {
            try (line + "\n").write(toFile: config, atomically: true, encoding: .utf8)
            r = try Child("grid-eventd", ["--data-dir", dir.file("data"), "--config", config, "--http", "127.0.0.1:0"]).wait(timeout: 20)
            #expect(r.status != 0, "\(line)")
            #expect(r.stderr.contains(message), "\(line): \(r.stderr)")
        }
    }

    @Test func configValuesMapOntoStoreOptions() throws {
        var c = DaemonConfig()
        try c.apply(ConfigFile.parse("""
            data_dir = "/var/lib/grid"
            http = "0.0.0.0:7780"
            token = "0123456789abcdef0123"
            sync = "always"
            compression = "none"
            retain = "30d"
            max_bytes = "50GB"
            """))
        #expect(c.httpHost == "0.0.0.0" && c.httpPort == 7780)
        let o = c.storeOptions
        #expect(c.dataDirectory == "/var/lib/grid")
        #expect(o.durability == .always && o.compression == Compression.none)
        #expect(o.retainMicros == Int64(30) * 86_400 * 1_000_000)
        #expect(o.maxBytes == 50_000_000_000)
        #expect(throws: ConfigFile.ParseError.self) { _ = try c.apply(ConfigFile.parse("max_bytes = \"-5\"")) }
        #expect(throws: ConfigFile.ParseError.self) { _ = try c.apply(ConfigFile.parse("compression = \"zstd\"")) }
    }
}
