import EventStore
import Foundation
import GridEvents

/// The ingest rows: importing JSON lines with `grid-cli emit` into a running grid-eventd next to SQLite loading the
/// same lines, and the largest burst `emit-load` can throw at the emitter without a drop.
extension GridBench {
    /// Writes `events` as flat JSON lines without ids (as an operator's export would be; grid-cli makes the ids).
    func writeJSONLines(_ events: [GridEvent], to path: String) throws -> Int {
        FileManager.default.createFile(atPath: path, contents: nil)
        guard let out = FileHandle(forWritingAtPath: path) else { throw BenchError("cannot write \(path)") }
        var chunk = ""
        var bytes = 0
        for e in events {
            chunk += e.flatJSON.replacingOccurrences(of: ",\"id\":\"\(e.id)\"", with: "")
            chunk += "\n"
            if chunk.utf8.count >= 4 << 20 {
                bytes += chunk.utf8.count
                out.write(Data(chunk.utf8))
                chunk.removeAll(keepingCapacity: true)
            }
        }
        bytes += chunk.utf8.count
        out.write(Data(chunk.utf8))
        try out.close()
        return bytes
    }

    /// Starts grid-eventd on `dir`; returns it once its socket exists.
    func startDaemon(_ dir: String, sync: String) throws -> Process {
        let daemon = Process()
        daemon.executableURL = URL(fileURLWithPath: bin + "/grid-eventd")
        daemon.arguments = ["--data-dir", dir + "/data", "--socket", dir + "/s.sock", "--sync", sync, "--http", "127.0.0.1:0", "--log-level", "warning"]
        try daemon.run()
        for _ in 0..<500 where !FileManager.default.fileExists(atPath: dir + "/s.sock") { usleep(20_000) }
        return daemon
    }

    func ingestRows(_ all: [GridEvent]) throws -> [Row] {
        var rows: [Row] = []
        let lines = work + "/import.jsonl"
        let size = try writeJSONLines(all, to: lines)
        print("import: \(all.count) JSON lines, \(size / 1_000_000) MB")
        var ours: [Double] = []
        var lite: [Double] = []
        var seconds: [Double] = []
        var cpu: [Double] = []
        for r in 0..<runs {
            let dir = work + "/import-\(r)"
            try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
            let daemon = try startDaemon(dir, sync: "batch")
            let cli = Process()
            cli.executableURL = URL(fileURLWithPath: bin + "/grid-cli")
            cli.arguments = ["emit", "--storage", dir + "/s.sock", "--spool-dir", dir + "/spool", "--timeout", "120"]
            cli.standardInput = FileHandle(forReadingAtPath: lines)
            let out = Pipe()
            cli.standardOutput = out
            var before = rusage()
            getrusage(Int32(RUSAGE_CHILDREN.rawValue), &before)
            let t0 = monotonicNanos()
            try cli.run()
            let text = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            cli.waitUntilExit()
            let elapsed = Double(monotonicNanos() - t0) / 1e9
            daemon.terminate()
            daemon.waitUntilExit()
            // Both children have been waited for: their CPU is in RUSAGE_CHILDREN (the daemon's includes its start).
            var after = rusage()
            getrusage(Int32(RUSAGE_CHILDREN.rawValue), &after)
            func secs(_ t: timeval) -> Double { Double(t.tv_sec) + Double(t.tv_usec) / 1e6 }
            cpu.append((secs(after.ru_utime) + secs(after.ru_stime) - secs(before.ru_utime) - secs(before.ru_stime)) / Double(all.count) * 1e6)
            guard cli.terminationStatus == 0, text.contains("\(all.count) of \(all.count) event(s) acknowledged") else {
                throw BenchError("grid-cli emit did not store every line (exit \(cli.terminationStatus)): \(text)")
            }
            ours.append(Double(all.count) / elapsed)
            seconds.append(elapsed)
            try? FileManager.default.removeItem(atPath: dir)

            // SQLite: the same lines, the same decoder and id rule, batched transactions of 1,000.
            let sqlite = try SQLiteBaseline(path: work + "/import-\(r).sqlite")
            let t1 = monotonicNanos()
            let data = try Data(contentsOf: URL(fileURLWithPath: lines))
            var batch: [GridEvent] = []
            batch.reserveCapacity(1000)
            var count = 0
            var decodeNanos: UInt64 = 0
            var insertNanos: UInt64 = 0
            try data.withUnsafeBytes { (b: UnsafeRawBufferPointer) in
                var start = 0
                var number = 0
                while start < b.count {
                    var end = start
                    while end < b.count, b[end] != 0x0A { end += 1 }
                    number += 1
                    let line = UnsafeRawBufferPointer(rebasing: b[start..<end])
                    let td = monotonicNanos()
                    let d = try FlatEventDecoder.decode(line)
                    decodeNanos += monotonicNanos() - td
                    let ts = d.timestamp ?? 0
                    let h = Hash.bytes(line, seed: UInt64(bitPattern: ts)) & 0xFFFF_FFFF_FFFF
                    let hex = String(h, radix: 16)
                    let id = d.id ?? "event-\(d.kind.typeName)-\(String(repeating: "0", count: 12 - hex.count) + hex)-\(number)"
                    batch.append(GridEvent(id: id, timestamp: ts, kind: d.kind))
                    if batch.count == 1000 {
                        let ti = monotonicNanos()
                        try sqlite.insert(batch)
                        insertNanos += monotonicNanos() - ti
                        batch.removeAll(keepingCapacity: true)
                    }
                    count += 1
                    start = end + 1
                }
            }
            if !batch.isEmpty { try sqlite.insert(batch) }
            lite.append(Double(count) / (Double(monotonicNanos() - t1) / 1e9))
            try? FileManager.default.removeItem(atPath: work + "/import-\(r).sqlite")
            print("import run \(r + 1): grid-cli \(String(format: "%.2f", elapsed)) s, SQLite \(String(format: "%.0f", lite.last!)) events/s (decoding \(String(format: "%.2f", Double(decodeNanos) / 1e9)) s, inserting \(String(format: "%.2f", Double(insertNanos) / 1e9)) s)")
        }
        rows.append(Row(name: "import \(all.count / 1000)k JSON lines: grid-cli emit into grid-eventd --sync batch (SQLite: same decoder, WAL, NORMAL, 1,000 per transaction)", unit: "events/s", ours: ours, sqlite: lite, higherIsBetter: true))
        rows.append(Row(name: "import \(all.count / 1000)k JSON lines: wall time, grid-cli start to exit", unit: "s", ours: seconds, sqlite: nil, higherIsBetter: false))
        rows.append(Row(name: "import: CPU of grid-cli + grid-eventd per event", unit: "µs", ours: cpu, sqlite: nil, higherIsBetter: false))
        try? FileManager.default.removeItem(atPath: lines)
        return rows
    }

