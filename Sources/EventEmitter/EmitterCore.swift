@_spi(Testing) import EmitterSpool
import EventWire
import GridBase
import GridEvents
#if canImport(Glibc)
import Glibc
#endif

/// An event waiting in the emitter.
struct Pending {
    var sequence: UInt64
    var timestamp: Int64
    var kind: GridEventKind
    /// Set when the caller chose the id (re-emitting the same input stores it once).
    var id: String?
    /// An `events_dropped` report the emitter made itself (not counted as the caller's event).
    var isReport = false
    /// The caller already ran `GridEvent.validate(kind:id:)`: the worker does not again.
    var validated = false
}

/// Encoded spool records of events taken from the queue, waiting for the spool writer. Chunks are numbered when
/// taken (`ticket`) and written in that order, so the spool keeps the queue's order whoever encoded them.
struct SpillChunk {
    var events: [Pending]
    var bytes: [UInt8]
    /// Spool bytes reserved for it when taken (an upper bound of `bytes.count`).
    var reserved: Int
}

/// The emitter's state and its two threads: the worker (connects, sends batches, collects acks, replays spools)
/// and the spool writer (writes spilled events with large sequential writes). Both hold this object, never the
/// public `EventEmitter`, so an emitter nobody holds is freed and closes this.
final class EmitterCore: @unchecked Sendable {
    let socketPath: String
    let options: EmitterOptions
    let producerTag: String
    let producerId: String

    let lock = ConditionLock()
    /// Events emitted and not yet taken for a batch or the spool (bounded; `whenFull` says what happens when full).
    var queue: BoundedQueue<Pending>
    var nextSequence: UInt64 = 1
    var counters = EmitterStats()
    var droppedUnreported = 0
    var droppedAtLastFlush = 0
    var workerWaiting = false
    /// Callers waiting for room (`whenFull: .wait`).
    var waitingEmitters = 0
    var closing = false
    var worker: pthread_t?
    var connectionNoticeGiven = false
    /// Acknowledged sequences (one bit each) when `options.trackAcknowledgements`.
    var ackBits: [UInt64] = []

    // Spool: the file, its writer thread and the chunks on their way to it.
    let spool: Spool?
    var writer: pthread_t?
    var writerStop = false
    /// False without a spool and after a write or fdatasync to it failed.
    var spoolUsable: Bool
    var spoolEmpty = true
    /// Appends the spool writer finished (see `replay`).
    var spoolAppends = 0
    /// The spool file's size as the emitter last saw it, and bytes reserved for chunks not yet written.
    var spoolFileBytes = 0
    var spoolReserved = 0
    /// Encoded bytes not yet written; past `maxUnwrittenBytes` callers stop moving events to the spool.
    var unwrittenBytes = 0
    var nextTicket: UInt64 = 0
    var nextTicketToWrite: UInt64 = 0
    var chunks: [UInt64: SpillChunk] = [:]
    /// Events taken from the queue and not yet in the spool file.
    var inTransit = 0
    /// After a failed spool write: the events of that write and of every later chunk, in order, to be put back.
    var spillFailing = false
    var failedSpill: [Pending] = []
    /// The writer spills above the high-water mark until the queue is down to half of it.
    var spillDraining = false
    var spoolFullNoticeGiven = false
    /// Spools of dead processes with this producer name, being replayed, oldest first.
    var adopted: [Spool] = []
    var lastAdoptionScan: UInt64 = 0

    /// Most encoded bytes waiting for the spool writer (the disk is slower than the producers beyond this).
    static let maxUnwrittenBytes = 64 << 20
    /// Events a caller moves to the spool itself when it finds the queue full (`.dropOldest`).
    static let assistChunk = 1024

    // Worker state (see run()).
    /// Batches in flight and batches to resend (`DeliveryWindow`: acks, rejections and lost connections).
    var delivery = DeliveryWindow<[Pending]>()
    var closingDrained = false
    var storeRefused = false
    var refusalBackoff = 0.0
    var spoolDamageReported: [ObjectIdentifier: Int] = [:]

