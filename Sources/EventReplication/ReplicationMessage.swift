import EventStore
import GridEvents

/// One replication message of one host, as published to `<subject prefix>.<host id>`. Binary, little-endian,
/// checksummed (docs/FORMAT.md, "Replication message").
///
/// One message carries one frame, several consecutive frames (while catching up), or one part of a frame larger
/// than the message limit.
///
/// Header, 48 bytes: magic `SGRP` (4), version u8 = 1, flags u8 = 0, host id length u16, first frame sequence u64,
/// last frame sequence u64, previous frame sequence u64 (0: none known), event count u32, part u16, part count u16,
/// body length u32, checksum u32 = low 32 bits of XXH3-64(body, seed: XXH3-64(header bytes 0..<44)). Body: host id (UTF-8), then per event: length u32 and the event's binary form (type u16,
/// timestamp zigzag varint, id, fields length varint, fields), as on the producer socket.
public struct ReplicationMessage: Sendable, Equatable {
    public static let magic: [UInt8] = Array("SGRP".utf8)
    public static let version: UInt8 = 1
    public static let headerSize = 48

    public var hostId: String
    /// The first frame's sequence in the origin host's store.
    public var firstSequence: UInt64
    /// The last frame's sequence (the same as the first for one frame).
    public var sequence: UInt64
    /// The sequence of the frame shipped before it (0 when none), so a receiver can tell a gap from a reorder.
    public var previous: UInt64
    public var part: Int
    public var parts: Int
    /// Each event in its binary form.
    public var events: [[UInt8]]

    public init(hostId: String, firstSequence: UInt64? = nil, sequence: UInt64, previous: UInt64, part: Int = 0, parts: Int = 1,
                events: [[UInt8]]) {
        self.hostId = hostId
        self.firstSequence = firstSequence ?? sequence
        self.sequence = sequence
        self.previous = previous
        self.part = part
        self.parts = parts
        self.events = events
    }

    /// The `Nats-Msg-Id`: host id, frame sequence(s) and part: the same content always has the same id (a resend
    /// is a duplicate the stream drops), different content never does (frames grouped differently after a rewind
    /// get another id, so no frame is dropped as a duplicate of a group it was not in).
    public var messageId: String {
        if firstSequence != sequence { return "\(hostId)-\(firstSequence)-\(sequence)" }
        return parts == 1 ? "\(hostId)-\(sequence)" : "\(hostId)-\(sequence).\(part)"
    }

    public func encoded() -> [UInt8] {
        var body = BinaryWriter(capacity: 64 + events.reduce(0) { $0 + $1.count + 4 })
        body.raw(Array(hostId.utf8))
        for e in events {
            body.u32(UInt32(e.count))
            body.raw(e)
        }
        var h = BinaryWriter(capacity: Self.headerSize + body.bytes.count)
        h.raw(Self.magic)
        h.u8(Self.version)
        h.u8(0)
        h.u16(UInt16(hostId.utf8.count))
        h.u64(firstSequence)
        h.u64(sequence)
        h.u64(previous)
        h.u32(UInt32(events.count))
        h.u16(UInt16(part))
        h.u16(UInt16(parts))
        h.u32(UInt32(body.bytes.count))
        let sum = Self.checksum(header: h.bytes, body: body.bytes)
        h.u32(sum)
        h.raw(body.bytes)
        return h.bytes
    }

    static func checksum(header: [UInt8], body: [UInt8]) -> UInt32 {
        let seed = header.withUnsafeBytes { Hash.bytes(UnsafeRawBufferPointer(rebasing: $0[0..<44])) }
        return UInt32(truncatingIfNeeded: body.withUnsafeBytes { Hash.bytes($0, seed: seed) })
    }

