import Foundation

/// Per-host frame order on the aggregator: which message may be stored now, which must wait for an earlier frame
/// of its host, and when waiting has gone on long enough (a frame that will never come). A pure state machine
/// (time is passed in), used by the aggregator's pull loop and tested alone.
///
/// A host's position is the last frame stored here whole (and the next part of a frame being stored in parts).
/// Positions survive a restart (`PositionsFile`), so a message after a gap is held back after a restart too, until
/// the frames a killed aggregator had received without acknowledging come back (after the consumer's ack wait).
public struct FrameOrder: Sendable {
    /// Where a host's frames stand: the last frame applied whole, and the frame whose parts are being applied.
    public struct Position: Sendable, Equatable {
        public var applied: UInt64
        /// A frame stored in parts: its sequence, and the next part expected.
        public var partial: Partial?

        public struct Partial: Sendable, Equatable {
            public var sequence: UInt64
            public var nextPart: Int
            public init(sequence: UInt64, nextPart: Int) {
                self.sequence = sequence
                self.nextPart = nextPart
            }
        }

        public init(applied: UInt64, partial: Partial? = nil) {
            self.applied = applied
            self.partial = partial
        }
    }

    public enum Admission: Equatable, Sendable { case apply, hold, gapAccepted(from: UInt64) }

    private struct Host {
        var position: Position
        var holdingSince: Date?
    }

    private var hosts: [String: Host] = [:]
    /// How long a gap in a host's frames may hold later ones back before they are stored anyway.
    public let patience: TimeInterval
    /// For a host without a position: true, its chain starts before frame 1 (a message that is not the host's
    /// first frame waits, like after a gap); false, the host's first message starts it. True when frames may still
    /// come back that an earlier run received and never acknowledged.
    public var strictNewHosts: Bool

    public init(patience: TimeInterval, positions: [String: Position] = [:], strictNewHosts: Bool = false) {
        self.patience = patience
        self.strictNewHosts = strictNewHosts
        for (h, p) in positions { hosts[h] = Host(position: p) }
    }

    /// Every host's position (what `PositionsFile` saves).
    public var positions: [String: Position] { hosts.mapValues(\.position) }

    public func position(_ host: String) -> Position? { hosts[host]?.position }

    /// Puts a host back where it was (its last durable position; nil: as if never seen), after a store failure
    /// undid what was admitted.
    public mutating func reset(_ host: String, to position: Position?) {
        hosts[host] = position.map { Host(position: $0) }
    }

    /// Whether `m` may be stored now; when so, `m` counts as applied (the caller stores what it admits before it
    /// admits more, and on a store failure resets the host).
    public mutating func admit(_ m: ReplicationMessage, now: Date) -> Admission {
        let last = m.part == m.parts - 1
        guard var h = hosts[m.hostId] ?? (strictNewHosts ? Host(position: Position(applied: 0)) : nil) else {
            // First message of this host, and nothing can come back from before it: it starts the chain.
            hosts[m.hostId] = Host(position: Position(
                applied: last ? m.sequence : (m.sequence > 0 ? m.previous : 0),
                partial: last ? nil : Position.Partial(sequence: m.sequence, nextPart: m.part + 1)))
            return .apply
        }
        defer { hosts[m.hostId] = h }
        if m.sequence <= h.position.applied { return .apply }  // a redelivery or a resend: the store dedups by id
        if let p = h.position.partial, p.sequence == m.sequence {
            if m.part < p.nextPart { return .apply }
            if m.part > p.nextPart { return Self.hold(&h, now) }
            Self.advance(&h, m)
            return .apply
        }
        if m.previous <= h.position.applied && h.position.partial == nil && m.part == 0 {
            Self.advance(&h, m)
            return .apply
        }
        if let since = h.holdingSince, now.timeIntervalSince(since) > patience, m.part == 0 {
            let from = h.position.applied
            h.position.partial = nil
            Self.advance(&h, m)
            return .gapAccepted(from: from)
        }
        return Self.hold(&h, now)
    }

    private static func hold(_ h: inout Host, _ now: Date) -> Admission {
        if h.holdingSince == nil { h.holdingSince = now }
        return .hold
    }

    private static func advance(_ h: inout Host, _ m: ReplicationMessage) {
        h.holdingSince = nil
        if m.part == m.parts - 1 {
            h.position.applied = m.sequence
            h.position.partial = nil
        } else {
            h.position.partial = Position.Partial(sequence: m.sequence, nextPart: m.part + 1)
        }
    }
}
