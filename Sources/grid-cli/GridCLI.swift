import ArgumentParser
import EventEmitter
import Foundation
import GridEvents

@main
struct GridCLI: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "grid-cli",
        abstract: "Operator CLI for the grid and its event store.",
        subcommands: [Emit.self, Events.self, Query.self, Spawn.self, Stop.self, ListAgents.self, ListNodes.self, Status.self])
}

/// Where the store's socket is: --storage, else EVENT_STORAGE, else ./data/grid-eventd.sock.
struct StorageOption: ParsableArguments {
    @Option(help: "grid-eventd socket (a path or unix:///path). Default: $EVENT_STORAGE, else ./data/grid-eventd.sock.")
    var storage: String?

    var resolved: String {
        storage ?? EventEmitter.environmentStorage().flatMap { $0.isEmpty ? nil : $0 } ?? "./data/grid-eventd.sock"
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
            Prints how many events were acknowledged as durable. Exit status: 0 all acked, 1 some lines were bad,
            2 not everything was acknowledged before --timeout.
            """)

    @OptionGroup var storage: StorageOption

    @Option(help: "Write the id of every acknowledged event to this file, one per line.")
    var report: String?

    @Option(name: .customLong("type"), help: "Emit one event of this type instead of reading standard input.")
    var eventType: String?

    @Option(name: .customLong("field"), help: "A field of the --type event, name=value (repeatable).")
    var fields: [String] = []

    @Option(help: "Seconds to wait for acknowledgements.")
    var timeout = 30.0

    @Option(name: .customLong("max-line"), help: "Longest accepted input line, bytes.")
    var maxLine = 1 << 20

    @Option(name: .customLong("queue-capacity"), help: "Events held in memory (default 100,000).")
    var queueCapacity: Int?

    @Option(name: .customLong("spool-dir"), help: "Spool directory (default $EVENT_SPOOL_DIR, else /tmp/grid-events-spool-<uid>).")
    var spoolDir: String?

    @Option(name: .customLong("spool-limit"), help: "Largest spool file, bytes (default 256 MiB).")
    var spoolLimit: Int?

    func run() throws {
        var drafts: [(line: Int, draft: GridEvent.Draft)] = []
        var bad = 0
        if let eventType {
            var object: [String: JSONValue] = ["event_type": .string(eventType)]
            for f in fields {
                guard let eq = f.firstIndex(of: "=") else { throw ValidationError("--field \(f): expected name=value") }
                let name = String(f[..<eq])
                let raw = String(f[f.index(after: eq)...])
                object[name] = Int64(raw).map(JSONValue.int) ?? Double(raw).map(JSONValue.double) ?? (raw == "true" ? .bool(true) : raw == "false" ? .bool(false) : .string(raw))
            }
            do {
                drafts.append((1, try GridEvent.parseJSON(.object(object))))
            } catch {
                throw ValidationError("\(error.message)")
            }
        } else {
            var lineNumber = 0
            while let line = readLine(strippingNewline: true) {
                lineNumber += 1
                if line.trimmingCharacters(in: .whitespaces).isEmpty { continue }
                guard line.utf8.count <= maxLine else {
                    warn("line \(lineNumber): longer than \(maxLine) bytes; skipped")
                    bad += 1
                    continue
                }
                do {
                    drafts.append((lineNumber, try GridEvent.parseJSON(try JSONValue.parse(Array(line.utf8)))))
                } catch {
                    warn("line \(lineNumber): \(error.message)")
                    bad += 1
                }
            }
        }
        var options = EmitterOptions(producerName: "grid-cli")
        options.notice = { warn($0) }
        if let queueCapacity { options.queueCapacity = queueCapacity }
        if let spoolDir { options.spoolDirectory = spoolDir }
        if let spoolLimit { options.spoolLimitBytes = spoolLimit }
        let emitter = EventEmitter(storage: storage.resolved, options: options)
        var ids: [String] = []
        for (line, d) in drafts {
            if let id = d.id {
                guard id.hasPrefix("event-" + d.kind.typeName + "-") else {
                    warn("line \(line): id \(id) must start with event-\(d.kind.typeName)-")
                    bad += 1
                    continue
                }
                emitter.emit(d.kind, id: id, at: d.timestamp)
                ids.append(id)
            } else {
                let seq = emitter.emit(d.kind, at: d.timestamp)
                ids.append(emitter.id(of: d.kind, sequence: seq))
            }
        }
        let complete = emitter.flush(timeout: timeout)
        let stats = emitter.stats
        emitter.close(timeout: 0)
        let acked = min(stats.acked, ids.count)
        print("\(acked) of \(ids.count) event(s) acknowledged" + (bad > 0 ? "; \(bad) bad line(s) skipped" : ""))
        if let report {
            let text = ids.prefix(acked).map { $0 + "\n" }.joined()
            try text.write(toFile: report, atomically: true, encoding: .utf8)
        }
        if !complete || acked < ids.count {
            warn("not every event was acknowledged within \(timeout) s; the rest stay in the spool and are sent by the next run")
            throw ExitCode(2)
        }
        if bad > 0 { throw ExitCode(1) }
    }
}

func warn(_ message: String) {
    FileHandle.standardError.write(Data((message + "\n").utf8))
}