    /// Decodes and checks a message.
    /// - Throws: `ReplicationMessageError` saying what is wrong (magic, version, checksum, lengths).
    public static func decode(_ bytes: [UInt8]) throws(ReplicationMessageError) -> ReplicationMessage {
        guard bytes.count >= headerSize else { throw .init("message of \(bytes.count) bytes is shorter than the header") }
        guard Array(bytes[0..<4]) == magic else { throw .init("bad magic (not a grid-events replication message)") }
        guard bytes[4] == version else { throw .init("unsupported version \(bytes[4])") }
        func le(_ at: Int, _ n: Int) -> UInt64 {
            var v: UInt64 = 0
            for k in 0..<n { v |= UInt64(bytes[at + k]) << (8 * UInt64(k)) }
            return v
        }
        let hostLength = Int(le(6, 2))
        let first = le(8, 8)
        let sequence = le(16, 8)
        let previous = le(24, 8)
        let count = Int(le(32, 4))
        let part = Int(le(36, 2))
        let parts = Int(le(38, 2))
        let bodyLength = Int(le(40, 4))
        let sum = UInt32(le(44, 4))
        guard bodyLength == bytes.count - headerSize else {
            throw .init("body length \(bodyLength) does not match the \(bytes.count - headerSize) bytes received")
        }
        let body = Array(bytes[headerSize...])
        guard checksum(header: Array(bytes[0..<44]), body: body) == sum else { throw .init("checksum mismatch") }
        guard hostLength >= 1, hostLength <= 128, hostLength <= body.count else { throw .init("bad host id length") }
        guard parts >= 1, part < parts else { throw .init("bad part \(part) of \(parts)") }
        guard first <= sequence, parts == 1 || first == sequence, previous < first || first == 0 else {
            throw .init("bad frame range \(first)...\(sequence) after \(previous)")
        }
        let host = String(decoding: body[0..<hostLength], as: UTF8.self)
        var events: [[UInt8]] = []
        events.reserveCapacity(min(count, 1 << 16))
        var at = hostLength
        for _ in 0..<count {
            guard at + 4 <= body.count else { throw .init("truncated: event \(events.count) of \(count)") }
            var n = 0
            for k in 0..<4 { n |= Int(body[at + k]) << (8 * k) }
            at += 4
            guard n <= body.count - at else { throw .init("truncated: event \(events.count) of \(count)") }
            events.append(Array(body[at..<(at + n)]))
            at += n
        }
        guard at == body.count else { throw .init("\(body.count - at) bytes after the last event") }
        return ReplicationMessage(
            hostId: host, firstSequence: first, sequence: sequence, previous: previous, part: part, parts: parts, events: events)
    }

    /// The binary form of a stored event, built from its stored fields without decoding them.
    public static func eventBytes(_ e: StoredEvent) -> [UInt8] {
        var w = BinaryWriter(capacity: 32 + e.id.utf8.count + e.payload.count)
        w.u16(e.typeCode)
        w.svarint(e.timestamp)
        w.string(e.id)
        w.varint(UInt64(e.payload.count))
        w.raw(e.payload)
        return w.bytes
    }

    /// What the replicator sends for consecutive frames: units in order, each one message of one or more whole
    /// frames (at most `maxBytes`), or the parts of one frame larger than that. A unit is acknowledged when all its
    /// messages are; `last` is the frame sequence the cursor may then advance to.
    public static func pack(hostId: String, frames: [CommittedFrame], previous: UInt64, maxBytes: Int)
        -> [(messages: [ReplicationMessage], last: UInt64, events: Int)]
    {
        var units: [(messages: [ReplicationMessage], last: UInt64, events: Int)] = []
        var prev = previous
        var group: [CommittedFrame] = []
        var size = headerSize + hostId.utf8.count
        func flush() {
            guard let first = group.first, let last = group.last else { return }
            let events = group.flatMap { $0.events.map(eventBytes) }
            units.append(([ReplicationMessage(hostId: hostId, firstSequence: first.sequence, sequence: last.sequence, previous: prev, events: events)],
                          last.sequence, events.count))
            prev = last.sequence
            group = []
            size = headerSize + hostId.utf8.count
        }
        for f in frames {
            let bytes = f.events.reduce(0) { $0 + 4 + 24 + $1.id.utf8.count + $1.payload.count }
            if headerSize + hostId.utf8.count + bytes > maxBytes {
                flush()
                units.append((messages(hostId: hostId, frame: f, previous: prev, maxBytes: maxBytes), f.sequence, f.events.count))
                prev = f.sequence
                continue
            }
            if size + bytes > maxBytes { flush() }
            group.append(f)
            size += bytes
        }
        flush()
        return units
    }

    /// Splits a frame's events into messages of at most `maxBytes` each (one event per message at least).
    public static func messages(hostId: String, frame: CommittedFrame, previous: UInt64, maxBytes: Int) -> [ReplicationMessage] {
        let events = frame.events.map(eventBytes)
        var groups: [[[UInt8]]] = [[]]
        var size = headerSize + hostId.utf8.count
        for e in events {
            if !groups[groups.count - 1].isEmpty && size + e.count + 4 > maxBytes {
                groups.append([])
                size = headerSize + hostId.utf8.count
            }
            groups[groups.count - 1].append(e)
            size += e.count + 4
        }
        return groups.enumerated().map {
            ReplicationMessage(hostId: hostId, sequence: frame.sequence, previous: previous, part: $0.offset, parts: groups.count, events: $0.element)
        }
    }
}

public struct ReplicationMessageError: Error, Sendable, CustomStringConvertible {
    public var message: String
    init(_ m: String) { message = m }
    public var description: String { message }
}
