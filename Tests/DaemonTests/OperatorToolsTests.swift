import EventStore
import Foundation
import GridEvents
import GridFixtures
import GridVersion
import NATSTestSupport
import Testing

/// The operator tools end to end against real processes: `grid-cli follow` across a daemon killed and restarted
/// while events flow, export/import round trips, `--version` in every executable, sd_notify readiness.
@Suite("operator tools", .serialized, .timeLimit(.minutes(10)))
struct OperatorToolsTests {
    /// A process whose standard output and error go to files (read while it runs).
    final class Logged {
        let process = Process()
        let outPath: String
        let errPath: String

        init(_ product: String, _ arguments: [String], out: String, environment: [String: String]? = nil) throws {
            outPath = out
            errPath = out + ".err"
            FileManager.default.createFile(atPath: outPath, contents: nil)
            FileManager.default.createFile(atPath: errPath, contents: nil)
            process.executableURL = URL(fileURLWithPath: productPath(product))
            process.arguments = arguments
            if let environment { process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 } }
            process.standardOutput = FileHandle(forWritingAtPath: outPath)!
            process.standardError = FileHandle(forWritingAtPath: errPath)!
            try process.run()
        }

        var stdout: String { (try? String(contentsOfFile: outPath, encoding: .utf8)) ?? "" }
        var stderr: String { (try? String(contentsOfFile: errPath, encoding: .utf8)) ?? "" }

        /// Sends `signal` and waits (SIGKILL after 10 s); returns the exit status.
        func stop(_ signal: Int32 = SIGINT) -> Int32 {
            if process.isRunning { kill(process.processIdentifier, signal) }
            let deadline = Date().addingTimeInterval(10)
            while process.isRunning, Date() < deadline { usleep(10_000) }
            if process.isRunning { kill(process.processIdentifier, SIGKILL) }
            process.waitUntilExit()
            return process.terminationStatus
        }

