import EventRecords
import EventStore
import Foundation
import GridEvents

/// What every scenario gets: where the binaries are, a fresh work directory, the campaign's knobs.
struct ChaosContext {
    var bin: String
    var work: String
    var rounds: Int
    var soakSeconds: Double
    var rate: Int
    var emitters: Int
    var seed: UInt64

    /// A fresh directory for one scenario.
    func directory(_ name: String) throws -> String {
        let path = work + "/" + name
        try? FileManager.default.removeItem(atPath: path)
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }
}

/// One scenario's outcome: the counters of the summary table and, when it failed, why.
struct ScenarioResult {
    var name: String
    var skipped: String?
    var rounds = 0
    var acked = 0
    var lost = 0
    var duplicated = 0
    var orderViolations = 0
    var corruptReads = 0
    var maxDaemonRSS = 0
    var maxQueued = 0
    var seconds = 0.0
    var notes: [String] = []
    var failures: [String] = []

    init(name: String) { self.name = name }

    /// Ran, and every check held. A skipped scenario has not passed.
    var passed: Bool { failures.isEmpty && skipped == nil }
    var failed: Bool { !failures.isEmpty }
    /// "pass", "FAIL" or "skipped".
    var verdict: String { failed ? "FAIL" : (skipped != nil ? "skipped" : "pass") }

    mutating func check(_ condition: Bool, _ message: @autoclosure () -> String) {
        if !condition { failures.append(message()) }
    }

    mutating func add(_ v: StoreCheck) {
        lost += v.lost
        duplicated += v.duplicated
        orderViolations += v.orderViolations
        corruptReads += v.corruptReads
    }

    var json: [String: Any] {
        var o: [String: Any] = [
            "scenario": name, "result": verdict, "rounds": rounds,
            "acked": acked, "lost": lost, "duplicated": duplicated, "order_violations": orderViolations,
            "corrupt_reads": corruptReads, "max_daemon_rss_bytes": maxDaemonRSS, "max_emitter_queue": maxQueued,
            "seconds": seconds, "notes": notes, "failures": failures,
        ]
        if let skipped { o["skipped"] = skipped }
        return o
    }
}

/// A fault scenario. To add one (crash during compaction or retention, damaged index files or manifest):
/// write a type with a `name` and `run`, usually built from `Cluster` (daemon + producers), the fault, then
/// `Cluster.finishAndVerify`; and list it in `Campaign.scenarios`.
protocol Scenario: Sendable {
    var name: String { get }
    func run(_ ctx: ChaosContext) throws -> ScenarioResult
}

enum Campaign {
    /// Every scenario, in the order `all` runs them.
    static let scenarios: [any Scenario] = [
        CrashLoop(),
        // 64 KiB segments seal several times a second at these rates, so the daemon compacts (LZ4 HC, the slow
        // level) or expires segments almost all the time and the kills land inside those passes.
        CrashLoop(name: "crash-compaction", daemonArguments: ["--segment-size", "65536", "--compression", "high"]),
        CrashLoop(
            name: "crash-retention", daemonArguments: ["--segment-size", "65536", "--max-bytes", "700KB"], allowExpiry: true),
        DiskFull(),
        FsyncFailure(),
        Corruption(),
        Hostile(),
        Replication(),
        Soak(),
    ]

    static func select(_ names: [String]) throws -> [any Scenario] {
        if names.contains("all") { return scenarios }
        return try names.map { name in
            if let s = scenarios.first(where: { $0.name == name }) { return s }
            throw ChaosError("unknown scenario \(name); known: \(scenarios.map(\.name).joined(separator: ", "))")
        }
    }

