import CSQLite
import EventQuery
import EventStore
import Foundation
import GridEvents
import GridFixtures

/// SQLite FTS5 as a user would set it up for the same searches: the events in a table whose rowid follows time
/// (so a time window is a rowid range, found through an index on the time: FTS5's best case), the text of their string fields (`GridText`, the words
/// the store indexes) in an FTS5 table with the default tokenizer (unicode61) and `detail=full` (phrases work),
/// contentless (`content=''`) in a database file of its own so its size is the word index's.
final class FTS5Baseline {
    var events: OpaquePointer?
    var fts: OpaquePointer?
    let ftsPath: String

    init(dir: String) throws {
        ftsPath = dir + "/fts.sqlite"
        for f in [dir + "/events.sqlite", ftsPath] { try? FileManager.default.removeItem(atPath: f) }
        guard sqlite3_open(dir + "/events.sqlite", &events) == SQLITE_OK, sqlite3_open(ftsPath, &fts) == SQLITE_OK else {
            throw BenchError("sqlite3_open")
        }
        try Self.exec(events, "PRAGMA journal_mode=WAL; PRAGMA synchronous=OFF; CREATE TABLE ev (rowid INTEGER PRIMARY KEY, id TEXT NOT NULL, type INTEGER NOT NULL, ts INTEGER NOT NULL, payload BLOB NOT NULL); CREATE INDEX ev_ts ON ev(ts)")
        try Self.exec(fts, "PRAGMA journal_mode=WAL; PRAGMA synchronous=OFF; CREATE VIRTUAL TABLE words USING fts5(body, content='')")
        try Self.exec(events, "ATTACH DATABASE '\(ftsPath)' AS f")
    }

    deinit {
        sqlite3_close(events)
        sqlite3_close(fts)
    }

    static func exec(_ db: OpaquePointer?, _ sql: String) throws {
        var err: UnsafeMutablePointer<CChar>?
        guard sqlite3_exec(db, sql, nil, nil, &err) == SQLITE_OK else {
            let message = err.map { String(cString: $0) } ?? "?"
            sqlite3_free(err)
            throw BenchError("sqlite: \(message)")
        }
    }

    private static let transient = unsafeBitCast(-1, to: sqlite3_destructor_type.self)

    /// Inserts events sorted by time (rowids follow time), one transaction per batch. Returns the seconds spent on
    /// the FTS5 table alone.
    func insert(_ batches: [[GridEvent]], firstRow: Int) throws -> Double {
        var row = firstRow
        var ftsSeconds = 0.0
        for batch in batches {
            try Self.exec(events, "BEGIN")
            try Self.exec(fts, "BEGIN")
            var e1: OpaquePointer?
            var e2: OpaquePointer?
            sqlite3_prepare_v2(events, "INSERT INTO ev VALUES (?, ?, ?, ?, ?)", -1, &e1, nil)
            sqlite3_prepare_v2(fts, "INSERT INTO words (rowid, body) VALUES (?, ?)", -1, &e2, nil)
            var texts: [(Int, String)] = []
            for e in batch {
                row += 1
                let payload = BinaryCodec.encodeFields(e.kind)
                sqlite3_bind_int64(e1, 1, Int64(row))
                sqlite3_bind_text(e1, 2, e.id, -1, Self.transient)
                sqlite3_bind_int(e1, 3, Int32(e.type.rawValue))
                sqlite3_bind_int64(e1, 4, e.timestamp)
                _ = payload.withUnsafeBytes { sqlite3_bind_blob(e1, 5, $0.baseAddress, Int32($0.count), Self.transient) }
                guard sqlite3_step(e1) == SQLITE_DONE else { throw BenchError("insert failed") }
                sqlite3_reset(e1)
                // One value per field, separated so a phrase does not span two fields.
                texts.append((row, GridText.strings(of: e).joined(separator: " \u{1F} ")))
            }
            let t0 = monotonicNanos()
            for (r, text) in texts {
                sqlite3_bind_int64(e2, 1, Int64(r))
                sqlite3_bind_text(e2, 2, text, -1, Self.transient)
                guard sqlite3_step(e2) == SQLITE_DONE else { throw BenchError("fts insert failed") }
                sqlite3_reset(e2)
            }
            try Self.exec(fts, "COMMIT")
            ftsSeconds += Double(monotonicNanos() - t0) / 1e9
            sqlite3_finalize(e1)
            sqlite3_finalize(e2)
            try Self.exec(events, "COMMIT")
        }
        return ftsSeconds
    }

