import ArgumentParser
import EventEmitter
import Foundation
import GridEvents
import GridVersion

@main
struct GridCLI: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "grid-cli",
        abstract: "Operator CLI for the grid and its event store.",
        version: GridVersion.current,
        subcommands: [Emit.self, Import.self, Events.self, Follow.self, Export.self, Query.self, Spawn.self, Stop.self, ListAgents.self, ListNodes.self, Status.self])
}

/// Where the store's socket is: --socket, else EVENT_STORAGE, else ./data/grid-eventd.sock. (`--storage` is the
/// old spelling, kept hidden for one release.)
struct StorageOption: ParsableArguments {
    @Option(help: "grid-eventd's producer socket (a path or unix:///path). Default: $EVENT_STORAGE, else ./data/grid-eventd.sock.")
    var socket: String?

    @Option(name: .customLong("storage"), help: .hidden)
    var storage: String?

    var resolved: String {
        socket ?? storage ?? EventEmitter.environmentStorage().flatMap { $0.isEmpty ? nil : $0 } ?? "./data/grid-eventd.sock"
    }
}

/// What `emit` and `import` share: where to send, how long to wait, the spool, progress.
struct EmitOptions: ParsableArguments {
    @OptionGroup var storage: StorageOption

    @Option(help: "Write the id of every acknowledged event to this file, one per line, in line order.")
    var report: String?

    @Option(help: "Seconds to wait without progress (no event taken, none acknowledged) before giving up.")
    var timeout = 30.0

    @Option(help: "Timestamp for lines without one (RFC 3339, 15m/2h/7d ago, today, yesterday or HH:MM UTC). Default: the input file's modification time, or the time each line is read when the input is not a file.")
    var time: String?

    @Option(name: .customLong("max-line"), help: "Longest accepted input line, bytes.")
    var maxLine = 1 << 20

    @Option(name: .customLong("queue-capacity"), help: "Events held in memory (default 100,000).")
    var queueCapacity: Int?

    @Option(name: .customLong("spool-dir"), help: "Spool directory (default $EVENT_SPOOL_DIR, else /tmp/grid-events-spool-<uid>).")
    var spoolDir: String?

    @Option(name: .customLong("spool-limit"), help: "Largest spool file, bytes (default 256 MiB).")
    var spoolLimit: Int?

    @Flag(help: "Show progress even when standard error is not a terminal.")
    var progress = false

    func validate() throws {
        guard timeout > 0 else { throw ValidationError("--timeout must be positive") }
        _ = try TimeFlag.resolve(time, flag: "time", now: TimeFlag.now)
        guard maxLine > 0 else { throw ValidationError("--max-line must be positive") }
    }

    var resolvedTime: Int64? {
        time.flatMap { try? TimeExpression.parse($0, now: TimeFlag.now) }
    }

    func makeEmitter() -> EventEmitter {
        var options = EmitterOptions(producerName: "grid-cli")
        options.notice = { warn($0) }
        options.whenFull = .wait(seconds: timeout)
        options.trackAcknowledgements = true
        if let queueCapacity { options.queueCapacity = max(1, queueCapacity) }
        if let spoolDir { options.spoolDirectory = spoolDir }
        if let spoolLimit { options.spoolLimitBytes = spoolLimit }
        return EventEmitter(storage: storage.resolved, options: options)
    }

    /// Reads JSON lines from `fd` to its end and emits them; exit status as `emit` documents.
    func importLines(fd: Int32) throws {
        let emitter = makeEmitter()
        var defaultTime = resolvedTime
        if defaultTime == nil {
            var st = stat()
            if fstat(fd, &st) == 0, st.st_mode & S_IFMT == S_IFREG {
                defaultTime = Int64(st.st_mtim.tv_sec) * 1_000_000 + Int64(st.st_mtim.tv_nsec) / 1000
            }
        }
        let importer = LineImport(emitter: emitter, maxLine: maxLine, defaultTime: defaultTime, keepIds: report != nil, warn: warn)
        let shown = progress || isatty(2) == 1
        let bar = shown ? ProgressLine(linesRead: { [count = importer.linesRead] in count.value.load(ordering: .relaxed) }, acked: { [emitter] in emitter.stats.acked }) : nil
        importer.run(fd: fd)
        let delivered = waitForAcks(emitter)
        bar?.finish()
        let stats = emitter.stats
        emitter.close(timeout: 0)
        let emitted = importer.sequences.count
        var notStored: [Int] = []
        var reported: [String] = []
        for (i, seq) in importer.sequences.enumerated() {
            if emitter.isAcknowledged(sequence: seq) {
                if report != nil { reported.append(importer.ids[i]) }
            } else {
                notStored.append(Int(importer.lines[i]))
            }
        }
        let acked = emitted - notStored.count
        var summary = "\(acked) of \(emitted) event(s) acknowledged"
        if importer.bad > 0 { summary += "; \(importer.bad) bad line(s) skipped" }
        if stats.replayed > 0 { summary += "; \(stats.replayed) event(s) of an earlier run delivered from the spool" }
        print(summary)
        if let report {
            try reported.map { $0 + "\n" }.joined().write(toFile: report, atomically: true, encoding: .utf8)
        }
        var failed = false
        if let (code, line) = importer.readError {
            failed = true
            warn("cannot read the input" + (line > 0 ? " after line \(line)" : "") + ": \(String(cString: strerror(code)))")
        }
        if let line = importer.stoppedAtLine {
            failed = true
            warn("stopped at line \(line): grid-eventd took no event for \(timeout) s and the spool is full or unusable; line \(line) and the lines after it were not sent")
        }
        if !notStored.isEmpty {
            failed = true
            let kept = emitter.spoolPath.map { "they are kept in the spool \($0) and the next grid-cli emit delivers them" } ?? "there is no spool: they are lost"
            warn("\(notStored.count) event(s) not acknowledged within \(timeout) s without progress (\(kept)); lines \(LineRanges.describe(notStored)). Running this import again stores each line once.")
        } else if !delivered {
            warn("events of an earlier run are still in the spool; the next grid-cli emit delivers them")
        }
        if failed { throw ExitCode(2) }
        if importer.bad > 0 { throw ExitCode(1) }
    }