    static func summary(_ results: [ScenarioResult], maxRSS: Int) -> String {
        func mib(_ b: Int) -> String { b == 0 ? "-" : String(format: "%.0f MiB", Double(b) / 1048576) }
        var lines: [String] = []
        let header = ["scenario", "result", "rounds", "acked", "lost", "dup", "order", "corrupt", "max RSS", "max queue", "seconds"]
        var rows: [[String]] = [header]
        for r in results {
            rows.append([
                r.name, r.verdict, "\(r.rounds)", "\(r.acked)", "\(r.lost)",
                "\(r.duplicated)", "\(r.orderViolations)", "\(r.corruptReads)", mib(r.maxDaemonRSS), "\(r.maxQueued)",
                String(format: "%.1f", r.seconds),
            ])
        }
        let total = results.reduce(into: ScenarioResult(name: "total")) { t, r in
            t.rounds += r.rounds; t.acked += r.acked; t.lost += r.lost; t.duplicated += r.duplicated
            t.orderViolations += r.orderViolations; t.corruptReads += r.corruptReads; t.seconds += r.seconds
            t.maxQueued = max(t.maxQueued, r.maxQueued)
        }
        rows.append([
            "total", Campaign.verdict(results), "\(total.rounds)", "\(total.acked)", "\(total.lost)",
            "\(total.duplicated)", "\(total.orderViolations)", "\(total.corruptReads)", mib(maxRSS), "\(total.maxQueued)",
            String(format: "%.1f", total.seconds),
        ])
        let widths = header.indices.map { i in rows.map { $0[i].count }.max()! }
        for (n, row) in rows.enumerated() {
            lines.append(row.enumerated().map { i, c in i == 0 ? c.padding(toLength: widths[i], withPad: " ", startingAt: 0) : String(repeating: " ", count: widths[i] - c.count) + c }.joined(separator: "  "))
            if n == 0 || n == rows.count - 2 { lines.append(String(repeating: "-", count: widths.reduce(0, +) + 2 * (widths.count - 1))) }
        }
        for r in results {
            for note in r.notes { lines.append("  \(r.name): \(note)") }
            if let s = r.skipped { lines.append("  \(r.name): skipped: \(s)") }
            for f in r.failures { lines.append("  \(r.name): FAILED: \(f)") }
        }
        lines.append(Campaign.counts(results))
        return lines.joined(separator: "\n")
    }

    /// The campaign's verdict: FAIL when a scenario failed, "incomplete" when one was skipped (a skip is not a
    /// pass), else pass.
    static func verdict(_ results: [ScenarioResult]) -> String {
        if results.contains(where: \.failed) { return "FAIL" }
        return results.contains { $0.skipped != nil } ? "incomplete" : "pass"
    }

    /// "N passed, N failed, N skipped".
    static func counts(_ results: [ScenarioResult]) -> String {
        let skipped = results.filter { $0.skipped != nil }.count
        let failed = results.filter(\.failed).count
        return "\(results.count - skipped - failed) passed, \(failed) failed, \(skipped) skipped"
    }
}

/// What a producer reported at the end.
struct ProducerReport {
    var tag: String
    var emitted: Int
    var acked: Int
    var dropped: Int
    var complete: Bool

    init(_ status: [String: Any]) {
        tag = status["tag"] as? String ?? "?"
        emitted = status["emitted"] as? Int ?? 0
        acked = status["acked"] as? Int ?? 0
        dropped = status["dropped"] as? Int ?? 0
        complete = status["complete"] as? Bool ?? false
    }
}

/// The checks on a stopped store: every acknowledged event served exactly once, per-producer order, every
/// served event decodes, and what recovery found.
struct StoreCheck {
    var served = 0
    var lost = 0
    var duplicated = 0
    var orderViolations = 0
    var corruptReads = 0
    /// Damage recovery reported (skipped regions and unreadable segments), with locations.
    var damage: [String] = []
    /// Acknowledged events missing from the start of a producer's sequence, allowed when retention ran.
    var expired = 0
    /// Events retention says it deleted (from the manifest).
    var expiredByRetention = 0
    var tornTails = 0
    var resendsIgnored = 0
    var firstProblems: [String] = []
    /// Sequences served per producer tag.
    var sequences: [String: Int] = [:]