    init(socketPath: String, options: EmitterOptions, producerTag: String, producerId: String) {
        self.socketPath = socketPath
        self.options = options
        self.producerTag = producerTag
        self.producerId = producerId
        queue = BoundedQueue(capacity: options.queueCapacity)
        if let dir = options.spoolDirectory {
            spool = Spool(
                directory: dir, name: options.producerName, limit: options.spoolLimitBytes, faults: options.spoolFaults,
                notice: options.notice)
        } else {
            spool = nil
        }
        spoolUsable = spool != nil
        if let spool {
            spoolEmpty = spool.isEmpty
            spoolFileBytes = Int(spool.writeOffset)
            counters.spoolBytes = spool.pendingBytes
            adoptOrphans()
        }
        worker = startThread(self) { $0.run() }
        if spool != nil { writer = startThread(self) { $0.runWriter() } }
    }

    private func startThread(_ core: EmitterCore, _ body: @escaping (EmitterCore) -> Void) -> pthread_t {
        final class Box {
            let core: EmitterCore
            let body: (EmitterCore) -> Void
            init(_ core: EmitterCore, _ body: @escaping (EmitterCore) -> Void) {
                self.core = core
                self.body = body
            }
        }
        let box = Unmanaged.passRetained(Box(core, body))
        var t = pthread_t()
        pthread_create(&t, nil, { arg in
            let box = Unmanaged<Box>.fromOpaque(arg!).takeRetainedValue()
            box.body(box.core)
            return nil
        }, box.toOpaque())
        return t
    }

    var highWaterMark: Int { options.effectiveHighWaterMark }

    // MARK: Emitting

    func enqueue(_ kind: GridEventKind, timestamp: Int64?, id: String?, isReport: Bool = false, validated: Bool = false) -> UInt64 {
        let ts = timestamp ?? GridClock.nowMicros()
        lock.lock()
        if queue.isFull {
            guard !isReport, makeRoom() else {
                lock.unlock()
                return 0
            }
        }
        let seq = nextSequence
        nextSequence += 1
        queue.append(Pending(sequence: seq, timestamp: ts, kind: kind, id: id, isReport: isReport, validated: validated))
        counters.emitted += isReport ? 0 : 1
        let signal = QueueSignals.afterAppend(
            queued: queue.count, maxBatchEvents: options.maxBatchEvents, highWaterMark: highWaterMark, workerWaiting: workerWaiting,
            spilling: spillDraining, spillsAboveHighWater: spillsAboveHighWater)
        if signal.startSpilling { spillDraining = true }
        let wake = signal.wake
        lock.unlock()
        if wake { lock.withLock { lock.broadcast() } }
        return seq
    }

    /// The queue is full: make room as `whenFull` says. Lock held (released while a chunk is encoded or while
    /// waiting). False when the event cannot be queued.
    private func makeRoom() -> Bool {
        switch options.whenFull {
        case .dropOldest:
            while queue.isFull {
                if unwrittenBytes < EmitterCore.maxUnwrittenBytes, spillChunk(max: EmitterCore.assistChunk) { continue }
                // Queue and spool full (or the disk is behind): drop the oldest.
                queue.removeFirst()
                counters.dropped += 1
                droppedUnreported += 1
            }
            return true
        case .wait(let seconds):
            let deadline = monotonicNanos() + UInt64(max(0, seconds) * 1e9)
            while queue.isFull {
                let now = monotonicNanos()
                if closing || now >= deadline {
                    counters.timedOut += 1
                    return false
                }
                waitingEmitters += 1
                lock.wait(seconds: min(0.1, Double(deadline - now) / 1e9))
                waitingEmitters -= 1
            }
            return true
        }
    }

    /// Whether the spool writer moves events to the spool above the high-water mark: always with `.dropOldest`;
    /// with `.wait` only while the daemon is unreachable (connected, a waiting producer is the back-pressure).
    var spillsAboveHighWater: Bool {
        guard spoolUsable else { return false }
        if case .dropOldest = options.whenFull { return true }
        return !counters.connected
    }

