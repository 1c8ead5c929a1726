import ArgumentParser
import Foundation
import GridBase
import GridEvents

/// How commands that print events print them (`-o`).
///
/// - `table`: aligned columns for people (`follow` prints one unaligned row per event as it arrives).
/// - `json`: the API's answer as it came (`events`, `query`), one API-form event per line for `follow` and `export`.
/// - `jsonl`: one event per line in the flat form `grid-cli emit` reads, so `export` and `emit`/`import` round-trip.
enum OutputFormat: String, ExpressibleByArgument, CaseIterable {
    case table, json, jsonl
}

/// `-o/--output FORMAT`, with `--json` kept as an alias of `-o json`.
struct OutputOption: ParsableArguments {
    @Option(name: [.customShort("o"), .customLong("output")], help: "Output format: table, json or jsonl (one flat event per line, what emit reads).")
    var output: OutputFormat?

    @Flag(help: "Same as -o json.")
    var json = false

    func format(default d: OutputFormat) -> OutputFormat {
        output ?? (json ? .json : d)
    }
}

/// `--since`/`--until` as the tools take them: RFC 3339, an age (15m, 2h, 7d), today, yesterday, now or HH:MM
/// (UTC), read by `TimeExpression` (the parser the plain-English questions use); sent to the API as RFC 3339.
enum TimeFlag {
    static func resolve(_ text: String?, flag: String, now: Int64) throws -> String? {
        guard let text else { return nil }
        do {
            return TimeText.format(try TimeExpression.parse(text, now: now))
        } catch {
            throw ValidationError("--\(flag): \(error.message)")
        }
    }

    static var now: Int64 {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        return Int64(ts.tv_sec) * 1_000_000 + Int64(ts.tv_nsec) / 1000
    }
}

/// One event from the API (its JSON form) in the flat form `emit` reads: `event_type`, `id`, `timestamp`, a
/// custom event's `entities`, then the fields at the top level.
func flatLine(_ e: JSONValue) -> String? {
    guard let draft = try? GridEvent.parseJSON(e), let id = draft.id, let ts = draft.timestamp else { return nil }
    return GridEvent(id: id, timestamp: ts, kind: draft.kind).flatJSON
}

/// One event as a single table-like line (for `follow`, where rows arrive one at a time).
func eventRow(_ e: JSONValue) -> String {
    let fields = e["fields"] ?? .null
    var details: [String] = []
    if case .object(let o) = fields {
        for k in o.keys.sorted() where k != "agent_id" && k != "node_id" { details.append("\(k)=\(o[k]!.text)") }
    }
    return [e["timestamp"]?.text ?? "-", e["event_type"]?.text ?? "-", e["entities"]?.text ?? "-",
            details.joined(separator: " "), e["id"]?.text ?? "-"].joined(separator: "  ")
}

/// Standard output written directly (no buffering across events), so `follow` shows each event when it arrives
/// and a reader that went away (`| head`) ends the command cleanly: exit 0 on EPIPE instead of SIGPIPE
/// (GridBase's `StandardOutput`, which segdump uses too).
enum Stdout {
    static func ignoreSIGPIPE() { StandardOutput.ignoreSIGPIPE() }

    /// Exits (0) when standard output is a pipe whose reader went away, without writing to it: `follow` checks
    /// this on every keepalive, so `follow | head -1` ends within one keepalive interval even when no event comes.
    static func exitIfReaderGone() {
        var p = pollfd(fd: 1, events: Int16(POLLOUT), revents: 0)
        if poll(&p, 1, 0) == 1, p.revents & Int16(POLLERR | POLLHUP) != 0 { Foundation.exit(0) }
    }

    static func write(_ text: String) {
        var text = text
        text.withUTF8 { StandardOutput.write(UnsafeRawBufferPointer($0)) }
    }
}