    /// Opens `dataDir` read-only and checks it against what the producers say they had acknowledged:
    /// sequences 1...acked of each producer must be served exactly once, in increasing order (the store keeps a
    /// producer's events in the order it sent them).
    /// With `allowExpiry`, acknowledged events missing from the start of a producer's sequence count as expired by
    /// retention (it deletes whole segments, oldest first), not lost; any other gap is lost.
    static func verify(_ dataDir: String, producers: [ProducerReport], allowExpiry: Bool = false) throws -> StoreCheck {
        var check = StoreCheck()
        let store = try EventStore.open(at: dataDir, options: StoreOptions(readOnly: true))
        defer { store.close() }
        check.damage = store.recovery.skipped.map(\.description) + store.recovery.unreadableSegments.map(\.description)
        check.tornTails = store.recovery.truncated.count
        check.resendsIgnored = store.recovery.duplicates
        var seen: [String: [Bool]] = [:]
        var last: [String: UInt64] = [:]
        for p in producers { seen[p.tag] = [Bool](repeating: false, count: p.emitted + 1) }
        store.forEachEvent { e in
            check.served += 1
            if (try? GridEvent(stored: e)) == nil {
                check.corruptReads += 1
                if check.firstProblems.count < 5 { check.firstProblems.append("event \(e.id) does not decode") }
            }
            let parts = e.id.split(separator: "-")
            guard parts.count >= 4, let seq = UInt64(parts[parts.count - 1]) else { return true }
            let tag = String(parts[parts.count - 2])
            check.sequences[tag, default: 0] += 1
            guard var flags = seen[tag] else { return true }
            if Int(seq) < flags.count {
                if flags[Int(seq)] {
                    check.duplicated += 1
                    if check.firstProblems.count < 5 { check.firstProblems.append("\(e.id) served twice") }
                }
                flags[Int(seq)] = true
                seen[tag] = flags
            }
            if let prev = last[tag], seq <= prev {
                check.orderViolations += 1
                if check.firstProblems.count < 5 { check.firstProblems.append("\(e.id) stored after sequence \(prev)") }
            }
            last[tag] = max(last[tag] ?? 0, seq)
            return true
        }
        for p in producers {
            let flags = seen[p.tag] ?? []
            let missing = (1..<max(1, min(p.acked, p.emitted) + 1)).filter { $0 >= flags.count || !flags[$0] }
            var expiredPrefix = 0
            if allowExpiry { while expiredPrefix < missing.count, missing[expiredPrefix] == expiredPrefix + 1 { expiredPrefix += 1 } }
            check.expired += expiredPrefix
            let lostHere = Array(missing.dropFirst(expiredPrefix))
            check.lost += lostHere.count
            if let first = lostHere.first, check.firstProblems.count < 5 {
                check.firstProblems.append("producer \(p.tag): \(lostHere.count) acknowledged event(s) missing, first sequence \(first)")
            }
        }
        // Damage found by the reads above (frames or compressed blocks failing their checksums).
        check.damage += store.stats.readDamage.map(\.description)
        check.expiredByRetention = store.stats.retention.events
        return check
    }

    /// Runs `segdump DIR --verify`; nil when clean, else its whole output (problems are printed as each file is
    /// checked, not only at the end).
    static func segdumpVerify(bin: String, _ dataDir: String) -> String? {
        let r = runCommand(bin + "/segdump", [dataDir, "--verify"])
        return r.status == 0 ? nil : r.output
    }
}

/// A daemon and its producers, for scenarios that stream events while something goes wrong.
final class Cluster {
    let ctx: ChaosContext
    let dir: String
    let daemon: DaemonProcess
    var emitters: [EmitterProcess] = []
    let spoolDir: String

