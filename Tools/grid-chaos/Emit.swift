import ArgumentParser
import EventEmitter
import EventStore
import Foundation
import GridEvents
import GridFixtures

/// `grid-chaos emit`: one producer process of the campaign. Emits generated grid events through the
/// EventEmitter at a steady rate until the stop file appears (or `--count` events), writes its progress as JSON
/// to `--status` every 200 ms, then flushes and writes the final status. Event ids are
/// `event-<type>-<producer tag>-<sequence>`, so the checker knows every event this producer emitted from the tag and
/// the count alone; the emitter acknowledges in sequence order, so `acked` = N means sequences 1...N are acked.
struct Emit: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Run one producer of the campaign (used by the scenarios).")

    @Option(help: "grid-eventd socket path.") var storage: String
    @Option(help: "Producer name (names the spool file).") var producer: String
    @Option(help: "Events per second.") var rate = 5000
    @Option(help: "Stop after this many events (0: until the stop file exists).") var count = 0
    @Option(name: .customLong("spool-dir"), help: "Spool directory.") var spoolDir: String
    @Option(help: "Progress file (JSON, rewritten every 200 ms).") var status: String
    @Option(name: .customLong("stop-file"), help: "Stop emitting once this file exists.") var stopFile: String?
    @Option(name: .customLong("flush-timeout"), help: "Seconds to wait for every event to be acknowledged.") var flushTimeout = 120.0
    @Option(help: "Seed for the generated events.") var seed: UInt64 = 1

    func run() throws {
        var options = EmitterOptions(producerName: producer)
        options.spoolDirectory = spoolDir
        options.notice = { message in
            FileHandle.standardError.write(Data("[\(ChaosClock.stamp())] emitter: \(message)\n".utf8))
        }
        let emitter = EventEmitter(storage: storage, options: options)
        var grid = SampleGrid(seed: seed)
        let pool = (0..<2048).map { grid.event(index: $0, count: 2048).kind }
        let start = monotonicNanos()
        var emitted = 0
        var maxQueued = 0
        var lastStatus: UInt64 = 0
        func writeStatus(final: Bool, complete: Bool = false) {
            let s = emitter.stats
            maxQueued = max(maxQueued, s.queued)
            let object: [String: Any] = [
                "producer": emitter.producerId, "tag": emitter.producerTag, "emitted": s.emitted, "acked": s.acked,
                "spooled": s.spooled, "dropped": s.dropped, "queued": s.queued, "max_queued": maxQueued,
                "spool_bytes": s.spoolBytes, "spool_damaged_bytes": s.spoolDamagedBytes, "store_refusals": s.storeRefusals,
                "reconnects": s.reconnects, "final": final, "complete": complete,
                "seconds": Double(monotonicNanos() - start) / 1e9,
            ]
            if let data = try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]) {
                let tmp = status + ".tmp"
                _ = FileManager.default.createFile(atPath: tmp, contents: data)
                rename(tmp, status)
            }
        }
        while count == 0 || emitted < count {
            if let stopFile, emitted % 64 == 0, FileManager.default.fileExists(atPath: stopFile) { break }
            let now = monotonicNanos()
            let due = Int(Double(now - start) / 1e9 * Double(rate))
            var n = min(due - emitted, 2048)
            if count > 0 { n = min(n, count - emitted) }
            for _ in 0..<max(0, n) {
                _ = emitter.emit(pool[emitted % pool.count])
                emitted += 1
            }
            if now - lastStatus > 200_000_000 {
                lastStatus = now
                writeStatus(final: false)
            }
            if n <= 0 { usleep(1000) }
        }
        writeStatus(final: false)
        let complete = emitter.flush(timeout: flushTimeout)
        writeStatus(final: true, complete: complete)
        emitter.close(timeout: 1)
        print((try? String(contentsOfFile: status, encoding: .utf8)) ?? "{}")
        if !complete { throw ExitCode(2) }
    }
}

enum ChaosClock {
    static func stamp() -> String {
        var t = timeval()
        gettimeofday(&t, nil)
        return String(format: "%d.%03d", t.tv_sec, t.tv_usec / 1000)
    }
}
