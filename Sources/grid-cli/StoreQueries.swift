import ArgumentParser
import Foundation
import GridControl
import GridEvents
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// The daemon's HTTP API: --url, else $GRID_EVENTS_URL, else the local daemon. (`--store` is the old spelling,
/// kept hidden for one release.)
struct StoreURLOption: ParsableArguments {
    @Option(help: "grid-eventd's HTTP API. Default: $GRID_EVENTS_URL, else http://127.0.0.1:7780.")
    var url: String?

    @Option(name: .customLong("store"), help: .hidden)
    var store: String?

    @Option(help: "Bearer token for the API (default: $GRID_EVENTS_TOKEN).")
    var token: String?

    var client: APIClient {
        APIClient(base: url ?? store ?? ProcessInfo.processInfo.environment["GRID_EVENTS_URL"] ?? "http://127.0.0.1:7780",
                  token: token ?? ProcessInfo.processInfo.environment["GRID_EVENTS_TOKEN"])
    }

    func request(_ path: String, method: String = "GET", body: Data? = nil) throws -> JSONValue {
        try client.request(path, method: method, body: body)
    }
}

/// A blocking JSON-over-HTTP call to one of the grid's APIs, through GridControl's one client.
struct APIClient {
    var base: String
    var token: String?

    init(base: String, token: String?) {
        self.base = base.hasSuffix("/") ? String(base.dropLast()) : base
        self.token = token
    }

    /// Performs a request and returns the parsed JSON, or throws with the API's error message.
    func request(_ path: String, method: String = "GET", body: Data? = nil) throws -> JSONValue {
        let client = ControlClient(timeoutSeconds: 30, token: token, answerLimit: 64 << 20)
        do {
            return try client.callBlocking(method, base + path, body: body.map { String(decoding: $0, as: UTF8.self) })
        } catch {
            var message = error.message
            if !error.suggestions.isEmpty { message += "\ntry: " + error.suggestions.joined(separator: " | ") }
            throw CLIError(message)
        }
    }
}

struct CLIError: Error, CustomStringConvertible {
    var description: String
    init(_ d: String) { description = d }
}

extension JSONValue {
    var arrayValue: [JSONValue] {
        if case .array(let a) = self { return a }
        return []
    }

    var text: String {
        switch self {
        case .null: return "-"
        case .bool(let b): return String(b)
        case .int(let i): return String(i)
        case .double(let d): return String(d)
        case .string(let s): return s
        case .array(let a): return a.map(\.text).joined(separator: ",")
        case .object(let o): return o.keys.sorted().map { "\($0)=\(o[$0]!.text)" }.joined(separator: " ")
        }
    }
}

/// Prints rows as an aligned table.
func printTable(_ rows: [[String]]) {
    guard let first = rows.first else { return }
    let widths = (0..<first.count).map { c in rows.map { c < $0.count ? $0[c].count : 0 }.max() ?? 0 }
    for row in rows {
        let cells = row.enumerated().map { c, cell in c == row.count - 1 ? cell : cell.padding(toLength: widths[c], withPad: " ", startingAt: 0) }
        print(cells.joined(separator: "  "))
    }
}

func printEvents(_ events: [JSONValue]) {
    var rows = [["TIME", "TYPE", "ENTITIES", "DETAILS", "ID"]]
    for e in events {
        let fields = e["fields"] ?? .null
        var details: [String] = []
        if case .object(let o) = fields {
            for k in o.keys.sorted() where k != "agent_id" && k != "node_id" { details.append("\(k)=\(o[k]!.text)") }
        }
        rows.append([e["timestamp"]?.text ?? "-", e["event_type"]?.text ?? "-", e["entities"]?.text ?? "-",
                     details.joined(separator: " "), e["id"]?.text ?? "-"])
    }
    printTable(rows)
}

