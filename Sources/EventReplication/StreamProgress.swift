import Foundation

/// Which stream sequences the aggregator has processed (stored durably, or terminated), and whether the next one
/// has been missing too long: every sequence up to `floor`, plus those above it processed out of order. A pure
/// state machine (time is passed in), used by the aggregator's pull loop and tested alone.
///
/// The consumer delivers the stream in order, and a message delivered and not acknowledged comes again after the
/// ack wait; so `floor + 1` missing while later sequences are delivered (a hole) ends within about the ack wait. A
/// hole open much longer means the server will not deliver it: seen with nats-server 2.9 after every server of the
/// cluster restarted, its consumer no longer redelivering what a killed aggregator had received, or delivering
/// nothing at all. The aggregator then reads the stream again from `floor + 1` with a new consumer (the store keeps
/// each event once, by id). A message that is delivered and held back (the per-host order, `FrameOrder`) is not
/// missing: its own patience applies.
public struct StreamProgress: Sendable, Equatable {
    /// Every sequence up to here is processed (or gone from the stream).
    public private(set) var floor: UInt64
    /// Processed sequences above `floor + 1`.
    private var above: Set<UInt64> = []
    /// The highest sequence delivered.
    private var highest: UInt64 = 0
    /// Since when `floor + 1` has not been delivered while a later sequence was.
    public private(set) var holeSince: Date?

    public init(floor: UInt64 = 0) { self.floor = floor }

    /// Processed sequences held above the floor.
    public var outOfOrder: Int { above.count }

    /// Records a delivery (before it is known whether the message is processed or held back).
    public mutating func delivered(_ sequence: UInt64, now: Date) {
        guard sequence > floor else { return }
        highest = max(highest, sequence)
        if sequence == floor + 1 {
            holeSince = nil
        } else if holeSince == nil {
            holeSince = now
        }
    }

    /// Records a processed sequence (delivered, then stored or terminated).
    public mutating func processed(_ sequence: UInt64, now: Date) {
        guard sequence > floor else { return }
        highest = max(highest, sequence)
        if sequence == floor + 1 {
            floor = sequence
            while above.remove(floor + 1) != nil { floor += 1 }
            holeSince = highest > floor + 1 ? now : nil
        } else {
            above.insert(sequence)
            if holeSince == nil { holeSince = now }
        }
    }

    /// The stream's first sequence is `first`: what is below it left the stream (its limits) and cannot come.
    public mutating func streamStarts(at first: UInt64, now: Date) {
        guard first > floor + 1 else { return }
        floor = first - 1
        above = above.filter { $0 > floor }
        while above.remove(floor + 1) != nil { floor += 1 }
        holeSince = highest > floor + 1 ? now : nil
    }

    /// Reading starts again at `floor + 1` (a new consumer): what was seen above it will come again.
    public mutating func restart(floor: UInt64) {
        self.floor = floor
        above = []
        highest = floor
        holeSince = nil
    }

    /// True when `floor + 1` has not been delivered for longer than `limit` while later sequences were.
    public func holeOpen(longerThan limit: TimeInterval, now: Date) -> Bool {
        guard let since = holeSince else { return false }
        return now.timeIntervalSince(since) > limit
    }
}