    /// The newest 50 events in the window whose text matches `match` (FTS5 syntax), with their payloads.
    func search(_ match: String, from: Int64, to: Int64) -> Int {
        var stmt: OpaquePointer?
        sqlite3_prepare_v2(events, """
            SELECT e.id, e.type, e.ts, e.payload FROM f.words w JOIN ev e ON e.rowid = w.rowid
            WHERE w.words MATCH ?1 AND w.rowid >= (SELECT rowid FROM ev WHERE ts >= ?2 ORDER BY ts, rowid LIMIT 1)
              AND w.rowid <= (SELECT rowid FROM ev WHERE ts < ?3 ORDER BY ts DESC, rowid DESC LIMIT 1)
            ORDER BY w.rowid DESC LIMIT 50
            """, -1, &stmt, nil)
        defer { sqlite3_finalize(stmt) }
        sqlite3_bind_text(stmt, 1, match, -1, Self.transient)
        sqlite3_bind_int64(stmt, 2, from)
        sqlite3_bind_int64(stmt, 3, to)
        var n = 0
        while sqlite3_step(stmt) == SQLITE_ROW {
            _ = sqlite3_column_blob(stmt, 3)
            n += 1
        }
        return n
    }

    func checkpoint() {
        try? Self.exec(events, "PRAGMA wal_checkpoint(TRUNCATE)")
        try? Self.exec(fts, "PRAGMA wal_checkpoint(TRUNCATE)")
    }

    var ftsBytes: Int {
        ((try? FileManager.default.attributesOfItem(atPath: ftsPath)[.size] as? Int) ?? nil) ?? 0
    }
}

