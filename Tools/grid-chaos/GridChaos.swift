import ArgumentParser
import Foundation
import GridVersion

/// grid-chaos: the fault campaign. Drives real grid-eventd and producer processes through crashes, a full disk,
/// a failing fdatasync, damaged files, hostile clients and a soak, checks that nothing acknowledged is lost or
/// duplicated, and prints one summary table (and JSON).
@main
struct GridChaos: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "grid-chaos",
        abstract: "Run the fault campaign against grid-eventd and print a summary.",
        version: GridVersion.current,
        subcommands: [Run.self, Emit.self],
        defaultSubcommand: Run.self)
}

struct Run: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run scenarios (default: all) and print the summary.",
        discussion: """
            Scenarios: crash-loop, crash-compaction, crash-retention, disk-full, fsync, bitflip, hostile, replication, \
            soak, all. Exit status 1 when any check fails. A scenario that cannot run here (disk-full without root) is \
            reported as skipped, and the total then says incomplete, not pass.
            """)

    @Option(help: "Comma-separated scenarios, or all.") var scenario = "all"
    @Option(help: "Daemon kills in the crash loop.") var rounds = 100
    @Option(name: .customLong("soak-seconds"), help: "Length of the soak.") var soakSeconds = 180.0
    @Option(help: "Events per second of each producer.") var rate = 4000
    @Option(help: "Producer processes in the crash loop and the soak.") var emitters = 3
    @Option(help: "Directory with grid-eventd, segdump and grid-chaos (default: this executable's).") var bin: String?
    @Option(help: "Work directory (default: a new one under /tmp, removed after a passing run).") var work: String?
    @Option(help: "Write the summary as JSON here.") var json: String?
    @Flag(help: "Keep the work directory even when everything passes.") var keep = false

    func run() throws {
        let binDir = bin ?? URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath().deletingLastPathComponent().path
        var workDir = work ?? ""
        if workDir.isEmpty {
            var template = Array("/tmp/grid-chaos-XXXXXX".utf8CString)
            workDir = template.withUnsafeMutableBufferPointer { String(cString: mkdtemp($0.baseAddress!)) }
        }
        try FileManager.default.createDirectory(atPath: workDir, withIntermediateDirectories: true)
        let ctx = ChaosContext(bin: binDir, work: workDir, rounds: rounds, soakSeconds: soakSeconds, rate: rate,
                               emitters: emitters, seed: UInt64.random(in: 1...1_000_000))
        let selected = try Campaign.select(scenario.split(separator: ",").map { String($0).trimmingCharacters(in: .whitespaces) })
        signal(SIGPIPE, SIG_IGN)
        print("grid-chaos: \(selected.map(\.name).joined(separator: ", ")) in \(workDir)")
        var results: [ScenarioResult] = []
        for s in selected {
            let t0 = Date()
            print("== \(s.name) ...")
            fflush(nil)
            var r: ScenarioResult
            do {
                r = try s.run(ctx)
            } catch {
                r = ScenarioResult(name: s.name)
                r.failures.append("aborted: \(error)")
            }
            r.seconds = Date().timeIntervalSince(t0)
            print("== \(s.name): \(r.verdict) in \(String(format: "%.1f", r.seconds)) s")
            fflush(nil)
            results.append(r)
        }
        let maxRSS = results.map(\.maxDaemonRSS).max() ?? 0
        print("")
        print(Campaign.summary(results, maxRSS: maxRSS))
        // A skipped scenario is not a pass ("passed" is false, the total says incomplete), but not a failure
        // either: the exit status is 1 only when a check failed.
        let passed = results.allSatisfy(\.passed)
        let failed = results.contains(where: \.failed)
        if let json {
            let object: [String: Any] = [
                "passed": passed, "failed": results.filter(\.failed).count,
                "skipped": results.filter { $0.skipped != nil }.count, "result": Campaign.verdict(results), "rounds": results.reduce(0) { $0 + $1.rounds }, "acked": results.reduce(0) { $0 + $1.acked },
                "lost": results.reduce(0) { $0 + $1.lost }, "duplicated": results.reduce(0) { $0 + $1.duplicated },
                "corrupt_reads": results.reduce(0) { $0 + $1.corruptReads }, "max_daemon_rss_bytes": maxRSS,
                "scenarios": results.map(\.json),
            ]
            let data = try JSONSerialization.data(withJSONObject: object, options: [.prettyPrinted, .sortedKeys])
            _ = FileManager.default.createFile(atPath: json, contents: data)
        }
        if !failed && !keep && work == nil { try? FileManager.default.removeItem(atPath: workDir) }
        if failed {
            print("work directory kept: \(workDir)")
            throw ExitCode(1)
        }
    }
}
