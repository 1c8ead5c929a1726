/// The emitter's in-memory queue: at most `capacity` elements, oldest first, in a ring that never grows. A plain
/// value with no lock and no policy: `EmitterCore` holds it under its lock and decides what a full queue means
/// (`EmitterOptions.whenFull`: move the oldest to the spool, drop the oldest, or wait), and `QueueSignals` says
/// when an append wakes the threads. `Tests/EventEmitterTests/BoundedQueueTests.swift` checks it against an
/// array.
struct BoundedQueue<Element> {
    private var ring: [Element?]
    private var head = 0
    /// Elements held, never more than `capacity`.
    private(set) var count = 0

    /// A queue of at most `capacity` elements (at least 1).
    init(capacity: Int) {
        ring = Array(repeating: nil, count: max(1, capacity))
    }

    var capacity: Int { ring.count }
    var isEmpty: Bool { count == 0 }
    var isFull: Bool {
        @inline(__always) get { count == ring.count }
    }

    /// The oldest element.
    var first: Element? { count > 0 ? ring[head] : nil }

    /// Appends `element` as the newest. The queue must not be full (the caller checks `isFull` first and applies
    /// its policy); appending to a full queue traps. (No path that drops `element`, so it is moved into the ring,
    /// not copied: this is on `emit`'s path.)
    @inline(__always)
    mutating func append(_ element: consuming Element) {
        precondition(count < ring.count, "append to a full BoundedQueue")
        ring[(head + count) % ring.count] = element
        count += 1
    }

    /// Removes and returns the oldest element.
    @discardableResult
    mutating func removeFirst() -> Element? {
        guard count > 0 else { return nil }
        let e = ring[head].take()
        head = (head + 1) % ring.count
        count -= 1
        return e
    }

    /// Removes the oldest elements, at most `max`, while `accept` (called with each before it is taken, in order)
    /// says yes; returns them oldest first.
    mutating func removeFirst(max: Int, while accept: (Element) -> Bool = { _ in true }) -> [Element] {
        var out: [Element] = []
        out.reserveCapacity(Swift.min(max, count))
        // Each element is moved out of the ring (and back if refused), never copied: this runs under the
        // emitter's lock for every event sent.
        while count > 0, out.count < max {
            let e = ring[head].take()!
            guard accept(e) else {
                ring[head] = consume e
                break
            }
            out.append(e)
            head = (head + 1) % ring.count
            count -= 1
        }
        return out
    }

    /// Puts `elements` (oldest first) back in front of the queue, in their order, as the oldest. What does not fit
    /// is left out from the oldest end, so the newest are kept; returns how many were left out.
    mutating func prepend(contentsOf elements: [Element]) -> Int {
        var left = 0
        for e in elements.reversed() {
            if count == ring.count {
                left += 1
                continue
            }
            head = (head - 1 + ring.count) % ring.count
            ring[head] = e
            count += 1
        }
        return left
    }
}

/// When an append to the queue wakes the emitter's threads: pure, so the rule is checked on its own.
enum QueueSignals {
    /// What an append that left `queued` events should set in motion.
    struct AfterAppend: Equatable {
        /// Wake the threads waiting on the core's condition (the worker, the spool writer).
        var wake: Bool
        /// The spool writer starts moving the oldest events to the spool (until the queue is down to half the
        /// high-water mark).
        var startSpilling: Bool
    }

    /// - Parameters:
    ///   - workerWaiting: the worker is waiting for a batch to build up, or idle.
    ///   - spilling: the spool writer is already spilling.
    ///   - spillsAboveHighWater: events go to the spool above the high-water mark (see
    ///     `EmitterCore.spillsAboveHighWater`); asked only at the high-water mark, since `emit` pays for this call.
    @inline(__always)
    static func afterAppend(
        queued: Int, maxBatchEvents: Int, highWaterMark: Int, workerWaiting: Bool, spilling: Bool,
        spillsAboveHighWater: @autoclosure () -> Bool
    ) -> AfterAppend {
        // A waiting worker is woken once a full batch is there (or the queue reached its high-water mark); short
        // of that it sends what it has when its batch delay ends.
        var wake = workerWaiting && (queued >= maxBatchEvents || queued >= highWaterMark)
        let startSpilling = queued >= highWaterMark && !spilling && spillsAboveHighWater()
        if startSpilling { wake = true }
        return AfterAppend(wake: wake, startSpilling: startSpilling)
    }
}