    /// Waits until nothing is pending, giving up after `timeout` seconds in which nothing was acknowledged.
    func waitForAcks(_ emitter: EventEmitter) -> Bool {
        var last = emitter.stats
        var lastProgress = Date()
        while emitter.hasPending {
            _ = emitter.flush(timeout: 0.25)
            let now = emitter.stats
            if now.acked != last.acked || now.replayed != last.replayed || now.spooled != last.spooled {
                last = now
                lastProgress = Date()
            } else if Date().timeIntervalSince(lastProgress) > timeout {
                return false
            }
        }
        return true
    }
}

struct Emit: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Emit events: JSON lines from standard input, or one event from flags.",
        discussion: """
            Each input line is one event in the flat JSON form:
              {"event_type": "spawn_failed", "node_id": "node-7", "agent_id": "agent-001", "error": "disk full"}
            "timestamp" (RFC 3339) and "id" are optional. An unknown event_type is a custom event; give its
            entities as "entities": ["..."]. Bad lines are reported with their line number; the good ones still go.
            This is the form `grid-cli export` writes (-o jsonl): an export emitted again keeps every id, so the
            store keeps one copy of each event (see `grid-cli import`).

            Nothing is dropped: when grid-eventd is slower than the input, reading waits; while it is unreachable,
            events go to the spool, and when that is full too, reading waits up to --timeout. A line without an id
            gets one made from its bytes, its timestamp and its line number, and a line without a timestamp gets the
            input file's modification time (or --time; from a pipe, the time it is read): so an import that was
            interrupted can simply be run again, and every event is stored once.

            On a terminal, progress is shown on standard error. Prints how many of this run's events were
            acknowledged as durable. Exit status: 0 every event stored, 1 some lines were bad (every good one
            stored), 2 some events were not stored (they are named by line).
            """)

    @OptionGroup var options: EmitOptions

    @Option(name: .customLong("type"), help: "Emit one event of this type instead of reading standard input.")
    var eventType: String?

    @Option(name: .customLong("field"), help: "A field of the --type event, name=value (repeatable).")
    var fields: [String] = []

    func run() throws {
        if let eventType { return try emitOne(eventType) }
        try options.importLines(fd: 0)
    }

    /// `--type` with `--field`s: one event, with an id of its own (not an import: running it again emits again).
    func emitOne(_ eventType: String) throws {
        var object: [String: JSONValue] = ["event_type": .string(eventType)]
        for f in fields {
            guard let eq = f.firstIndex(of: "=") else { throw ValidationError("--field \(f): expected name=value") }
            let name = String(f[..<eq])
            let raw = String(f[f.index(after: eq)...])
            object[name] = Int64(raw).map(JSONValue.int) ?? Double(raw).map(JSONValue.double) ?? (raw == "true" ? .bool(true) : raw == "false" ? .bool(false) : .string(raw))
        }
        let draft: GridEvent.Draft
        do {
            draft = try GridEvent.parseJSON(.object(object))
            try GridEvent.validate(kind: draft.kind, id: draft.id)
        } catch {
            throw ValidationError("\(error.message)")
        }
        let emitter = options.makeEmitter()
        let at = draft.timestamp ?? options.resolvedTime
        let seq = draft.id.map { emitter.emit(draft.kind, id: $0, at: at) } ?? emitter.emit(draft.kind, at: at)
        let id = draft.id ?? emitter.id(of: draft.kind, sequence: seq)
        _ = options.waitForAcks(emitter)
        emitter.close(timeout: 0)
        let acked = seq != 0 && emitter.isAcknowledged(sequence: seq)
        print("\(acked ? 1 : 0) of 1 event(s) acknowledged")
        if let report = options.report, acked { try (id + "\n").write(toFile: report, atomically: true, encoding: .utf8) }
        if !acked {
            warn("the event was not acknowledged within \(options.timeout) s without progress" + (emitter.spoolPath.map { "; it is kept in the spool \($0)" } ?? ""))
            throw ExitCode(2)
        }
    }
}

/// Line numbers as ranges: "3, 7-9, 12" (at most 20 ranges, then how many more).
enum LineRanges {
    static func describe(_ lines: [Int]) -> String {
        var ranges: [(Int, Int)] = []
        for l in lines.sorted() {
            if let last = ranges.last, last.1 + 1 == l { ranges[ranges.count - 1].1 = l } else { ranges.append((l, l)) }
        }
        var text = ranges.prefix(20).map { $0.0 == $0.1 ? "\($0.0)" : "\($0.0)-\($0.1)" }.joined(separator: ", ")
        if ranges.count > 20 { text += " and \(ranges.count - 20) more range(s)" }
        return text
    }
}

func warn(_ message: String) {
    // While a progress line is shown, clear it first (it is redrawn on its next tick).
    let clear = ProgressLine.shown.value.load(ordering: .relaxed) != 0 ? "\r\u{1B}[K" : ""
    FileHandle.standardError.write(Data((clear + message + "\n").utf8))
}
