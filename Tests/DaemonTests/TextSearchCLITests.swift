import EventQuery
import EventStore
import Foundation
import GridEvents
import GridFixtures
import Testing

/// `grid-cli events --text` against a real grid-eventd, on a store written before the word index existed: the
/// daemon rebuilds its index files with words on open, and the CLI's answers are those of a scan of the events.
@Suite("grid-cli events --text", .serialized, .timeLimit(.minutes(3)))
struct TextSearchCLITests {
    @Test func searchesTheDaemonsWordIndexOnAStoreWrittenWithoutIt() throws {
        let dir = TempDir("cli-text")
        let data = dir.file("data")
        var grid = SampleGrid(seed: 17, agents: 10, nodes: 80)
        let events = grid.events(6000)
        do {
            // Sealed segments with index files of no words (a store from before the word index).
            var o = StoreOptions(durability: .none, segmentCapacity: 256 << 10)
            o.backgroundMaintenance = false
            let store = try EventStore.open(at: data, options: o)
            for chunk in stride(from: 0, to: events.count, by: 500) {
                try store.append(events[chunk..<min(chunk + 500, events.count)].flatMap { $0.records() })
            }
            _ = try store.runMaintenance()
            #expect(store.stats.indexFiles > 0)
            store.close()
        }
        let daemon = DaemonProcess(dataDir: data, socket: dir.file("s.sock"))
        let port = Int.random(in: 20_000...60_000)
        daemon.extraHTTP = "127.0.0.1:\(port)"
        try daemon.start()
        defer { daemon.stop() }
        #expect(daemon.log().contains("no word index"), "\(daemon.log().suffix(2000))")

        func expected(_ text: String, type: EventType? = nil) -> Set<String> {
            let q = TextQuery(text)!
            return Set(events.filter { e in
                (type == nil || e.type == type) && q.matches { body in
                    for s in GridText.strings(of: e) { var s = s; s.withUTF8 { body(UnsafeRawBufferPointer($0)) } }
                }
            }.map(\.id))
        }
        for (text, type) in [("disk full", nil), ("\"timed out\"", EventType?.some(.spawnFailed)), ("agent 003", nil), ("zebra", nil)] as [(String, EventType?)] {
            var args = ["events", "--store", "http://127.0.0.1:\(port)", "--text", text, "--limit", "1000", "--json"]
            if let type { args += ["--type", type.name] }
            var ids: [String] = []
            var cursor: String?
            repeat {
                let r = try Child("grid-cli", args + (cursor.map { ["--cursor", $0] } ?? [])).wait(timeout: 30)
                #expect(r.status == 0, "\(r.stderr)")
                let page = try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any]
                ids += (page?["events"] as? [[String: Any]] ?? []).compactMap { $0["id"] as? String }
                cursor = page?["next_cursor"] as? String
            } while cursor != nil
            let want = expected(text, type: type)
            #expect(ids.count == want.count && Set(ids) == want, "\(text): \(ids.count) events, expected \(want.count)")
        }
        // The table output marks nothing up: it prints the fields.
        let table = try Child("grid-cli", ["events", "--store", "http://127.0.0.1:\(port)", "--text", "disk full", "--limit", "3"]).wait(timeout: 30)
        #expect(table.status == 0 && table.stdout.contains("disk full"), "\(table.stdout) \(table.stderr)")
    }
}