    /// Bursts of increasing size from one emit-load (as fast as its loop goes; queue 100,000, spool 256 MiB) into a
    /// running daemon: the largest with nothing dropped and everything acknowledged.
    func burstRow() throws -> Row {
        var largest = 0.0
        for count in [500_000, 1_000_000, 1_500_000, 2_000_000, 2_500_000] {
            let dir = work + "/burst-\(count)"
            try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
            defer { try? FileManager.default.removeItem(atPath: dir) }
            let daemon = try startDaemon(dir, sync: "batch")
            defer {
                daemon.terminate()
                daemon.waitUntilExit()
            }
            let p = Process()
            p.executableURL = URL(fileURLWithPath: bin + "/emit-load")
            p.arguments = ["--storage", dir + "/s.sock", "--count", String(count), "--producer", "burst", "--spool-dir", dir + "/spool", "--flush-timeout", "600"]
            let out = Pipe()
            p.standardOutput = out
            p.standardError = FileHandle.nullDevice
            try p.run()
            let data = out.fileHandleForReading.readDataToEndOfFile()
            p.waitUntilExit()
            let line = String(decoding: data, as: UTF8.self).split(separator: "\n").last.map(String.init) ?? "{}"
            let obj = (try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any]) ?? [:]
            let dropped = obj["dropped"] as? Int ?? -1
            let acked = obj["acked"] as? Int ?? -1
            print("burst of \(count): acked \(acked), spooled \(obj["spooled"] as? Int ?? -1), dropped \(dropped), emit \(String(format: "%.2f", obj["emit_seconds"] as? Double ?? 0)) s, all acked after \(String(format: "%.1f", obj["total_seconds"] as? Double ?? 0)) s")
            guard dropped == 0, acked == count else { break }
            largest = Double(count)
        }
        return Row(name: "largest burst absorbed without a drop (emit-load as fast as it loops; queue 100,000, spool 256 MiB; tried 0.5M-2.5M)", unit: "events", ours: [largest], sqlite: nil, higherIsBetter: true)
    }
}
