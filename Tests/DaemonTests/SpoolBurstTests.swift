import EventStore
import Foundation
import GridEvents
import Testing

/// The spool absorbs bursts, and spools left by dead processes are adopted and replayed once.
@Suite("Spool bursts and orphaned spools", .serialized, .timeLimit(.minutes(5)))
struct SpoolBurstTests {
    func tag(_ s: [String: Any]) -> String {
        (s["producer"] as? String)?.split(separator: "-").last.map(String.init) ?? "?"
    }

    @Test func aBurstFarBeyondTheQueueIsAbsorbedByTheSpool() throws {
        let dir = TempDir("burst")
        let daemon = DaemonProcess(dataDir: dir.file("data"), socket: dir.file("s.sock"))
        try daemon.start()
        // 60,000 events as fast as the loop goes, into a queue of 2,000: the spool (default 256 MiB) takes the rest.
        let r = try Child("emit-load", [
            "--storage", daemon.socket, "--count", "60000", "--producer", "burst", "--spool-dir", dir.file("spool"),
            "--queue-capacity", "2000", "--flush-timeout", "120",
        ]).wait(timeout: 200)
        #expect(r.status == 0, "\(r.stderr.suffix(1000))")
        let s = summary(r.stdout)
        #expect(s["dropped"] as? Int == 0, "\(r.stdout)")
        #expect(s["acked"] as? Int == 60000, "\(r.stdout)")
        #expect((s["spooled"] as? Int ?? 0) > 0, "the burst went through the spool")
        #expect(daemon.stop() == 0)
        try withStore(daemon.dataDir) { store in #expect(countEvents(store, producerTag: tag(s)) == 60000) }
    }

    @Test func orphanedSpoolsOfDeadProcessesAreAdoptedOnce() throws {
        let dir = TempDir("orphans")
        let spool = dir.file("spool")
        let daemon = DaemonProcess(dataDir: dir.file("data"), socket: dir.file("s.sock"))
        // A holds orph.spool (the daemon is away, it waits to flush).
        let holder = try Child("emit-load", [
            "--storage", daemon.socket, "--count", "50", "--producer", "orph", "--spool-dir", spool, "--ids", dir.file("ids-a"),
            "--flush-timeout", "120",
        ])
        let deadline = Date().addingTimeInterval(20)
        while Date() < deadline, ((try? FileManager.default.attributesOfItem(atPath: dir.file("spool/orph.spool"))[.size] as? Int) ?? 0) < 1000 {
            usleep(20_000)
        }
        // Two more processes of the same name spool under orph-<pid>.spool and die.
        var orphanIds: [String] = []
        for i in 0..<2 {
            let r = try Child("emit-load", [
                "--storage", daemon.socket, "--count", "2000", "--producer", "orph", "--spool-dir", spool, "--seed", "\(i + 3)",
                "--ids", dir.file("ids-b\(i)"), "--die-after-spooling",
            ]).wait()
            #expect(r.status == SIGKILL, "\(r.stderr)")
            orphanIds += readIds(dir.file("ids-b\(i)"))
        }
        kill(holder.process.processIdentifier, SIGKILL)
        _ = holder.wait()
        let holderIds = readIds(dir.file("ids-a"))
        #expect(holderIds.count == 50)
        #expect(orphanIds.count == 4000)
        let files = try FileManager.default.contentsOfDirectory(atPath: spool).filter { $0.hasSuffix(".spool") }
        #expect(files.count == 3, "\(files)")
        // Two new processes of that name race to adopt them.
        try daemon.start()
        let adopters = try (0..<2).map { i in
            try Child("emit-load", [
                "--storage", daemon.socket, "--count", "0", "--producer", "orph", "--spool-dir", spool, "--flush-timeout", "60",
            ])
        }
        var replayed = 0
        for a in adopters {
            let r = a.wait()
            #expect(r.status == 0, "\(r.stderr.suffix(1000))")
            replayed += summary(r.stdout)["replayed"] as? Int ?? 0
        }
        #expect(replayed == 4050, "each spooled event is replayed by exactly one process")
        #expect(daemon.stop() == 0)
        let left = try FileManager.default.contentsOfDirectory(atPath: spool).filter { $0.hasPrefix("orph-") && $0.hasSuffix(".spool") }
        #expect(left.isEmpty, "orphans (or an adopter's own empty spool) were left behind: \(left)")
        try withStore(daemon.dataDir) { store in
            #expect(store.stats.events == 4050)
            #expect((holderIds + orphanIds).allSatisfy { store.contains(id: $0) })
            // In order per producer.
            var last: [String: UInt64] = [:]
            var outOfOrder = 0
            store.forEachEvent { e in
                let parts = e.id.split(separator: "-")
                if let seq = UInt64(parts.last ?? "") {
                    let t = String(parts[parts.count - 2])
                    if let prev = last[t], seq <= prev { outOfOrder += 1 }
                    last[t] = seq
                }
                return true
            }
            #expect(outOfOrder == 0)
        }
    }
}

/// grid-chaos says "skipped" for a scenario it could not run, and does not count it as a pass.
@Suite("grid-chaos reports skips", .serialized, .timeLimit(.minutes(2)))
struct ChaosSkipTests {
    @Test(.enabled(if: getuid() == 0 && FileManager.default.isExecutableFile(atPath: "/usr/bin/setpriv")))
    func aScenarioThatCannotRunIsSkippedNotPassed() throws {
        let dir = TempDir("chaosskip", mode: 0o777)
        // As nobody, mounting the tmpfs fails, so disk-full cannot run.
        let nobody = ["/usr/bin/setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]
        let r = try Child("grid-chaos", ["--scenario", "disk-full", "--work", dir.file("work"), "--json", dir.file("out.json")],
                          prefix: nobody).wait(timeout: 60)
        #expect(r.stdout.contains("== disk-full: skipped"), "\(r.stdout)")
        let total = r.stdout.split(separator: "\n").first { $0.hasPrefix("total") }.map(String.init) ?? ""
        #expect(!total.contains("pass"), "the total counts a skipped scenario as passed: \(total)")
        #expect(r.stdout.contains("0 passed, 0 failed, 1 skipped"), "\(r.stdout)")
        let json = (try? JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: dir.file("out.json"))))) as? [String: Any]
        #expect(json?["passed"] as? Bool == false)
        #expect(json?["skipped"] as? Int == 1)
        #expect(r.status == 0, "nothing failed")
    }
}