struct Events: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "List events from the store with structured filters.")

    @OptionGroup var api: StoreURLOption

    @OptionGroup var filters: EventFilterOptions

    @Option(help: "Words that must all appear in the event's string fields, any case, any field each; \"quoted phrases\" match words in order (--text 'disk full', --text '\"connection refused\" node-7').")
    var text: String?

    @Option(help: "Events per page (1-1000).")
    var limit = 50

    @Option(help: "Continue from a previous page's cursor.")
    var cursor: String?

    @Flag(help: "Oldest first.")
    var oldest = false

    @OptionGroup var output: OutputOption

    func run() throws {
        Stdout.ignoreSIGPIPE()
        var items = [URLQueryItem(name: "limit", value: String(limit))] + (try filters.queryItems(now: TimeFlag.now))
        if let text { items.append(URLQueryItem(name: "text", value: text)) }
        if let cursor { items.append(URLQueryItem(name: "cursor", value: cursor)) }
        if oldest { items.append(URLQueryItem(name: "order", value: "oldest")) }
        do {
            let value = try api.request("/api/events" + queryString(items))
            let events = value["events"]?.arrayValue ?? []
            switch output.format(default: .table) {
            case .json:
                var w = JSONWriter()
                w.value(value)
                Stdout.write(w.text + "\n")
            case .jsonl:
                // Flat lines only (what emit reads); the next page's cursor goes to standard error.
                Stdout.write(events.compactMap(flatLine).map { $0 + "\n" }.joined())
                if let next = value["next_cursor"]?.stringValue { warn("more: --cursor \(next)") }
            case .table:
                printEvents(events)
                if let next = value["next_cursor"]?.stringValue { print("more: --cursor \(next)") }
            }
        } catch let error as CLIError {
            warn("grid-cli events: \(error)")
            throw ExitCode(1)
        }
    }
}

struct Query: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Ask the store a question in plain English.",
        discussion: "Examples: \"show spawn failures today\", \"how many nodes crashed this week\", \"what happened to agent-001\", \"top 5 agents by failures this week\".")

    @OptionGroup var api: StoreURLOption

    @Argument(help: "The question.")
    var question: String

    @OptionGroup var output: OutputOption

    func run() throws {
        var w = JSONWriter()
        w.raw("{\"query\":")
        w.string(question)
        w.raw("}")
        do {
            let value = try api.request("/api/grid/events/query", method: "POST", body: Data(w.text.utf8))
            let format = output.format(default: .table)
            if format == .json {
                var out = JSONWriter()
                out.value(value)
                print(out.text)
                return
            }
            if format == .jsonl {
                // The answer's events, one flat line each (a count or groups answer has none: its JSON instead).
                let result = value["result"] ?? .null
                if let events = result["events"]?.arrayValue, result["kind"]?.stringValue != "count", result["kind"]?.stringValue != "groups" {
                    for e in events { if let line = flatLine(e) { print(line) } }
                } else {
                    var out = JSONWriter()
                    out.value(result)
                    print(out.text)
                }
                return
            }
            print("understood: " + (value["interpretation"]?["sentence"]?.text ?? "?"))
            let result = value["result"] ?? .null
            switch result["kind"]?.stringValue {
            case "count":
                print(result["count"]?.text ?? "0")
                let rows = result["breakdown"]?.arrayValue.map { [$0["key"]?.text ?? "-", $0["count"]?.text ?? "0"] } ?? []
                if !rows.isEmpty { printTable([["KEY", "COUNT"]] + rows) }
            case "groups":
                printTable([["KEY", "COUNT"]] + (result["groups"]?.arrayValue.map { [$0["key"]?.text ?? "-", $0["count"]?.text ?? "0"] } ?? []))
            default:
                let events = result["events"]?.arrayValue ?? []
                if events.isEmpty { print("no events") } else { printEvents(events) }
            }
        } catch let error as CLIError {
            warn("grid-cli query: \(error)")
            throw ExitCode(1)
        }
    }
}
