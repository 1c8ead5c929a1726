import EventStore
import EventWire
import Foundation
import GridEvents
import Testing

/// Multi-process tests: a real grid-eventd and real emitter processes on temporary paths.
@Suite("grid-eventd with emitter processes", .serialized, .timeLimit(.minutes(5)))
struct DaemonTests {
    func tag(_ s: [String: Any]) -> String {
        (s["producer"] as? String)?.split(separator: "-").last.map(String.init) ?? "?"
    }

    @Test func fourEmittersFiftyThousandEachStoredExactlyOnce() throws {
        let dir = TempDir("d4x50")
        let daemon = DaemonProcess(dataDir: dir.file("data"), socket: dir.file("s.sock"))
        try daemon.start()
        var children: [(Child, String)] = []
        for i in 0..<4 {
            let ids = dir.file("ids-\(i)")
            children.append((try Child("emit-load", [
                "--storage", daemon.socket, "--count", "50000", "--producer", "p\(i)", "--spool-dir", dir.file("spool"),
                "--ids", ids, "--seed", "\(i + 1)",
            ]), ids))
        }
        var tags: [String] = []
        var allIds: [String] = []
        for (child, idsPath) in children {
            let r = child.wait()
            #expect(r.status == 0, "\(r.stderr)")
            let s = summary(r.stdout)
            #expect(s["acked"] as? Int == 50000, "\(r.stdout)")
            #expect(s["dropped"] as? Int == 0)
            tags.append(tag(s))
            allIds += readIds(idsPath)
        }
        #expect(daemon.stop() == 0)
        #expect(allIds.count == 200_000)
        #expect(Set(allIds).count == 200_000)
        try withStore(daemon.dataDir) { store in
            for id in allIds { if !store.contains(id: id) { Issue.record("missing \(id)"); break } }
            for t in tags { #expect(countEvents(store, producerTag: t) == 50000) }
            #expect(store.stats.events == 200_000)
        }
        let verify = try Child("segdump", [daemon.dataDir, "--verify"]).wait()
        #expect(verify.status == 0, "\(verify.stdout)")
    }

    @Test func daemonKilledAndRestartedWhileEmittersRun() throws {
        let dir = TempDir("dkill")
        let daemon = DaemonProcess(dataDir: dir.file("data"), socket: dir.file("s.sock"))
        try daemon.start()
        var children: [(Child, String)] = []
        for i in 0..<2 {
            let ids = dir.file("ids-\(i)")
            children.append((try Child("emit-load", [
                "--storage", daemon.socket, "--count", "40000", "--rate", "20000", "--producer", "k\(i)",
                "--spool-dir", dir.file("spool"), "--ids", ids, "--seed", "\(i + 7)", "--flush-timeout", "90",
            ]), ids))
        }
        usleep(700_000)
        daemon.kill()
        usleep(500_000)
        try daemon.start()
        usleep(600_000)
        daemon.kill()
        try daemon.start()
        var tags: [String] = []
        var allIds: [String] = []
        for (child, idsPath) in children {
            let r = child.wait()
            #expect(r.status == 0, "\(r.stderr.suffix(2000))")
            let s = summary(r.stdout)
            #expect(s["acked"] as? Int == 40000, "\(r.stdout)")
            tags.append(tag(s))
            allIds += readIds(idsPath)
        }
        #expect(daemon.stop() == 0)
        try withStore(daemon.dataDir) { store in
            var missing = 0
            for id in allIds where !store.contains(id: id) { missing += 1 }
            #expect(missing == 0)
            for t in tags { #expect(countEvents(store, producerTag: t) == 40000, "exactly once for \(t)") }
        }
    }

    @Test func daemonAbsentAtStartEventsArriveOnceItStarts() throws {
        let dir = TempDir("dabsent")
        let daemon = DaemonProcess(dataDir: dir.file("data"), socket: dir.file("s.sock"))
        let ids = dir.file("ids")
        let child = try Child("emit-load", [
            "--storage", daemon.socket, "--count", "5000", "--producer", "late", "--spool-dir", dir.file("spool"),
            "--ids", ids, "--flush-timeout", "60",
        ])
        usleep(1_500_000)
        #expect(child.process.isRunning, "the emitter waits for the daemon instead of failing")
        try daemon.start()
        let r = child.wait()
        #expect(r.status == 0, "\(r.stderr)")
        let s = summary(r.stdout)
        #expect(s["acked"] as? Int == 5000)
        #expect((s["spooled"] as? Int ?? 0) > 0, "events were spooled while the daemon was away")
        #expect(r.stderr.contains("spool"), "the emitter said once that it spools")
        daemon.stop()
        try withStore(daemon.dataDir) { store in
            #expect(readIds(ids).allSatisfy { store.contains(id: $0) })
            #expect(countEvents(store, producerTag: tag(s)) == 5000)
        }
    }

    @Test func killedEmittersSpoolIsDeliveredOnItsNextStart() throws {
        let dir = TempDir("dspool")
        let daemon = DaemonProcess(dataDir: dir.file("data"), socket: dir.file("s.sock"))
        let ids = dir.file("ids")
        // No daemon: the emitter spools everything, then dies by SIGKILL.
        let first = try Child("emit-load", [
            "--storage", daemon.socket, "--count", "3000", "--producer", "phoenix", "--spool-dir", dir.file("spool"),
            "--ids", ids, "--die-after-spooling",
        ]).wait()
        #expect(first.status == SIGKILL, "\(first.stderr)")
        #expect(first.stdout.contains("spooled 3000"))
        let spoolSize = (try FileManager.default.attributesOfItem(atPath: dir.file("spool/phoenix.spool"))[.size] as? Int) ?? 0
        #expect(spoolSize > 3000 * 20)
        try daemon.start()
        // The next process with the same producer name replays the spool.
        let second = try Child("emit-load", [
            "--storage", daemon.socket, "--count", "0", "--producer", "phoenix", "--spool-dir", dir.file("spool"),
        ]).wait()
        #expect(second.status == 0, "\(second.stderr)")
        #expect(summary(second.stdout)["replayed"] as? Int == 3000, "the earlier process's events count as replayed, not as its own")
        daemon.stop()
        try withStore(daemon.dataDir) { store in
            let expected = readIds(ids)
            #expect(expected.count == 3000)
            #expect(expected.allSatisfy { store.contains(id: $0) })
            #expect(store.stats.events == 3000)
        }
    }
}