    /// Takes the oldest queued events for a batch: at most `max`, and at most `maxBytes` encoded (an upper bound
    /// of the encoded size, so a batch never exceeds the daemon's frame limit; the first is always taken). Lock
    /// held.
    func takeFromQueue(max: Int, maxBytes: Int = Int.max) -> [Pending] {
        var bytes = 0
        let out = queue.removeFirst(max: max) { p in
            guard maxBytes != Int.max else { return true }
            let size = EventEncoder.sizeBound(kind: p.kind, id: p.id, producerTag: producerTag)
            if bytes > 0, bytes + size > maxBytes { return false }
            bytes += size
            return true
        }
        if waitingEmitters > 0, !out.isEmpty { lock.broadcast() }
        return out
    }

    /// Puts events back at the front of the queue (dropping the oldest of them if they no longer fit). Lock held.
    func requeueFront(_ pending: [Pending]) {
        let dropped = queue.prepend(contentsOf: pending)
        counters.dropped += dropped
        droppedUnreported += dropped
    }

    // MARK: Flush, stats, close

    /// Whether anything is still to be delivered: queued, in flight, on its way to the spool, in a spool.
    var hasPending: Bool {
        lock.withLock {
            queue.count > 0 || delivery.inFlightEvents > 0 || inTransit > 0 || !delivery.retry.isEmpty || !spoolEmpty || !adopted.isEmpty || droppedUnreported > 0
        }
    }

    func flush(timeout: Double) -> Bool {
        let deadline = monotonicNanos() + UInt64(max(0, timeout) * 1e9)
        lock.lock()
        defer { lock.unlock() }
        lock.broadcast()
        var done = true
        while queue.count > 0 || delivery.inFlightEvents > 0 || inTransit > 0 || !delivery.retry.isEmpty || !spoolEmpty || !adopted.isEmpty || droppedUnreported > 0 {
            let now = monotonicNanos()
            if now >= deadline {
                done = false
                break
            }
            lock.wait(seconds: min(0.05, Double(deadline - now) / 1e9))
        }
        let clean = counters.dropped == droppedAtLastFlush
        droppedAtLastFlush = counters.dropped
        return done && clean
    }

    var stats: EmitterStats {
        lock.withLock {
            var s = counters
            s.queued = queue.count + delivery.inFlightEvents + inTransit + delivery.retryEvents
            return s
        }
    }

    func isAcknowledged(_ sequence: UInt64) -> Bool {
        lock.withLock {
            let word = Int(sequence >> 6)
            return word < ackBits.count && ackBits[word] & (1 << (sequence & 63)) != 0
        }
    }

    /// Counts an acknowledged event of this emitter. Lock held.
    func acknowledged(_ p: Pending) {
        if p.isReport {
            counters.reports += 1
            return
        }
        counters.acked += 1
        if options.trackAcknowledgements { markAcknowledged(p.sequence) }
    }

    func markAcknowledged(_ sequence: UInt64) {
        let word = Int(sequence >> 6)
        if word >= ackBits.count { ackBits.append(contentsOf: repeatElement(0, count: Swift.max(word + 1 - ackBits.count, ackBits.count))) }
        ackBits[word] |= 1 << (sequence & 63)
    }

    func close(timeout: Double) {
        let (w, s) = lock.withLock { () -> (pthread_t?, pthread_t?) in
            defer {
                worker = nil
                writer = nil
            }
            return (worker, writer)
        }
        guard let w else { return }
        _ = flush(timeout: timeout)
        lock.withLock {
            closing = true
            lock.broadcast()
        }
        pthread_join(w, nil)
        if let s {
            lock.withLock {
                writerStop = true
                lock.broadcast()
            }
            pthread_join(s, nil)
        }
        // A spool of our own named after this process is removed once empty; spools adopted and not finished are
        // left (with their read position) to the next process.
        if let spool {
            if spool.isPidSuffixed, spool.isEmpty { spool.removeFiles() }
            spool.closeFile()
        }
        let left = lock.withLock { () -> [Spool] in
            defer { adopted.removeAll() }
            return adopted
        }
        for s in left { s.closeFile() }
    }
}