        deinit {
            if process.isRunning {
                kill(process.processIdentifier, SIGKILL)
                process.waitUntilExit()
            }
        }
    }

    static func ids(ofLines text: String) -> [String] {
        text.split(separator: "\n").compactMap { line in
            (try? JSONValue.parse(Array(line.utf8)))?["id"]?.stringValue
        }
    }

    /// Every event of the store, as `grid-cli export` writes them.
    static func export(_ url: String, to path: String) throws -> [String] {
        let r = try Child("grid-cli", ["export", "--url", url], prefix: ["/bin/sh", "-c", "exec \"$0\" \"$@\" > '\(path)'"]).wait(timeout: 300)
        #expect(r.status == 0, "export: \(r.stderr)")
        return ((try? String(contentsOfFile: path, encoding: .utf8)) ?? "").split(separator: "\n").map(String.init)
    }

    @Test("follow prints every event once while grid-eventd is SIGKILLed and restarted under load; Ctrl-C ends it with 0")
    func followAcrossRestart() throws {
        let dir = TempDir("follow")
        let port = freeLoopbackPort()
        let url = "http://127.0.0.1:\(port)"
        let daemon = DaemonProcess(dataDir: dir.file("data"), socket: dir.file("d.sock"))
        daemon.extraHTTP = "127.0.0.1:\(port)"
        try daemon.start()
        let follow = try Logged("grid-cli", ["follow", "--url", url, "-o", "jsonl"], out: dir.file("follow.out"))
        usleep(500_000)
        // 2,000 events a second for 8 s, through the spool while the daemon is down.
        let load = try Child("emit-load", [
            "--storage", daemon.socket, "--count", "16000", "--rate", "2000", "--producer", "flow",
            "--spool-dir", dir.file("spool"), "--ids", dir.file("ids"), "--flush-timeout", "60",
        ])
        sleep(3)
        daemon.kill()
        usleep(700_000)
        try daemon.start()
        sleep(2)
        daemon.kill()
        try daemon.start()
        let r = load.wait(timeout: 120)
        #expect(r.status == 0, "emit-load: \(r.stderr)")
        #expect(summary(r.stdout)["acked"] as? Int == 16000, "\(r.stdout)")
        let emitted = Set(readIds(dir.file("ids")))
        #expect(emitted.count == 16000)
        // Wait until follow has printed every stored event.
        let stored = Set(try Self.export(url, to: dir.file("export.jsonl")).compactMap { Self.ids(ofLines: $0).first })
        // Generous: on a loaded machine the debug build's follow may lag well behind.
        let deadline = Date().addingTimeInterval(240)
        while Date() < deadline, Set(Self.ids(ofLines: follow.stdout)).count < stored.count { usleep(250_000) }
        usleep(500_000)
        let blocked = (try? String(contentsOfFile: "/proc/\(follow.process.processIdentifier)/status", encoding: .utf8))?
            .split(separator: "\n").first { $0.hasPrefix("SigBlk") } ?? "?"
        let status = follow.stop(SIGINT)
        let printed = Self.ids(ofLines: follow.stdout)
        #expect(status == 0, "follow exits 0 on Ctrl-C (\(blocked))")
        #expect(printed.count == Set(printed).count, "no event printed twice: \(printed.count - Set(printed).count) repeats")
        let missing = stored.subtracting(printed)
        let extra = Set(printed).subtracting(stored)
        #expect(missing.isEmpty && extra.isEmpty,
                "follow printed \(Set(printed).count) distinct events, the store holds \(stored.count): \(missing.count) never printed (\(missing.sorted().prefix(5))), \(extra.count) not stored (\(extra.sorted().prefix(5)))")
        #expect(emitted.isSubset(of: Set(printed)), "\(emitted.subtracting(printed).count) acknowledged events never printed")
        if !missing.isEmpty || status != 0 { print("follow stderr: \(follow.stderr.suffix(2000))") }
        #expect(follow.stderr.contains("reconnecting"), "follow lost its connection at least once: \(follow.stderr)")
    }

    @Test("follow | head -1 ends follow (exit 0 on the closed pipe); --since replays stored events first")
    func followClosedPipe() throws {
        let dir = TempDir("followpipe")
        let port = freeLoopbackPort()
        let daemon = DaemonProcess(dataDir: dir.file("data"), socket: dir.file("d.sock"))
        daemon.extraHTTP = "127.0.0.1:\(port)"
        try daemon.start()
        let load = try Child("emit-load", ["--storage", daemon.socket, "--count", "500", "--producer", "p", "--spool-dir", dir.file("spool")]).wait()
        #expect(load.status == 0)
        let started = Date()
        // sh waits for both ends of the pipeline: it ends only once follow has.
        let r = try Child("grid-cli", ["follow", "--url", "http://127.0.0.1:\(port)", "--since", "2000-01-01T00:00:00Z", "-o", "jsonl"],
                          prefix: ["/bin/sh", "-c", "\"$0\" \"$@\" | head -1"]).wait(timeout: 30)
        #expect(r.status == 0)
        #expect(r.stdout.split(separator: "\n").count == 1, "\(r.stdout) \(r.stderr)")
        #expect(Date().timeIntervalSince(started) < 20, "the pipeline ended (follow noticed its reader went away)")
        // --count: exactly that many, from the stored events.
        let c = try Child("grid-cli", ["follow", "--url", "http://127.0.0.1:\(port)", "--since", "2000-01-01T00:00:00Z", "--count", "120", "-o", "json"]).wait(timeout: 30)
        #expect(c.status == 0)
        #expect(Self.ids(ofLines: c.stdout).count == 120)
        // What would break the request or the client is refused before connecting (exit 64, a usage error).
        for bad in [["--resume-from", "12:0\r\nX-Injected: 1"], ["--resume-from", "12"], ["--resume-from", "a:1"],
                    ["--idle-timeout", "0"], ["--idle-timeout", "-1"], ["--idle-timeout", "86400"], ["--idle-timeout", "nan"]] {
            let v = try Child("grid-cli", ["follow", "--url", "http://127.0.0.1:\(port)"] + bad).wait(timeout: 30)
            #expect(v.status == 64 && v.stderr.contains(bad[0]), "\(bad): \(v.status) \(v.stderr)")
        }
    }

    @Test("export and import round-trip 100,000 events, ids kept; importing twice adds nothing")
    func exportImportRoundTrip() throws {
        let dir = TempDir("roundtrip")
        var grid = SampleGrid(seed: 19)
        let input = grid.events(100_000).map(\.flatJSON)
        try (input.joined(separator: "\n") + "\n").write(toFile: dir.file("input.jsonl"), atomically: false, encoding: .utf8)

        let portA = freeLoopbackPort()
        let a = DaemonProcess(dataDir: dir.file("a"), socket: dir.file("a.sock"))
        a.extraHTTP = "127.0.0.1:\(portA)"
        try a.start()
        var t = Date()
        let i1 = try Child("grid-cli", ["import", "--socket", a.socket, "--spool-dir", dir.file("spool"), dir.file("input.jsonl")]).wait(timeout: 300)
        #expect(i1.status == 0, "\(i1.stderr)")
        #expect(i1.stdout.contains("100000 of 100000 event(s) acknowledged"), "\(i1.stdout)")
        let importSeconds = Date().timeIntervalSince(t)
        t = Date()
        let exportedA = try Self.export("http://127.0.0.1:\(portA)", to: dir.file("a.jsonl"))
        let exportSeconds = Date().timeIntervalSince(t)
        // The daemon's own storage_metrics events are the store's too; the imported ones come back byte for byte.
        let importedBack = exportedA.filter { !$0.hasPrefix("{\"event_type\":\"storage_metrics\"") }
        #expect(importedBack.count == 100_000)
        #expect(importedBack.sorted() == input.sorted(), "export writes the flat form emit read, ids and times kept")

        let portB = freeLoopbackPort()
        let b = DaemonProcess(dataDir: dir.file("b"), socket: dir.file("b.sock"))
        b.extraHTTP = "127.0.0.1:\(portB)"
        try b.start()
        let i2 = try Child("grid-cli", ["import", "--socket", b.socket, "--spool-dir", dir.file("spool"), dir.file("a.jsonl")]).wait(timeout: 300)
        #expect(i2.status == 0, "\(i2.stderr)")
        let exportedB = try Self.export("http://127.0.0.1:\(portB)", to: dir.file("b.jsonl"))
        let ownB = exportedB.filter { $0.hasPrefix("{\"event_type\":\"storage_metrics\"") && !exportedA.contains($0) }
        #expect(exportedB.count - ownB.count == exportedA.count)
        #expect(Set(exportedB).isSuperset(of: Set(exportedA)), "the second store holds every exported event")

        // Again, twice (emit reads standard input the same way): nothing new.
        let i3 = try Child("grid-cli", ["import", "--socket", b.socket, "--spool-dir", dir.file("spool"), dir.file("a.jsonl")]).wait(timeout: 300)
        #expect(i3.status == 0)
        let i4 = try ImportTests.cli(["--socket", b.socket, "--spool-dir", dir.file("spool")], stdin: dir.file("a.jsonl")).wait(timeout: 300)
        #expect(i4.status == 0)
        let again = try Self.export("http://127.0.0.1:\(portB)", to: dir.file("b2.jsonl"))
        let ownB2 = again.filter { $0.hasPrefix("{\"event_type\":\"storage_metrics\"") && !exportedA.contains($0) }
        #expect(again.count - ownB2.count == exportedA.count, "importing the same file again adds nothing")
        print("round trip of 100,000 events (debug build): import \(String(format: "%.1f", importSeconds)) s, export \(String(format: "%.1f", exportSeconds)) s")
    }

    @Test("--version prints the one release number in every executable")
    func versionEverywhere() throws {
        for product in ["grid-eventd", "grid-cli", "grid-master", "grid-agent", "segdump", "emit-load", "grid-chaos", "query-bench", "store-stress"] {
            #expect(FileManager.default.isExecutableFile(atPath: productPath(product)), "\(product) is built")
            let r = try Child(product, ["--version"]).wait(timeout: 30)
            #expect(r.status == 0, "\(product) --version: \(r.stderr)")
            #expect(r.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == GridVersion.current, "\(product): \(r.stdout)")
        }
    }

    /// A datagram socket the test listens on, as systemd's NOTIFY_SOCKET.
    final class NotifySocket {
        let fd: Int32
        let path: String

        init(_ path: String) {
            self.path = path
            fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue), 0)
            var addr = sockaddr_un()
            addr.sun_family = sa_family_t(AF_UNIX)
            withUnsafeMutableBytes(of: &addr.sun_path) { raw in
                for (i, b) in path.utf8.enumerated() { raw[i] = b }
            }
            _ = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) } }
        }

        /// The next datagram, waiting up to `seconds`.
        func receive(_ seconds: Double) -> String? {
            var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            guard poll(&p, 1, Int32(seconds * 1000)) == 1 else { return nil }
            var buffer = [UInt8](repeating: 0, count: 4096)
            let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            return n > 0 ? String(decoding: buffer[..<n], as: UTF8.self) : nil
        }

        deinit {
            close(fd)
            unlink(path)
        }
    }

    @Test("grid-eventd and grid-master report READY=1 through NOTIFY_SOCKET once they serve, STOPPING=1 on SIGTERM")
    func systemdNotify() throws {
        let dir = TempDir("notify")
        let notify = NotifySocket(dir.file("notify"))
        let port = freeLoopbackPort()
        let daemon = DaemonProcess(dataDir: dir.file("data"), socket: dir.file("d.sock"))
        daemon.extraHTTP = "127.0.0.1:\(port)"
        daemon.environment = ["NOTIFY_SOCKET": notify.path]
        try daemon.start()
        let ready = notify.receive(15)
        #expect(ready?.contains("READY=1") == true, "\(ready ?? "nothing")")
        #expect(ready?.contains("MAINPID=\(daemon.process!.processIdentifier)") == true)
        #expect(tcpConnects(port: port), "the HTTP API answers once READY=1 was sent")
        #expect(daemon.stop() == 0)
        let stopping = notify.receive(5)
        #expect(stopping?.contains("STOPPING=1") == true, "\(stopping ?? "nothing")")

        // grid-master, through its new --http spelling.
        let masterPort = freeLoopbackPort()
        let master = try Logged("grid-master", ["--http", "127.0.0.1:\(masterPort)"], out: dir.file("master.out"),
                                environment: ["NOTIFY_SOCKET": notify.path, "EVENT_STORAGE": ""])
        let masterReady = notify.receive(15)
        #expect(masterReady?.contains("READY=1") == true, "\(masterReady ?? "nothing"): \(master.stderr)")
        #expect(tcpConnects(port: masterPort))
        #expect(master.stop(SIGTERM) == 0)
        #expect(notify.receive(5)?.contains("STOPPING=1") == true)

        // Without NOTIFY_SOCKET nothing is sent and the daemon starts as ever (every other test).
    }
}
