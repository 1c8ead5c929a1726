import CSQLite
import EventStore
import Foundation
import GridEvents

/// SQLite set up as a user would for the same work: WAL, synchronous=NORMAL (or FULL for per-batch durability),
/// batched transactions, indexes on (entity, time) and (type, time).
final class SQLiteBaseline {
    let path: String
    var db: OpaquePointer?

    init(path: String, synchronous: String = "NORMAL") throws {
        self.path = path
        for suffix in ["", "-wal", "-shm"] { try? FileManager.default.removeItem(atPath: path + suffix) }
        guard sqlite3_open(path, &db) == SQLITE_OK else { throw BenchError("sqlite3_open \(path)") }
        try exec("PRAGMA journal_mode=WAL")
        try exec("PRAGMA synchronous=\(synchronous)")
        try exec("""
            CREATE TABLE events (id TEXT PRIMARY KEY, type INTEGER NOT NULL, ts INTEGER NOT NULL, payload BLOB NOT NULL);
            CREATE TABLE mentions (entity TEXT NOT NULL, event_id TEXT NOT NULL, ts INTEGER NOT NULL);
            CREATE INDEX mentions_entity_time ON mentions(entity, ts);
            CREATE INDEX events_type_time ON events(type, ts);
            """)
    }

    /// Opens an existing database (for open-time measurements).
    init(existing path: String) throws {
        self.path = path
        guard sqlite3_open(path, &db) == SQLITE_OK else { throw BenchError("sqlite3_open \(path)") }
    }

    deinit { sqlite3_close(db) }

    func exec(_ sql: String) throws {
        var err: UnsafeMutablePointer<CChar>?
        guard sqlite3_exec(db, sql, nil, nil, &err) == SQLITE_OK else {
            let message = err.map { String(cString: $0) } ?? "?"
            sqlite3_free(err)
            throw BenchError("sqlite: \(message)")
        }
    }

    private static let transient = unsafeBitCast(-1, to: sqlite3_destructor_type.self)

    /// Inserts a batch in one transaction (one commit).
    func insert(_ events: [GridEvent]) throws {
        try exec("BEGIN")
        var e1: OpaquePointer?
        var e2: OpaquePointer?
        sqlite3_prepare_v2(db, "INSERT OR IGNORE INTO events VALUES (?, ?, ?, ?)", -1, &e1, nil)
        sqlite3_prepare_v2(db, "INSERT INTO mentions VALUES (?, ?, ?)", -1, &e2, nil)
        defer {
            sqlite3_finalize(e1)
            sqlite3_finalize(e2)
        }
        for e in events {
            let payload = BinaryCodec.encodeFields(e.kind)
            sqlite3_bind_text(e1, 1, e.id, -1, Self.transient)
            sqlite3_bind_int(e1, 2, Int32(e.type.rawValue))
            sqlite3_bind_int64(e1, 3, e.timestamp)
            _ = payload.withUnsafeBytes { sqlite3_bind_blob(e1, 4, $0.baseAddress, Int32($0.count), Self.transient) }
            guard sqlite3_step(e1) == SQLITE_DONE else { throw BenchError("insert failed") }
            sqlite3_reset(e1)
            for entity in e.entities {
                sqlite3_bind_text(e2, 1, entity, -1, Self.transient)
                sqlite3_bind_text(e2, 2, e.id, -1, Self.transient)
                sqlite3_bind_int64(e2, 3, e.timestamp)
                guard sqlite3_step(e2) == SQLITE_DONE else { throw BenchError("insert failed") }
                sqlite3_reset(e2)
            }
        }
        try exec("COMMIT")
    }

    /// The newest 50 events of an entity, with their payloads.
    func lastFifty(entity: String) -> Int {
        var stmt: OpaquePointer?
        sqlite3_prepare_v2(db, "SELECT e.id, e.type, e.ts, e.payload FROM mentions m JOIN events e ON e.id = m.event_id WHERE m.entity = ? ORDER BY m.ts DESC LIMIT 50", -1, &stmt, nil)
        defer { sqlite3_finalize(stmt) }
        sqlite3_bind_text(stmt, 1, entity, -1, Self.transient)
        var n = 0
        while sqlite3_step(stmt) == SQLITE_ROW { n += 1 }
        return n
    }

    func count(type: UInt16, from: Int64, to: Int64) -> Int {
        var stmt: OpaquePointer?
        sqlite3_prepare_v2(db, "SELECT count(*) FROM events WHERE type = ? AND ts >= ? AND ts < ?", -1, &stmt, nil)
        defer { sqlite3_finalize(stmt) }
        sqlite3_bind_int(stmt, 1, Int32(type))
        sqlite3_bind_int64(stmt, 2, from)
        sqlite3_bind_int64(stmt, 3, to)
        return sqlite3_step(stmt) == SQLITE_ROW ? Int(sqlite3_column_int64(stmt, 0)) : -1
    }

    func lookup(id: String) -> Bool {
        var stmt: OpaquePointer?
        sqlite3_prepare_v2(db, "SELECT type, ts, payload FROM events WHERE id = ?", -1, &stmt, nil)
        defer { sqlite3_finalize(stmt) }
        sqlite3_bind_text(stmt, 1, id, -1, Self.transient)
        return sqlite3_step(stmt) == SQLITE_ROW
    }

    func checkpoint() { sqlite3_wal_checkpoint_v2(db, nil, SQLITE_CHECKPOINT_TRUNCATE, nil, nil) }

    var bytesOnDisk: Int {
        ["", "-wal"].reduce(0) { $0 + ((try? FileManager.default.attributesOfItem(atPath: path + $1)[.size] as? Int) ?? 0) }
    }
}

struct BenchError: Error, CustomStringConvertible {
    var description: String
    init(_ d: String) { description = d }
}
