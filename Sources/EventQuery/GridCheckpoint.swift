import EventStore
import GridEvents

/// A grid-state checkpoint: the fold of every event with a timestamp at or before `asOf` that the store held
/// when it was taken (locations below `storedThrough`). The state at any moment T >= asOf is this fold plus the
/// events stored since (`storedThrough` on) with timestamps at or before asOf (late arrivals), plus every event
/// with a timestamp in (asOf, T]. Format (version 1) in docs/FORMAT.md, "Grid-state checkpoint".
public struct GridCheckpoint: Sendable, Equatable {
    /// Every event with a timestamp at or before this (microseconds) among those stored below `storedThrough`.
    public var asOf: Int64
    /// The store's end (`EventStore.logBounds.end`) when taken: events at this location or later came after.
    public var storedThrough: UInt64
    /// The store's last frame sequence when taken; a store whose last sequence is smaller lost frames the
    /// checkpoint counts (a crash under `--sync none`), and the checkpoint is not used.
    public var lastSequence: UInt64
    /// The store's `logBounds.first` when taken (where retention had cut the log).
    public var firstLocation: UInt64
    /// True when every event stored below `storedThrough` has a timestamp at or before `asOf` (a checkpoint of
    /// the live state: asOf is the newest timestamp folded). Then retention deleting events below
    /// `storedThrough` cannot take events a later moment needs; otherwise (a checkpoint taken during a replay in
    /// time order) any deletion after it makes it unusable for time travel.
    public var complete: Bool
    public var fold: GridFold

    public init(asOf: Int64, storedThrough: UInt64, lastSequence: UInt64, firstLocation: UInt64, complete: Bool,
                fold: GridFold) {
        self.asOf = asOf
        self.storedThrough = storedThrough
        self.lastSequence = lastSequence
        self.firstLocation = firstLocation
        self.complete = complete
        self.fold = fold
    }

    /// Whether the state at moments from `asOf` on can be built from this checkpoint and what the store holds,
    /// given the store's `logBounds.first` now.
    public static func usable(storedThrough: UInt64, firstLocation: UInt64, complete: Bool, first: UInt64) -> Bool {
        storedThrough >= first && (complete || firstLocation == first)
    }

    static let magic: [UInt8] = Array("SGGRIDC1".utf8)
    static let version: UInt32 = 1
    static let headerSize = 80
    static let fileExtension = ".gsc"

    /// The file name: `ckpt-<asOf>-<storedThrough>-<firstLocation>-<complete>.gsc`, numbers as 16 hex digits
    /// (asOf with its sign bit flipped, so names sort by time), complete as `1` or `0`. Listing the directory
    /// tells everything needed to pick a checkpoint; the header repeats it and must agree.
    public var fileName: String {
        "ckpt-" + Self.hex(UInt64(bitPattern: asOf) ^ (1 << 63)) + "-" + Self.hex(storedThrough) + "-"
            + Self.hex(firstLocation) + "-" + (complete ? "1" : "0") + Self.fileExtension
    }

    /// What a file name states, or nil for any other name.
    static func parseName(_ name: String) -> (asOf: Int64, storedThrough: UInt64, firstLocation: UInt64, complete: Bool)? {
        guard name.hasPrefix("ckpt-"), name.hasSuffix(fileExtension) else { return nil }
        let parts = name.dropFirst(5).dropLast(fileExtension.count).split(separator: "-", omittingEmptySubsequences: false)
        guard parts.count == 4, parts[0...2].allSatisfy({ $0.count == 16 }), parts[3] == "0" || parts[3] == "1",
            let a = UInt64(parts[0], radix: 16), let l = UInt64(parts[1], radix: 16), let f = UInt64(parts[2], radix: 16)
        else { return nil }
        return (Int64(bitPattern: a ^ (1 << 63)), l, f, parts[3] == "1")
    }

    static func hex(_ v: UInt64) -> String {
        let s = String(v, radix: 16)
        return String(repeating: "0", count: 16 - s.count) + s
    }

    static let nodeStates: [NodeState.State] = [.starting, .running, .restarted, .stopping, .stopped, .crashed, .failed]

    // MARK: Encoding