    init(_ ctx: ChaosContext, dir: String, dataDir: String? = nil, daemonArguments: [String] = []) {
        self.ctx = ctx
        self.dir = dir
        spoolDir = dir + "/spool"
        daemon = DaemonProcess(bin: ctx.bin, dataDir: dataDir ?? dir + "/data", socket: dir + "/eventd.sock", extra: daemonArguments)
    }

    func startEmitters(_ n: Int, rate: Int, prefix: String = "p") throws {
        for i in 0..<n {
            emitters.append(try EmitterProcess(
                bin: ctx.bin, work: dir, storage: daemon.socket, name: "\(prefix)\(i)", rate: rate, spoolDir: spoolDir,
                seed: ctx.seed &+ UInt64(i)))
        }
    }

    /// Sleeps `seconds`, sampling the daemon's memory and the producers' queues every 100 ms.
    func watch(_ seconds: Double) {
        let deadline = Date().addingTimeInterval(seconds)
        repeat {
            daemon.sample()
            usleep(UInt32(min(100_000, max(0, deadline.timeIntervalSinceNow) * 1e6)))
        } while Date() < deadline
        for e in emitters { _ = e.status() }
    }

    /// Waits until `condition` holds (sampling), up to `timeout`; returns whether it did.
    func wait(_ timeout: Double, until condition: () -> Bool) -> Bool {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if condition() { return true }
            watch(0.1)
        }
        return condition()
    }

    var acked: Int { emitters.reduce(0) { $0 + $1.int("acked") } }

    /// Stops the producers (they flush), stops the daemon with SIGTERM, verifies the store and segdump, and
    /// folds everything into `result`.
    func finishAndVerify(_ result: inout ScenarioResult, expectCleanSegments: Bool = true, allowExpiry: Bool = false) throws {
        for e in emitters { e.requestStop() }
        var reports: [ProducerReport] = []
        for e in emitters {
            let (exit, status) = e.finish()
            let r = ProducerReport(status)
            reports.append(r)
            result.check(exit == 0 && r.complete, "producer \(e.name) did not finish cleanly (exit \(exit), acked \(r.acked) of \(r.emitted)): \(String(e.log().suffix(600)))")
            result.check(r.dropped == 0, "producer \(e.name) dropped \(r.dropped) event(s)")
            result.acked += r.acked
            result.maxQueued = max(result.maxQueued, e.maxQueued)
        }
        daemon.sample()
        result.maxDaemonRSS = max(result.maxDaemonRSS, daemon.maxRSS)
        let status = daemon.stop()
        result.check(status == 0, "grid-eventd exited with \(status) on SIGTERM: \(daemon.logTail())")
        let check = try StoreCheck.verify(daemon.dataDir, producers: reports, allowExpiry: allowExpiry)
        result.add(check)
        if allowExpiry {
            result.check(check.expired <= check.expiredByRetention,
                         "\(check.expired) acknowledged event(s) missing at the start, retention deleted only \(check.expiredByRetention)")
            result.notes.append("retention deleted \(check.expiredByRetention) event(s); \(check.expired) acknowledged ones among them, each a prefix of its producer's sequence")
        }
        result.check(check.lost == 0 && check.duplicated == 0 && check.orderViolations == 0 && check.corruptReads == 0,
                     "store check: \(check.firstProblems.joined(separator: "; "))")
        if expectCleanSegments {
            result.check(check.damage.isEmpty, "recovery reported damage: \(check.damage.joined(separator: "; "))")
            if let bad = StoreCheck.segdumpVerify(bin: ctx.bin, daemon.dataDir) { result.failures.append("segdump --verify: \(bad.suffix(2000))") }
        }
        if check.tornTails > 0 { result.notes.append("\(check.tornTails) torn tail(s) of unacknowledged writes truncated on restart") }
        if check.resendsIgnored > 0 { result.notes.append("\(check.resendsIgnored) resent event(s) stored twice on disk, served once") }
    }
}
