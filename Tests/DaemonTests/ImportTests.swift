import EventStore
import Foundation
import GridEvents
import GridFixtures
import Testing

/// `grid-cli emit` importing JSON lines into a real grid-eventd: never drops, counts exactly, and an import
/// interrupted by SIGKILL and run again stores every event once.
@Suite("grid-cli emit imports", .serialized, .timeLimit(.minutes(5)))
struct ImportTests {
    /// Realistic flat JSON lines without ids; every 20th also without a timestamp.
    static func lines(_ count: Int, seed: UInt64 = 11, untimedEvery: Int = 20) -> [String] {
        var grid = SampleGrid(seed: seed)
        return grid.events(count).enumerated().map { i, e in
            var line = e.flatJSON.replacingOccurrences(of: ",\"id\":\"\(e.id)\"", with: "")
            if untimedEvery > 0, i % untimedEvery == untimedEvery - 1 {
                line = line.replacingOccurrences(of: ",\"timestamp\":\"\(TimeText.format(e.timestamp))\"", with: "")
            }
            return line
        }
    }

    static func write(_ lines: [String], to path: String) throws {
        try (lines.joined(separator: "\n") + "\n").write(toFile: path, atomically: false, encoding: .utf8)
    }

    /// grid-cli with `stdin` as its standard input.
    static func cli(_ arguments: [String], stdin: String, environment: [String: String]? = nil) throws -> Child {
        try Child("grid-cli", ["emit"] + arguments, environment: environment,
                  prefix: ["/bin/sh", "-c", "exec \"$0\" \"$@\" < '\(stdin)'"])
    }

    /// The id grid-cli gives line `number` (1-based) of a regular file without an id (README, "grid-cli emit"):
    /// `event-<type>-<t>-<number>`, t = the low 48 bits of XXH3-64 of the line's bytes seeded with the event's
    /// timestamp (the line's own, else the file's modification time), as 12 lowercase hex digits.
    static func expectedId(line: String, number: Int, fileTime: Int64) -> String {
        let draft = try! GridEvent.parseJSON(try! JSONValue.parse(Array(line.utf8)))
        let ts = draft.timestamp ?? fileTime
        let h = Array(line.utf8).withUnsafeBytes { Hash.bytes($0, seed: UInt64(bitPattern: ts)) } & 0xFFFF_FFFF_FFFF
        let hex = String(h, radix: 16)
        return "event-\(draft.kind.typeName)-\(String(repeating: "0", count: 12 - hex.count) + hex)-\(number)"
    }

    static func modificationMicros(_ path: String) -> Int64 {
        var st = stat()
        stat(path, &st)
        return Int64(st.st_mtim.tv_sec) * 1_000_000 + Int64(st.st_mtim.tv_nsec) / 1000
    }

    @Test("an input that cannot be read (a directory) is an error: its reason, exit 2, not an empty import")
    func unreadableInputFails() throws {
        let dir = TempDir("imp-unreadable")
        let r = try Child("grid-cli", ["import", "--storage", dir.file("nobody.sock"), "--spool-dir", dir.file("spool"), "--timeout", "5", dir.path])
            .wait(timeout: 60)
        #expect(r.status == 2, "\(r.stdout) \(r.stderr)")
        #expect(r.stderr.contains("cannot read the input: Is a directory"), "\(r.stderr)")
    }

    @Test func importLargerThanTheQueueNeverDrops() throws {
        let dir = TempDir("imp-nodrop")
        let input = dir.file("events.jsonl")
        try Self.write(Self.lines(5000), to: input)
        let daemon = DaemonProcess(dataDir: dir.file("data"), socket: dir.file("s.sock"))
        // The spool cannot be used (its directory is a file) and the daemon comes only a second later: with a
        // queue of 1,000 events, grid-cli must wait instead of dropping.
        FileManager.default.createFile(atPath: dir.file("not-a-dir"), contents: Data())
        let cli = try Self.cli(
            ["--storage", daemon.socket, "--queue-capacity", "1000", "--spool-dir", dir.file("not-a-dir"), "--timeout", "60",
             "--report", dir.file("report")], stdin: input)
        usleep(1_000_000)
        try daemon.start()
        let r = cli.wait(timeout: 120)
        #expect(r.status == 0, "\(r.stdout) \(r.stderr.suffix(2000))")
        #expect(r.stdout.contains("5000 of 5000 event(s) acknowledged"), "\(r.stdout)")
        #expect(!r.stderr.contains("dropped"), "\(r.stderr.suffix(2000))")
        #expect(daemon.stop() == 0)
        let reported = readIds(dir.file("report"))
        #expect(reported.count == 5000)
        try withStore(daemon.dataDir) { store in
            #expect(store.stats.events == 5000)
            #expect(reported.allSatisfy { store.contains(id: $0) })
        }
    }

