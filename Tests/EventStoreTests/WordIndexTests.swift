import Foundation
import Testing
@_spi(Testing) import EventStore

/// The word index (`StoreOptions.text`, `ReadSource.words`): in the active segment, in sealed segments' index files,
/// through compaction, restarts, a change of text scheme and retention, each answer compared with a scan of every
/// event's text with the same tokenizer.
@Suite struct WordIndexTests {
    /// Payloads are the text itself: one string field.
    static func indexing(scheme: UInt32 = 7) -> TextIndexing {
        TextIndexing(scheme: scheme) { _, payload, emit in emit(payload) }
    }

    static let vocabulary = [
        "disk", "full", "connection", "refused", "timeout", "Port", "IN", "use", "memory", "out", "of", "sda1", "50051",
        "Überlauf", "ärger", "node", "agent", "retry", "backoff", "fatal", "warn", "ok", String(repeating: "q", count: 80) + "1",
        String(repeating: "q", count: 80) + "2",
    ]

    static let base: Int64 = 1_790_000_000_000_000

    /// The text of event `i`: 1-7 words with a skew to the first ones, joined by assorted separators.
    static func text(_ i: Int) -> String {
        var state = UInt64(i) &* 0x9E37_79B9_7F4A_7C15 | 1
        func next() -> Int {
            state ^= state << 13
            state ^= state >> 7
            state ^= state << 17
            return Int(state >> 1)
        }
        let n = 1 + next() % 7
        let seps = [" ", ": ", "/", "-", ", ", "_", "."]
        return (0..<n).map { _ in vocabulary[min(next() % vocabulary.count, next() % vocabulary.count)] }
            .joined(separator: seps[next() % seps.count])
    }

    static func records(_ range: Range<Int>) -> [Record] {
        range.flatMap { i -> [Record] in
            // Times mostly ascend, with some disorder.
            let ts = base + Int64(i) * 1000 - Int64((i * 7919) % 5000)
            let entity = "agent-\(i % 5)"
            let c = ConceptRecord(id: "event-log-\(i)", typeCode: UInt16(1 + i % 3), timestamp: ts, entities: [entity],
                                  payload: Array(text(i).utf8))
            // An entity's list is made of its entity -> event adjacency entries.
            return [.concept(c), .adjacency(AdjacencyEntry(source: Hash.id(entity), target: c.idHash, edgeType: c.typeCode, timestamp: ts))]
        }
    }

    func options(_ text: TextIndexing?, maxBytes: Int? = nil, notices: Notices? = nil) -> StoreOptions {
        var o = StoreOptions(durability: .batch, segmentCapacity: 64 << 10)
        o.backgroundMaintenance = false
        o.text = text
        o.maxBytes = maxBytes
        if let notices { o.onNotice = notices.sink }
        return o
    }

    static let searches: [([String], String?)] = [
        (["disk"], nil), (["disk", "full"], nil), (["connection", "refused"], "agent-2"), (["überlauf"], nil),
        (["port", "in", "use"], nil), ([String(repeating: "q", count: 80) + "2"], nil), (["zebra"], nil),
        (["fatal", "ärger"], "agent-0"), (["ok"], "agent-4"),
    ]

