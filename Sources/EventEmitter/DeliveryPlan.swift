/// The emitter's delivery decisions, with no I/O and no lock: what the worker thread does next, given what it
/// knows (`DeliveryState`). The worker (`EmitterCore+Worker.swift`) takes a `DeliveryState` under the core's lock,
/// asks `next(_:)`, and carries out the step: the sockets, the spool and the waiting stay there, the order of
/// delivery is decided here. `Tests/EventEmitterTests` checks every combination of states against the rules below.
///
/// The rules, in priority order:
/// 1. Closing with nothing in flight, and either no connection, or drained, or nothing left at all: finish (what
///    is left goes to the spool for the next start).
/// 2. Not connected and the daemon said it cannot store: back off (the queue is spilled).
/// 3. Not connected: connect (or spill and back off when that fails).
/// 4. Dropped events not yet reported, the queue below its high-water mark, nothing in flight: report them.
/// 5. Closing: send nothing new; collect the acks of what is in flight, then mark the connection drained.
/// 6. Batches to resend (in flight when a connection was lost) go first, within the window (one batch at a time
///    when cautious, after a rejection).
/// 7. Then spools, own before adopted, replayed with nothing else in flight.
/// 8. Then the queue, within the window, unless its oldest events are on their way to the spool; a small queue
///    with nothing in flight waits `batchDelay` for a batch to build up first.
/// 9. Otherwise collect an ack if anything is in flight, wait for a spill in progress, scan for orphaned spools
///    when due, or idle.
enum DeliveryPlan {
    /// Batches in flight at most (acks come back in order).
    static let windowSize = 4

    /// What the worker knows when it decides; a value, so the decision is a pure function of it.
    struct DeliveryState: Equatable {
        var connected = false
        var closing = false
        /// The worker finished collecting acks while closing.
        var closingDrained = false
        /// The daemon answered that it cannot store events now (disk full, failed store).
        var storeRefused = false
        /// Batches sent and not yet acknowledged.
        var inFlightBatches = 0
        /// Batches to resend before anything else.
        var retryBatches = 0
        /// After a rejection: one batch in flight at a time, so a rejected batch is known.
        var cautious = false
        var ownSpoolPending = false
        var adoptedSpools = 0
        var queued = 0
        var highWaterMark = 1
        var maxBatchEvents = 1
        var batchDelay = false
        /// Queued events on their way to the spool (the oldest): nothing is sent from the queue meanwhile.
        var inTransit = false
        var droppedUnreported = false
        var orphanScanDue = false

        var windowLimit: Int { cautious ? 1 : DeliveryPlan.windowSize }
    }

    /// One step of the worker.
    enum Step: Equatable {
        case finish
        case backOffRefused
        case connect
        case reportDrops
        case markDrained
        case collectAck
        case resend
        case replayOwnSpool
        case replayAdoptedSpool
        /// Wait for more events (`batchDelay`), then decide again whether to send.
        case waitForBatch
        case sendQueue
        case waitForSpill
        case scanOrphans
        case idle
    }

    static func next(_ s: DeliveryState) -> Step {
        let windowEmpty = s.inFlightBatches == 0
        if s.closing, windowEmpty,
            !s.connected || s.closingDrained
                || (s.retryBatches == 0 && !s.ownSpoolPending && s.queued == 0 && s.adoptedSpools == 0)
        {
            return .finish
        }
        if !s.connected { return s.storeRefused ? .backOffRefused : .connect }
        if s.droppedUnreported, s.queued < s.highWaterMark, windowEmpty { return .reportDrops }
        if s.closing { return windowEmpty ? .markDrained : .collectAck }
        if s.retryBatches > 0 { return s.inFlightBatches < s.windowLimit ? .resend : .collectAck }
        if s.ownSpoolPending || s.adoptedSpools > 0 {
            if !windowEmpty { return .collectAck }
            return s.ownSpoolPending ? .replayOwnSpool : .replayAdoptedSpool
        }
        if s.queued > 0, !s.inTransit, s.inFlightBatches < DeliveryPlan.windowSize {
            return s.queued < s.maxBatchEvents && s.batchDelay && windowEmpty ? .waitForBatch : .sendQueue
        }
        if !windowEmpty { return .collectAck }
        if s.inTransit { return .waitForSpill }
        return s.orphanScanDue ? .scanOrphans : .idle
    }
}

/// The batches between the queue and the daemon, and what acks, rejections and lost connections do to them: pure
/// transitions, no I/O. The daemon answers the batches of one connection once each, in order, so an ack always
/// retires the oldest batch in flight.
struct DeliveryWindow<Batch: Collection> {
    /// Sent and not yet acknowledged, oldest first; at most `DeliveryPlan.windowSize` (1 when `cautious`).
    private(set) var inFlight: [Batch] = []
    /// To be sent again before anything else (they were in flight when a connection was lost), oldest first.
    private(set) var retry: [Batch] = []
    /// After a rejection with several batches in flight: one batch at a time until the resends are through, so the
    /// next rejection names its batch.
    private(set) var cautious = false
    /// Events in `inFlight`.
    private(set) var inFlightEvents = 0

    var retryEvents: Int { retry.reduce(0) { $0 + $1.count } }

    /// A batch was sent.
    mutating func sent(_ batch: Batch) {
        inFlight.append(batch)
        inFlightEvents += batch.count
    }

    /// The next batch to resend (call only when `retry` is not empty).
    mutating func takeRetry() -> Batch { retry.removeFirst() }

    /// Everything to resend, leaving none (the emitter is closing: it goes back to the queue and the spool).
    mutating func takeAllRetries() -> [Batch] {
        defer { retry.removeAll() }
        return retry
    }

    /// An ack arrived: the oldest batch in flight is durable. Returns it (nil when nothing was in flight).
    mutating func acknowledged() -> Batch? {
        let first = inFlight.isEmpty ? nil : inFlight.removeFirst()
        if let first { inFlightEvents -= first.count }
        if retry.isEmpty, inFlight.isEmpty { cautious = false }
        return first
    }

    /// The daemon rejected a batch. With one batch in flight it is that one: returned, to be dropped and counted.
    /// With several it is unknown which: nil, and from now on one batch at a time (the connection is then closed,
    /// so `lost()` follows).
    mutating func rejected() -> Batch? {
        guard inFlight.count == 1 else {
            cautious = true
            return nil
        }
        let first = inFlight.removeFirst()
        inFlightEvents -= first.count
        return first
    }

    /// The connection was lost: what was in flight is resent first, in its order, before older retries' successors.
    /// Returns how many events were in flight.
    mutating func lost() -> Int {
        let n = inFlightEvents
        retry = inFlight + retry
        inFlight.removeAll()
        inFlightEvents = 0
        return n
    }
}
