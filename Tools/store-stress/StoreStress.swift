import ArgumentParser
@_spi(Testing) import EventStore
import Foundation
import StoreFixtures
import GridVersion

@main
struct StoreStress: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "store-stress",
        abstract: "Drive the storage engine directly: a crash-test writer and an in-process append benchmark.",
        version: GridVersion.current,
        subcommands: [AppendLoop.self, Bench.self, OpenStats.self])
}

struct StoreFlags: ParsableArguments {
    @Option(help: "Data directory.")
    var dataDir: String

    @Option(help: "Durability: always, batch or none.")
    var durability: String = "batch"

    @Option(help: "Segment capacity in bytes.")
    var segmentCapacity: Int = 64 << 20

    @Option(help: "Compaction of sealed segments: fast, high or none.")
    var compression: String = "fast"

    @Option(help: "Retention by age, e.g. 30d (whole sealed segments are deleted).")
    var retain: String?

    @Option(help: "Retention by size, e.g. 50GB (oldest sealed segments are deleted first).")
    var maxBytes: String?

    @Option(help: "Run maintenance (index files, compaction, retention) in the loop every N batches instead of on a background thread (0: background).")
    var maintainEvery: Int = 0

    func options() throws -> StoreOptions {
        guard let d = Durability(rawValue: durability) else {
            throw ValidationError("--durability must be always, batch or none")
        }
        guard let c = Compression(rawValue: compression) else {
            throw ValidationError("--compression must be fast, high or none")
        }
        var o = StoreOptions(durability: d, segmentCapacity: segmentCapacity)
        o.compression = c
        o.retainMicros = try retain.map { try Quantity.duration($0) }
        o.maxBytes = try maxBytes.map { try Quantity.bytes($0) }
        o.backgroundMaintenance = maintainEvery == 0
        return o
    }
}

/// Appends synthetic batches until killed, printing `durable RUN BATCH EVENTS` after each acknowledged batch.
struct AppendLoop: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "append-loop",
        abstract: "Append synthetic batches forever; print a line for each batch once it is durable.")

    @OptionGroup var store: StoreFlags

    @Option(help: "Events per batch (each with 3 adjacency entries).")
    var events: Int = 50

    @Option(name: .customLong("run"), help: "A name for this run, part of every id.")
    var runName: String

    @Option(help: "Stop after this many batches (0: never).")
    var batches: Int = 0

    @Flag(help: "Also read the whole store over and over on another thread, checking every event it is given (each read holds its snapshot while appends, compaction and retention go on); prints `read N` after each read, `corrupt ...` and exits 3 on a bad event.")
    var readWhile = false

    func run() throws {
        let s = try EventStore.open(at: store.dataDir, options: try store.options())
        FileHandle.standardOutput.write(Data("open \(s.recovery.summary)\n".utf8))
        if readWhile {
            let reader = Thread {
                while true {
                    var n = 0
                    var last: EventPosition?
                    s.read([.all], ReadBounds(newestFirst: n % 2 == 0)) { e in
                        if let problem = SyntheticEvents.check(e) {
                            FileHandle.standardOutput.write(Data("corrupt \(problem)\n".utf8))
                            Foundation.exit(3)
                        }
                        if let last, last == e.position {
                            FileHandle.standardOutput.write(Data("corrupt \(e.id) given twice\n".utf8))
                            Foundation.exit(3)
                        }
                        last = e.position
                        n += 1
                        return true
                    }
                    FileHandle.standardOutput.write(Data("read \(n)\n".utf8))
                }
            }
            reader.start()
        }
        var n = 0
        while batches == 0 || n < batches {
            let receipt = try s.append(SyntheticEvents.batch(run: runName, batch: n, events: events))
            FileHandle.standardOutput.write(
                Data("durable \(runName) \(n) \(events) seq \(receipt.sequence) segment \(receipt.segment)\n".utf8))
            n += 1
            if store.maintainEvery > 0, n % store.maintainEvery == 0 {
                let r = try s.runMaintenance()
                if r.didWork {
                    FileHandle.standardOutput.write(
                        Data("maintained indexed \(r.indexesWritten) compacted \(r.compacted) deleted \(r.deleted)\n".utf8))
                }
            }
        }
        s.close()
    }
}