    @Test func countsAreExactBesideAnEarlierRunsSpool() throws {
        let dir = TempDir("imp-exact")
        let spool = dir.file("spool")
        let daemon = DaemonProcess(dataDir: dir.file("data"), socket: dir.file("s.sock"))
        // A first import while the daemon is away: its events stay in the spool.
        try Self.write(Self.lines(1000, seed: 1), to: dir.file("a.jsonl"))
        let first = try Self.cli(["--storage", daemon.socket, "--spool-dir", spool, "--timeout", "1"], stdin: dir.file("a.jsonl")).wait()
        #expect(first.status == 2, "\(first.stdout) \(first.stderr.suffix(1000))")
        try daemon.start()
        // The second import replays them, but counts only its own 1,000 events; with a small queue and a spool
        // already past its limit, it must wait, not drop.
        try Self.write(Self.lines(1000, seed: 2), to: dir.file("b.jsonl"))
        let second = try Self.cli(
            ["--storage", daemon.socket, "--spool-dir", spool, "--queue-capacity", "100", "--spool-limit", "4096", "--timeout", "60",
             "--report", dir.file("report")], stdin: dir.file("b.jsonl")).wait(timeout: 120)
        #expect(second.status == 0, "\(second.stdout) \(second.stderr.suffix(1000))")
        #expect(second.stdout.contains("1000 of 1000 event(s) acknowledged"), "\(second.stdout)")
        #expect(daemon.stop() == 0)
        let bIds = try String(contentsOfFile: dir.file("b.jsonl"), encoding: .utf8).split(separator: "\n").map(String.init)
        let mtime = Self.modificationMicros(dir.file("b.jsonl"))
        let expected = bIds.enumerated().map { Self.expectedId(line: $1, number: $0 + 1, fileTime: mtime) }
        let reported = readIds(dir.file("report"))
        #expect(reported == expected, "the report names exactly this run's events, in line order")
        try withStore(daemon.dataDir) { store in
            #expect(store.stats.events == 2000)
            #expect(expected.allSatisfy { store.contains(id: $0) })
        }
    }

    @Test func anImportKilledMidwayAndRunAgainStoresEveryEventOnce() throws {
        let dir = TempDir("imp-rerun")
        let input = dir.file("events.jsonl")
        let count = 60_000
        let lines = Self.lines(count, seed: 7)
        try Self.write(lines, to: input)
        let mtime = Self.modificationMicros(input)
        // Small segments, so the first run's events are in sealed segments when the second run resends them.
        let daemon = DaemonProcess(dataDir: dir.file("data"), socket: dir.file("s.sock"), extra: ["--segment-size", "1048576"])
        try daemon.start()
        let arguments = ["--storage", daemon.socket, "--spool-dir", dir.file("spool"), "--queue-capacity", "5000", "--timeout", "60"]
        let first = try Self.cli(arguments, stdin: input)
        // SIGKILL once some, but not all, events are stored.
        var storedAtKill = 0
        let deadline = Date().addingTimeInterval(60)
        while Date() < deadline, first.process.isRunning {
            storedAtKill = (try? withStore(daemon.dataDir) { $0.stats.events }) ?? 0
            if storedAtKill >= 8000 { break }
            usleep(20_000)
        }
        #expect(first.process.isRunning, "the import finished before it could be interrupted")
        kill(first.process.processIdentifier, SIGKILL)
        let killed = first.wait()
        #expect(killed.status == SIGKILL)
        #expect(storedAtKill >= 8000 && storedAtKill < count, "\(storedAtKill)")
        // Run again: every line is sent again with the same id; the store keeps one copy.
        let second = try Self.cli(arguments, stdin: input).wait(timeout: 180)
        #expect(second.status == 0, "\(second.stdout) \(second.stderr.suffix(1000))")
        #expect(second.stdout.contains("\(count) of \(count) event(s) acknowledged"), "\(second.stdout)")
        #expect(daemon.stop() == 0)
        let expected = lines.enumerated().map { Self.expectedId(line: $1, number: $0 + 1, fileTime: mtime) }
        try withStore(daemon.dataDir) { store in
            var served = 0
            var seen = Set<String>()
            var duplicates = 0
            store.forEachEvent { e in
                served += 1
                if !seen.insert(e.id).inserted { duplicates += 1 }
                return true
            }
            #expect(served == count, "events served: \(served)")
            #expect(duplicates == 0)
            #expect(store.stats.events == count)
            var missing = 0
            for id in expected where !seen.contains(id) { missing += 1 }
            #expect(missing == 0, "\(missing) line(s) missing")
        }
    }
}