    /// The ids a `.words` read gives, and the ids whose text has every word (and mentions the entity), in time
    /// order both ways and inside a window.
    func check(_ store: EventStore, count: Int, what: String, candidatesMayBeMore: Bool = false,
               sourceLocation: SourceLocation = #_sourceLocation) {
        var all: [StoredEvent] = []
        store.read([.all], ReadBounds(newestFirst: false)) { all.append($0); return true }
        #expect(all.count == count, "\(what): \(all.count) events stored, expected \(count)", sourceLocation: sourceLocation)
        for (words, entity) in Self.searches {
            for (range, newest) in [(Int64.min..<Int64.max, true), (Self.base + 500_000..<Self.base + 1_900_000, false)] {
                var got: [String] = []
                store.read([.words(words, entity: entity)], ReadBounds(range: range, newestFirst: newest)) { e in
                    got.append(e.id)
                    return true
                }
                // The index finds words by hash and long words by their first 64 bytes: compare those.
                let keys = Set(words.map { TextTokens.hash($0) })
                var expected = all.filter { e in
                    guard range.contains(e.timestamp), entity.map({ e.entities.contains($0) }) ?? true else { return false }
                    let have = Set(TextTokens.words(String(decoding: e.payload, as: UTF8.self)).map { TextTokens.hash($0) })
                    return keys.isSubset(of: have)
                }.map(\.id)
                if newest { expected.reverse() }
                if candidatesMayBeMore {
                    #expect(Set(expected).isSubset(of: Set(got)), "\(what): \(words) \(entity ?? "-")", sourceLocation: sourceLocation)
                } else {
                    #expect(got == expected, "\(what): \(words) \(entity ?? "-") \(newest ? "newest" : "oldest") first: got \(got.count), expected \(expected.count)",
                            sourceLocation: sourceLocation)
                }
            }
        }
    }

    @Test func searchesAnswerLikeAScanThroughSealCompactionAndRestart() throws {
        let dir = TempDir("words")
        var store: EventStore? = try EventStore.open(at: dir.path, options: options(Self.indexing()))
        var n = 0
        for size in [1, 17, 300, 64, 500, 5, 450, 33, 520, 401, 480, 300] {
            try store!.append(Self.records(n..<(n + size)))
            n += size
        }
        #expect(store!.stats.segments > 3)
        check(store!, count: n, what: "in memory")
        try store!.runMaintenance()
        #expect(store!.stats.wordIndexBytes > 0)
        check(store!, count: n, what: "index files written")
        try store!.append(Self.records(n..<(n + 400)))
        n += 400
        while try store!.runMaintenance().didWork {}
        check(store!, count: n, what: "compacted")
        store!.close()
        store = try EventStore.open(at: dir.path, options: options(Self.indexing()))
        #expect(store!.recovery.notices.isEmpty, "\(store!.recovery.notices)")
        check(store!, count: n, what: "reopened")
        store!.close()

        // Another text scheme: every index file is rebuilt from its segment, never read with the other's words.
        store = try EventStore.open(at: dir.path, options: options(Self.indexing(scheme: 8)))
        let rebuilt = store!.recovery.notices.filter { $0.contains("text scheme 8") }
        #expect(!rebuilt.isEmpty && rebuilt.count == store!.recovery.notices.count, "\(store!.recovery.notices)")
        check(store!, count: n, what: "reopened under another scheme")
        store!.close()

        // Without words: a words read names every candidate (the caller checks the text).
        store = try EventStore.open(at: dir.path, options: options(nil))
        check(store!, count: n, what: "opened without text", candidatesMayBeMore: true)
        store!.close()
        store = nil
    }

    @Test func retentionDropsTheWordsWithTheirSegments() throws {
        let dir = TempDir("words-retention")
        let store = try EventStore.open(at: dir.path, options: options(Self.indexing(), maxBytes: 400 << 10))
        var n = 0
        for _ in 0..<40 {
            try store.append(Self.records(n..<(n + 250)))
            n += 250
        }
        while try store.runMaintenance().didWork {}
        var kept = 0
        store.read([.all], ReadBounds()) { _ in kept += 1; return true }
        #expect(kept < n, "retention removed segments")
        check(store, count: kept, what: "after retention")
    }

    @Test func theTokenizerFoldsSplitsAndCaps() {
        #expect(TextTokens.words("Disk FULL: /dev/sda1 (port_50051)") == ["disk", "full", "dev", "sda1", "port", "50051"])
        #expect(TextTokens.words("ÜBERGRÖSSE, Ärger—naïve café") == ["übergrösse", "ärger", "naïve", "café"])
        // Combining marks stay in their word, and folding İ keeps its dot as a mark: tokenizing again is stable.
        #expect(TextTokens.words("cafe\u{301} au lait") == ["cafe\u{301}", "au", "lait"])
        #expect(TextTokens.words("İSTANBUL") == ["i\u{307}stanbul"])
        #expect(TextTokens.words(TextTokens.words("İSTANBUL")[0]) == ["i\u{307}stanbul"])
        #expect(TextTokens.words("  ...  ") == [])
        // Invalid UTF-8 separates words and never traps.
        let bytes: [UInt8] = [0x61, 0xFF, 0x62, 0xC3, 0x63, 0xE2, 0x82, 0x64, 0xF0, 0x9F, 0x98, 0x80, 0x65]
        var out: [String] = []
        var scratch: [UInt8] = []
        bytes.withUnsafeBytes { TextTokens.forEachWord($0, scratch: &scratch) { out.append(String(decoding: $0, as: UTF8.self)) } }
        #expect(out == ["a", "b", "c", "d", "e"])
        let long = String(repeating: "a", count: 64)
        #expect(TextTokens.hash(long + "x") == TextTokens.hash(long + "y"), "words are told apart by their first 64 bytes")
        #expect(TextTokens.hash(long) != TextTokens.hash(String(long.dropLast())))
        let q = TextQuery("disk \"Connection  refused\" \"x\"")!
        #expect(q.words == ["disk", "connection", "refused", "x"])
        #expect(q.phrases == [["connection", "refused"]])
        #expect(TextQuery(" \"-\" ") == nil)
        func matches(_ q: String, _ fields: [String]) -> Bool {
            TextQuery(q)!.matches { body in for f in fields { var s = f; s.withUTF8 { body(UnsafeRawBufferPointer($0)) } } }
        }
        #expect(matches("refused connection", ["connection refused"]))
        #expect(!matches("\"refused connection\"", ["connection refused"]))
        #expect(matches("\"connection refused\"", ["the CONNECTION-refused!"]))
        #expect(!matches("\"connection refused\"", ["connection", "refused"]), "a phrase lives inside one field")
        #expect(matches("connection refused", ["connection", "refused"]), "words may come from different fields")
        #expect(!matches(long + "x", [long + "y"]), "the check compares whole words")
    }
}