/// Measures in-process append throughput.
struct Bench: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Measure in-process append throughput.")

    @Option(help: "Data directory; each durability mode writes to DIR/<mode> (default: a fresh temporary one, removed afterwards).")
    var dataDir: String?

    @Option(help: "Total records to append (events plus adjacency entries).")
    var records: Int = 1_000_000

    @Option(help: "Records per batch.")
    var batchRecords: Int = 1000

    @Option(help: "Concurrent appending threads.")
    var threads: Int = 1

    @Option(help: "Durability modes to measure, comma-separated.")
    var durability: String = "always,batch,none"

    @Flag(help: "Do not run index writing and compaction in the background while appending.")
    var noMaintenance = false

    func validate() throws {
        guard threads >= 1 else { throw ValidationError("--threads must be at least 1") }
        guard batchRecords >= 4, records >= batchRecords * threads else {
            throw ValidationError("--batch-records must be at least 4 and --records at least --batch-records x --threads")
        }
    }

    func run() throws {
        let eventsPerBatch = max(1, batchRecords / 4)
        for modeName in durability.split(separator: ",") {
            guard let mode = Durability(rawValue: String(modeName)) else { throw ValidationError("unknown durability \(modeName)") }
            // A directory of this run's own per mode: a --data-dir given is never emptied, only added to.
            let dir = (dataDir ?? NSTemporaryDirectory() + "store-bench-\(getpid())") + "/\(modeName)"
            if dataDir == nil { try? FileManager.default.removeItem(atPath: dir) }
            var options = StoreOptions(durability: mode)
            options.backgroundMaintenance = !noMaintenance
            options.onNotice = { if $0.hasPrefix("maintenance") { FileHandle.standardError.write(Data(($0 + "\n").utf8)) } }
            let store = try EventStore.open(at: dir, options: options)
            let batchesTotal = records / (eventsPerBatch * 4)
            // Pre-build batches so the measurement covers encoding, writing, indexing and syncing only.
            let prebuilt = (0..<batchesTotal).map { SyntheticEvents.batch(run: "bench", batch: $0, events: eventsPerBatch) }
            let recordBytes = prebuilt[0].reduce(0) { acc, r in
                switch r {
                case .concept(let c): return acc + 32 + c.id.utf8.count + c.payload.count + c.entities.reduce(0) { $0 + 2 + $1.utf8.count }
                case .adjacency: return acc + 32
                }
            }
            let perThread = batchesTotal / threads
            let start = DispatchTime.now().uptimeNanoseconds
            DispatchQueue.concurrentPerform(iterations: threads) { t in
                for k in 0..<perThread {
                    let n = t * perThread + k
                    _ = try! store.append(prebuilt[n])
                }
            }
            let seconds = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
            let events = perThread * threads * eventsPerBatch
            let recs = events * 4
            let stats = store.stats
            store.close()
            print(String(format: "durability=%@ threads=%d batch=%d records (%d events, ~%d bytes/record): %.0f events/s, %.0f records/s, %.1f MB/s, %.2fs, %d segments",
                         String(modeName), threads, eventsPerBatch * 4, eventsPerBatch, recordBytes / (eventsPerBatch * 4),
                         Double(events) / seconds, Double(recs) / seconds, Double(stats.dataBytes) / seconds / 1e6, seconds, stats.segments))
        }
        if dataDir == nil { try? FileManager.default.removeItem(atPath: NSTemporaryDirectory() + "store-bench-\(getpid())") }
    }
}

/// Opens a store in a fresh process and reports how long that took and what it cost in resident memory, as
/// one JSON line: the benchmark's open-time and memory rows come from here, away from the memory of whatever
/// built the store.
struct OpenStats: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "open-stats", abstract: "Time opening a store read-only and report resident memory after open (JSON).")

    @Option(help: "Data directory.")
    var dataDir: String

    @Flag(help: "Also run one entity timeline and one type count after opening, and report memory again.")
    var query = false

    func run() throws {
        let before = Self.status()
        let t0 = DispatchTime.now().uptimeNanoseconds
        let store = try EventStore.open(at: dataDir, options: StoreOptions(readOnly: true))
        let seconds = Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9
        let after = Self.status()
        var out: [String: Any] = [
            "open_seconds": seconds, "events": store.stats.events, "segments": store.stats.segments,
            "rss_before_mib": before["VmRSS"] ?? 0, "rss_after_mib": after["VmRSS"] ?? 0,
            "rss_anon_mib": after["RssAnon"] ?? 0, "rss_file_mib": after["RssFile"] ?? 0,
            "recovery": store.recovery.summary,
        ]
        if query {
            _ = store.timeline(entity: "node-7", limit: 50)
            _ = store.count(type: 12, in: Int64.min..<Int64.max)
            out["rss_after_queries_mib"] = Self.status()["VmRSS"] ?? 0
        }
        store.close()
        let data = try JSONSerialization.data(withJSONObject: out, options: [.sortedKeys])
        print(String(decoding: data, as: UTF8.self))
    }

    /// Fields of /proc/self/status in MiB.
    static func status() -> [String: Double] {
        guard let text = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8) else { return [:] }
        var out: [String: Double] = [:]
        for line in text.split(separator: "\n") {
            let parts = line.split(whereSeparator: { $0 == ":" || $0 == " " || $0 == "\t" })
            if parts.count >= 3, parts[2] == "kB", let kb = Double(parts[1]) { out[String(parts[0])] = kb / 1024 }
        }
        return out
    }
}