extension GridBench {
    /// Word search (issue 20) on `count` sample events over 7 days, against SQLite FTS5 on the same events: a
    /// two-word search over one day (the newest 50 matches with their payloads), p50; the bytes the word index adds
    /// per event; the append rate with words indexed against without.
    func textSearchRows(events count: Int, into rows: inout [Row]) throws {
        let day: Int64 = 86_400_000_000
        let start: Int64 = 1_795_392_000_000_000
        print("text search: generating \(count) events over 7 days...")
        var grid = SampleGrid(seed: 7, start: start, span: 7 * day)
        let all = grid.events(count)
        let batches = stride(from: 0, to: all.count, by: 1000).map { Array(all[$0..<min($0 + 1000, all.count)]) }
        let prepared = batches.map { $0.flatMap { $0.records() } }

        // Appends, with and without the word index.
        var withWords: [Double] = []
        var without: [Double] = []
        for r in 0..<runs {
            for words in [true, false] {
                let dir = work + "/text-append-\(r)-\(words)"
                var o = StoreOptions(durability: .none)
                o.backgroundMaintenance = false
                if words { o = GridText.options(o) }
                let store = try EventStore.open(at: dir, options: o)
                let t0 = monotonicNanos()
                for b in prepared { try store.append(b) }
                let rate = Double(all.count) / (Double(monotonicNanos() - t0) / 1e9)
                if words { withWords.append(rate) } else { without.append(rate) }
                store.close()
                try? FileManager.default.removeItem(atPath: dir)
            }
        }
        rows.append(Row(name: "text: append in process, sync none, with the word index", unit: "events/s",
                        ours: withWords, sqlite: nil, higherIsBetter: true))
        rows.append(Row(name: "text: append in process, sync none, without the word index", unit: "events/s", ours: without, sqlite: nil, higherIsBetter: true))

        // The searched store and FTS5.
        let dir = work + "/text-store"
        var o = GridText.options(StoreOptions(durability: .none))
        o.backgroundMaintenance = false
        let store = try EventStore.open(at: dir, options: o)
        for b in prepared { try store.append(b) }
        let engine = QueryEngine(store: store)
        print("text search: loading SQLite FTS5...")
        try FileManager.default.createDirectory(atPath: work + "/fts", withIntermediateDirectories: true)
        let fts = try FTS5Baseline(dir: work + "/fts")
        let sorted = all.sorted { $0.timestamp < $1.timestamp }
        let t0 = monotonicNanos()
        let ftsSeconds = try fts.insert(stride(from: 0, to: sorted.count, by: 1000).map { Array(sorted[$0..<min($0 + 1000, sorted.count)]) }, firstRow: 0)
        let ftsAll = Double(monotonicNanos() - t0) / 1e9
        fts.checkpoint()
        print(String(format: "  FTS5: %.1f s for events + words, %.1f s of it the FTS5 table", ftsAll, ftsSeconds))
        rows.append(Row(name: "text: append with the word index vs SQLite events table + FTS5 (synchronous=OFF, 1,000 per transaction)", unit: "events/s",
                        ours: [Double(withWords.sorted()[withWords.count / 2])], sqlite: [Double(all.count) / ftsAll], higherIsBetter: true))

        // Two-word searches over one day: rare and common words.
        let searches = ["disk full", "permission denied", "not writable", "timed out", "agent 042", "node 1234", "memory limit", "nodes data"]
        var rng = SystemRandomNumberGenerator()
        var matched = (ours: 0, fts: 0, n: 0)
        func day0() -> Int64 { start + Int64.random(in: 0..<(6 * day), using: &rng) }
        func latency(_ body: (String, Int64) -> Int) -> [Double] {
            (0..<runs).map { _ in
                var samples: [UInt64] = []
                for i in 0..<400 {
                    let from = day0()
                    let text = searches[i % searches.count]
                    let t = monotonicNanos()
                    _ = body(text, from)
                    samples.append(monotonicNanos() - t)
                }
                samples.sort()
                return Double(samples[samples.count / 2]) / 1000
            }
        }
        func ours(_ text: String, _ from: Int64) -> Int {
            let page = try? engine.find(EventQuery(since: from, until: from + day, limit: 50, text: text))
            return page?.events.count ?? 0
        }
        func theirs(_ text: String, _ from: Int64) -> Int { fts.search(text, from: from, to: from + day) }
        // Both find the same number of events (a check on the benchmark, not a measurement).
        for text in searches {
            let from = day0()
            let a = ours(text, from)
            let b = theirs(text, from)
            matched.ours += a
            matched.fts += b
            matched.n += 1
            if a != b { print("  note: \"\(text)\" from \(TimeText.format(from)): ours \(a), FTS5 \(b)") }
        }
        print("  check: \(matched.ours) events found by ours, \(matched.fts) by FTS5 over \(matched.n) searches")
        rows.append(Row(name: "text: two-word search over one day, newest 50 with payloads (p50), uncompacted", unit: "µs",
                        ours: latency(ours), sqlite: latency(theirs), higherIsBetter: false))
        print("text search: compacting...")
        while try store.runMaintenance().didWork {}
        let st = store.stats
        guard st.compactedEvents > 0 else {
            print("(text rows after compaction skipped: \(all.count) events fill no segment; more events seal segments)")
            store.close()
            return
        }
        rows.append(Row(name: "text: two-word search over one day, newest 50 with payloads (p50), compacted", unit: "µs",
                        ours: latency(ours), sqlite: latency(theirs), higherIsBetter: false))
        rows.append(Row(name: "text: word index bytes per event after compaction (SQLite: contentless FTS5 file)", unit: "bytes",
                        ours: [Double(st.wordIndexBytes) / Double(max(1, st.compactedEvents))],
                        sqlite: [Double(fts.ftsBytes) / Double(all.count)], higherIsBetter: false))
        rows.append(Row(name: "text: whole index file bytes per event after compaction (words included)", unit: "bytes",
                        ours: [Double(st.indexBytes) / Double(max(1, st.compactedEvents))], sqlite: nil, higherIsBetter: false))
        store.close()
    }
}
