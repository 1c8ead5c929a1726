import ArgumentParser
import EventEmitter
import Foundation
import GridBase
import GridEvents
import GridFixtures
import GridVersion

/// A producer process for tests and benchmarks: emits generated grid events through the EventEmitter as fast as
/// it can (or at a set rate), flushes, and reports what happened.
@main
struct EmitLoad: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "emit-load",
        abstract: "Emit generated grid events through the emitter and report acks and emit() latency.",
        version: GridVersion.current)

    @Option(help: "grid-eventd socket path.")
    var storage: String

    @Option(help: "Events to emit.")
    var count = 10_000

    @Option(help: "Producer name (names the spool file).")
    var producer = "emit-load"

    @Option(name: .customLong("spool-dir"), help: "Spool directory.")
    var spoolDir: String?

    @Option(name: .customLong("queue-capacity"), help: "Events the emitter holds in memory (default 100,000).")
    var queueCapacity: Int?

    @Option(name: .customLong("spool-limit"), help: "Largest spool file, bytes (default 256 MiB).")
    var spoolLimit: Int?

    @Option(help: "Write the id of every emitted event here, one per line, before flushing.")
    var ids: String?

    @Option(help: "Events per second (0: as fast as possible).")
    var rate = 0

    @Option(help: "Seconds to wait for every event to be acknowledged.")
    var flushTimeout = 120.0

    @Flag(help: "Exit right after emitting, without flushing (leaves the spool for the next start).")
    var noFlush = false

    @Flag(help: "Wait until every event is in the spool, then kill this process with SIGKILL (tests spool replay).")
    var dieAfterSpooling = false

    @Option(help: "Seed for the generated events.")
    var seed: UInt64 = 1

    @Option(name: .customLong("write-jsonl"), help: "Write --count generated events as flat JSON lines (no ids: grid-cli emit makes them) to this file, and exit.")
    var writeJSONL: String?

    func run() throws {
        if let writeJSONL { return try EmitLoad.writeLines(count: count, seed: seed, to: writeJSONL) }
        var options = EmitterOptions(producerName: producer)
        if let spoolDir { options.spoolDirectory = spoolDir }
        if let queueCapacity { options.queueCapacity = queueCapacity }
        if let spoolLimit { options.spoolLimitBytes = spoolLimit }
        let emitter = EventEmitter(storage: storage, options: options)
        var grid = SampleGrid(seed: seed)
        let kinds = (0..<count).map { grid.event(index: $0, count: count).kind }
        var idList: [String] = []
        idList.reserveCapacity(count)
        var latencies = [UInt64](repeating: 0, count: count)
        let start = monotonicNanos()
        for (i, kind) in kinds.enumerated() {
            if rate > 0 {
                let due = start + UInt64(i) * 1_000_000_000 / UInt64(rate)
                while monotonicNanos() < due { usleep(100) }
            }
            let t0 = monotonicNanos()
            let seq = emitter.emit(kind)
            latencies[i] = monotonicNanos() - t0
            if ids != nil { idList.append(emitter.id(of: kind, sequence: seq)) }
        }
        let emitted = monotonicNanos()
        if let ids {
            try idList.joined(separator: "\n").appending("\n").write(toFile: ids, atomically: true, encoding: .utf8)
        }
        if dieAfterSpooling {
            let deadline = monotonicNanos() + 30_000_000_000
            while emitter.stats.spooled < count, monotonicNanos() < deadline { usleep(10_000) }
            FileHandle.standardOutput.write(Data("spooled \(emitter.stats.spooled)\n".utf8))
            kill(getpid(), SIGKILL)
        }
        if noFlush {
            print("emitted \(count) (no flush)")
            Foundation.exit(0)  // leave without closing: what is queued or spooled stays for the next start
        }
        let complete = emitter.flush(timeout: flushTimeout)
        let done = monotonicNanos()
        let stats = emitter.stats
        emitter.close(timeout: 1)
        latencies.sort()
        func pct(_ p: Double) -> Double { latencies.isEmpty ? 0 : Double(latencies[min(latencies.count - 1, Int(Double(latencies.count) * p))]) }
        let result: [String: Any] = [
            "producer": emitter.producerId, "emitted": stats.emitted, "acked": stats.acked, "spooled": stats.spooled,
            "replayed": stats.replayed,
            "dropped": stats.dropped, "reconnects": stats.reconnects, "complete": complete,
            "emit_seconds": Double(emitted - start) / 1e9, "total_seconds": Double(done - start) / 1e9,
            "events_per_second": Double(count) / (Double(done - start) / 1e9),
            "emit_p50_ns": pct(0.5), "emit_p99_ns": pct(0.99), "emit_p999_ns": pct(0.999),
        ]
        let data = try JSONSerialization.data(withJSONObject: result, options: [.sortedKeys])
        print(String(decoding: data, as: UTF8.self))
        if !complete { throw ExitCode(2) }
    }

    /// Realistic flat JSON lines (`SampleGrid`, with timestamps, without ids), written in 4 MiB pieces.
    static func writeLines(count: Int, seed: UInt64, to path: String) throws {
        guard FileManager.default.createFile(atPath: path, contents: nil), let out = FileHandle(forWritingAtPath: path) else {
            throw ValidationError("cannot write \(path)")
        }
        var grid = SampleGrid(seed: seed)
        var chunk = ""
        chunk.reserveCapacity(4 << 20)
        for i in 0..<count {
            let e = grid.event(index: i, count: count)
            chunk += e.flatJSON.replacingOccurrences(of: ",\"id\":\"\(e.id)\"", with: "")
            chunk += "\n"
            if chunk.utf8.count >= 4 << 20 {
                out.write(Data(chunk.utf8))
                chunk.removeAll(keepingCapacity: true)
            }
        }
        out.write(Data(chunk.utf8))
        try out.close()
    }
}
