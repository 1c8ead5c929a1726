import ArgumentParser
import Foundation
import GridEvents
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// The filters `events` and `export` share, as API query parameters.
struct EventFilterOptions: ParsableArguments {
    @Option(name: .customLong("type"), help: "Event type(s), comma-separated (spawn_failed,node_crashed).")
    var types: String?

    @Option(help: "Only events that mention this entity (agent-001, node-7, cluster).")
    var entity: String?

    @Option(help: "From this time: RFC 3339, 15m/2h/7d ago, today, yesterday, now or HH:MM (UTC).")
    var since: String?

    @Option(help: "Until this time (exclusive), in the same forms as --since.")
    var until: String?

    @Option(help: "Ids starting with this (event-spawn_*).")
    var prefix: String?

    func validate() throws {
        let now = TimeFlag.now
        _ = try TimeFlag.resolve(since, flag: "since", now: now)
        _ = try TimeFlag.resolve(until, flag: "until", now: now)
    }

    func queryItems(now: Int64) throws -> [URLQueryItem] {
        var items: [URLQueryItem] = []
        if let types { items.append(URLQueryItem(name: "type", value: types)) }
        if let entity { items.append(URLQueryItem(name: "entity", value: entity)) }
        if let s = try TimeFlag.resolve(since, flag: "since", now: now) { items.append(URLQueryItem(name: "since", value: s)) }
        if let u = try TimeFlag.resolve(until, flag: "until", now: now) { items.append(URLQueryItem(name: "until", value: u)) }
        if let prefix { items.append(URLQueryItem(name: "prefix", value: prefix)) }
        return items
    }
}

func queryString(_ items: [URLQueryItem]) -> String {
    var c = URLComponents()
    c.queryItems = items
    return c.percentEncodedQuery.map { "?" + $0 } ?? ""
}

struct Export: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Write every matching event to standard output, oldest first (grid-cli export > events.jsonl).",
        discussion: """
            Pages through the store to its end. -o jsonl (the default) writes the flat form `grid-cli emit` and
            `grid-cli import` read, with each event's id and timestamp, so importing the file into any store gives
            the same events and importing it twice adds nothing. -o json writes the API form, one event per line.
            On a terminal, a progress line is shown on standard error.
            """)

    @OptionGroup var api: StoreURLOption
    @OptionGroup var filters: EventFilterOptions

    @Option(name: [.customShort("o"), .customLong("output")], help: "jsonl (flat, what emit/import read) or json (API form), one event per line.")
    var output: OutputFormat = .jsonl

    @Option(name: .customLong("page-size"), help: "Events per request (1-1000).")
    var pageSize = 1000

    @Flag(help: "Show progress even when standard error is not a terminal.")
    var progress = false

    func validate() throws {
        guard output != .table else { throw ValidationError("export writes jsonl or json") }
        guard (1...1000).contains(pageSize) else { throw ValidationError("--page-size must be 1-1000") }
    }

    func run() throws {
        Stdout.ignoreSIGPIPE()
        // Relative times are fixed once, so every page asks for the same range.
        let base = try filters.queryItems(now: TimeFlag.now) + [
            URLQueryItem(name: "order", value: "oldest"), URLQueryItem(name: "limit", value: String(pageSize)),
        ]
        let shown = progress || isatty(2) == 1
        let started = Date()
        var lastShown = Date.distantPast
        var written = 0
        var cursor: String?
        let client = api.client
        repeat {
            var items = base
            if let cursor { items.append(URLQueryItem(name: "cursor", value: cursor)) }
            let value: JSONValue
            do {
                value = try client.request("/api/events" + queryString(items))
            } catch let error as CLIError {
                if shown { FileHandle.standardError.write(Data("\r\u{1B}[K".utf8)) }
                warn("grid-cli export: \(error) (after \(written) event(s))")
                throw ExitCode(1)
            }
            var text = ""
            for e in value["events"]?.arrayValue ?? [] {
                switch output {
                case .jsonl:
                    guard let line = flatLine(e) else {
                        warn("grid-cli export: event \(e["id"]?.text ?? "?") could not be written in the flat form; skipped")
                        continue
                    }
                    text += line
                default:
                    var w = JSONWriter()
                    w.value(e)
                    text += w.text
                }
                text += "\n"
                written += 1
            }
            Stdout.write(text)
            cursor = value["next_cursor"]?.stringValue
            if shown, Date().timeIntervalSince(lastShown) >= 0.25 {
                lastShown = Date()
                let rate = Int(Double(written) / max(Date().timeIntervalSince(started), 0.001))
                let at = (value["events"]?.arrayValue.last?["timestamp"]?.text).map { ", at \($0)" } ?? ""
                FileHandle.standardError.write(Data("\r\(written) event(s) exported\(at), \(rate) events/s\u{1B}[K".utf8))
            }
        } while cursor != nil
        if shown { FileHandle.standardError.write(Data("\r\u{1B}[K\(written) event(s) exported\n".utf8)) }
    }
}

struct Import: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Load events from JSON-lines files (what export writes), keeping their ids: importing twice adds nothing.",
        discussion: """
            The same as `grid-cli emit < FILE` for each file (standard input when none is given or for -): lines
            in the flat form, each event stored once however often the file is imported. Exit status as emit's.
            """)

    @OptionGroup var options: EmitOptions

    @Argument(help: "JSON-lines files (- for standard input).")
    var files: [String] = []

    func run() throws {
        var worst: Int32 = 0
        for file in files.isEmpty ? ["-"] : files {
            let fd = file == "-" ? 0 : open(file, O_RDONLY | O_CLOEXEC)
            guard fd >= 0 else { throw ValidationError("cannot open \(file): \(String(cString: strerror(errno)))") }
            defer { if fd != 0 { close(fd) } }
            do {
                try options.importLines(fd: fd)
            } catch let code as ExitCode {
                worst = max(worst, code.rawValue)
            }
        }
        if worst != 0 { throw ExitCode(worst) }
    }
}