    /// The file's bytes: header, then the body (agents and nodes, times relative to `asOf`).
    public func encode() -> [UInt8] {
        var strings: [String: Int] = [:]
        var table: [String] = []
        func ref(_ s: String) -> UInt64 {
            if let i = strings[s] { return UInt64(i) }
            strings[s] = table.count
            table.append(s)
            return UInt64(table.count - 1)
        }
        func rel(_ t: Int64) -> Int64 { asOf &- t }
        var b = BinaryWriter(capacity: 64 + fold.agents.count * 64 + fold.nodes.count * 48)
        b.varint(UInt64(fold.agents.count))
        for id in fold.agentOrder {
            let a = fold.agents[id]!
            b.string(id)
            var flags: UInt8 = a.listed ? 1 : 0
            if a.transitionType != nil { flags |= 2 }
            if a.heartbeatAt != nil { flags |= 4 }
            if a.registeredAt != nil { flags |= 8 }
            if a.hostname != nil { flags |= 16 }
            if a.endpoint != nil { flags |= 32 }
            b.u8(flags)
            b.u16(a.newestType.rawValue)
            b.svarint(rel(a.newestAt))
            // The agent's other times relative to its newest (often the same event: one byte).
            if let t = a.transitionType {
                b.u16(t.rawValue)
                b.svarint(a.newestAt &- a.transitionAt)
            }
            if let t = a.heartbeatAt { b.svarint(a.newestAt &- t) }
            if let t = a.registeredAt { b.svarint(a.newestAt &- t) }
            if let h = a.hostname { b.varint(ref(h)) }
            if let e = a.endpoint { b.varint(ref(e)) }
        }
        b.varint(UInt64(fold.nodes.count))
        for id in fold.nodeOrder {
            let n = fold.nodes[id]!
            b.string(id)
            var flags: UInt8 = n.listed ? 1 : 0
            if n.detail != nil { flags |= 2 }
            if n.port != nil { flags |= 4 }
            if n.pid != nil { flags |= 8 }
            if n.succeededAt != nil { flags |= 16 }
            if n.restartAt != .min { flags |= 32 }
            if n.restartIsNewest { flags |= 64 }
            b.u8(flags)
            b.u16(n.lastType.rawValue)
            b.u8(UInt8(Self.nodeStates.firstIndex(of: n.state)!))
            b.svarint(rel(n.lastAt))
            b.varint(ref(n.agentId))
            if let d = n.detail { b.varint(ref(d)) }
            // The node's other times relative to its newest event's (often the same event: one byte).
            if let p = n.port {
                b.svarint(Int64(p))
                b.svarint(n.lastAt &- n.portAt)
            }
            if let p = n.pid {
                b.svarint(Int64(p))
                b.svarint(n.lastAt &- n.pidAt)
            }
            if let t = n.succeededAt { b.svarint(n.lastAt &- t) }
            if n.restartAt != .min {
                b.svarint(Int64(n.restartCount))
                b.svarint(n.lastAt &- n.restartAt)
            }
        }
        // The string table (agent ids of nodes, details, hosts, endpoints) goes last; readers find it from the
        // offset stored first in the body.
        var body = BinaryWriter(capacity: b.bytes.count + table.count * 24 + 16)
        body.varint(UInt64(table.count))
        for s in table { body.string(s) }
        body.raw(b.bytes)
        var h = BinaryWriter(capacity: Self.headerSize + body.bytes.count)
        h.raw(Self.magic)
        h.u32(Self.version)
        h.u32(UInt32(Self.headerSize))
        h.i64(asOf)
        h.u64(storedThrough)
        h.u64(lastSequence)
        h.u64(firstLocation)
        h.u64(complete ? 1 : 0)
        h.u64(UInt64(body.bytes.count))
        h.u64(Hash.bytes(body.bytes))
        h.u64(h.bytes.withUnsafeBytes { Hash.bytes($0) })
        h.raw(body.bytes)
        return h.bytes
    }

    // MARK: Decoding

    /// Why a checkpoint file was not used.
    public struct Problem: Error, Sendable, CustomStringConvertible {
        public var description: String
        init(_ d: String) { description = d }
    }

    /// Decodes and checks a file's bytes: magic, version, header checksum, body length and checksum, and every
    /// value inside. Never traps on hostile input.
    public static func decode(_ bytes: [UInt8]) throws(Problem) -> GridCheckpoint {
        guard bytes.count >= headerSize else { throw Problem("shorter than its header (\(bytes.count) bytes)") }
        guard Array(bytes[0..<8]) == magic else { throw Problem("not a grid-state checkpoint (bad magic)") }
        func u64(_ o: Int) -> UInt64 {
            var v: UInt64 = 0
            for i in (0..<8).reversed() { v = v << 8 | UInt64(bytes[o + i]) }
            return v
        }
        let version = UInt32(truncatingIfNeeded: u64(8))
        let size = UInt32(truncatingIfNeeded: u64(8) >> 32)
        guard bytes.withUnsafeBytes({ Hash.bytes(UnsafeRawBufferPointer(rebasing: $0[0..<72])) }) == u64(72) else {
            throw Problem("header checksum mismatch")
        }
        guard version == Self.version else { throw Problem("unknown version \(version)") }
        guard size == UInt32(headerSize) else { throw Problem("header size \(size), expected \(headerSize)") }
        let asOf = Int64(bitPattern: u64(16))
        let flags = u64(48)
        guard flags <= 1 else { throw Problem("unknown flags \(flags)") }
        let length = u64(56)
        guard length == UInt64(bytes.count - headerSize) else {
            throw Problem("body is \(bytes.count - headerSize) bytes, the header says \(length)")
        }
        let body = bytes[headerSize...]
        guard body.withUnsafeBytes({ Hash.bytes($0) }) == u64(64) else { throw Problem("body checksum mismatch") }
        let fold: GridFold
        do {
            fold = try decodeBody(body, asOf: asOf)
        } catch {
            throw Problem("malformed body: \(error)")
        }
        return GridCheckpoint(asOf: asOf, storedThrough: u64(24), lastSequence: u64(32), firstLocation: u64(40),
                              complete: flags == 1, fold: fold)
    }

    private static func decodeBody(_ bytes: ArraySlice<UInt8>, asOf: Int64) throws(EventError) -> GridFold {
        var r = BinaryReader(bytes)
        func abs(_ rel: Int64) -> Int64 { asOf &- rel }
        func count() throws(EventError) -> Int {
            let n = try r.varint()
            guard n <= UInt64(r.remaining) else { throw EventError("count \(n) exceeds the bytes left") }
            return Int(n)
        }
        func type() throws(EventError) -> EventType {
            let raw = try r.u16()
            guard let t = EventType(rawValue: raw) else { throw EventError("unknown event type \(raw)") }
            return t
        }
        func int() throws(EventError) -> Int {
            let v = try r.svarint()
            guard let i = Int(exactly: v) else { throw EventError("integer out of range") }
            return i
        }
        let tableCount = try count()
        var table: [String] = []
        table.reserveCapacity(tableCount)
        for _ in 0..<tableCount { table.append(try r.string(limit: 1 << 16)) }
        func string() throws(EventError) -> String {
            let i = try r.varint()
            guard i < UInt64(table.count) else { throw EventError("string reference \(i) outside the table") }
            return table[Int(i)]
        }
        var agents: [(String, GridFold.Agent)] = []
        var nodes: [(String, GridFold.Node)] = []
        let agentCount = try count()
        agents.reserveCapacity(agentCount)
        for _ in 0..<agentCount {
            let id = try r.string(limit: 256)
            let flags = try r.u8()
            var a = GridFold.Agent()
            a.listed = flags & 1 != 0
            a.newestType = try type()
            a.newestAt = abs(try r.svarint())
            let newest = a.newestAt
            if flags & 2 != 0 {
                a.transitionType = try type()
                a.transitionAt = newest &- (try r.svarint())
            }
            if flags & 4 != 0 { a.heartbeatAt = newest &- (try r.svarint()) }
            if flags & 8 != 0 { a.registeredAt = newest &- (try r.svarint()) }
            if flags & 16 != 0 { a.hostname = try string() }
            if flags & 32 != 0 { a.endpoint = try string() }
            agents.append((id, a))
        }
        let nodeCount = try count()
        nodes.reserveCapacity(nodeCount)
        for _ in 0..<nodeCount {
            let id = try r.string(limit: 256)
            let flags = try r.u8()
            var n = GridFold.Node()
            n.listed = flags & 1 != 0
            n.lastType = try type()
            let state = Int(try r.u8())
            guard state < nodeStates.count else { throw EventError("unknown node state \(state)") }
            n.state = nodeStates[state]
            n.lastAt = abs(try r.svarint())
            let last = n.lastAt
            n.agentId = try string()
            if flags & 2 != 0 { n.detail = try string() }
            if flags & 4 != 0 {
                n.port = try int()
                n.portAt = last &- (try r.svarint())
            }
            if flags & 8 != 0 {
                n.pid = try int()
                n.pidAt = last &- (try r.svarint())
            }
            if flags & 16 != 0 { n.succeededAt = last &- (try r.svarint()) }
            if flags & 32 != 0 {
                n.restartCount = try int()
                n.restartAt = last &- (try r.svarint())
                // Int64.min stands for "no restart" in the fold.
                guard n.restartAt != .min else { throw EventError("restart time out of range") }
            }
            n.restartIsNewest = flags & 64 != 0
            nodes.append((id, n))
        }
        guard r.isAtEnd else { throw EventError("\(r.remaining) bytes after the last node") }
        guard let fold = GridFold(sortedAgents: agents, sortedNodes: nodes) else {
            throw EventError("agent or node ids out of order")
        }
        return fold
    }
}
