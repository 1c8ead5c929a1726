import EventStore
import Foundation
import EventWire
import GridEvents
#if canImport(Glibc)
import Glibc
#endif

/// The client library every grid process links: `emit` puts an event in a bounded in-memory queue and returns
/// (never blocks, never throws); a background thread batches events to grid-eventd over its Unix socket, waits
/// for each batch's ack, and resends what was not acked after a reconnect.
///
/// Limits and what happens at each:
/// - queue (`queueCapacity`, default 100,000 events): above `highWaterMark`, or while the daemon is unreachable,
///   events spill to the spool; when queue and spool are both full, the oldest queued event is dropped and counted.
/// - spool (`spoolLimitBytes`, default 256 MiB): replayed in order once the daemon is back, before newer events;
///   it survives this process's restart.
/// - dropped events are reported as one `events_dropped` event once the daemon is reachable.
public final class EventEmitter: @unchecked Sendable {
    /// Where events go, or nil when disabled.
    public let socketPath: String?
    public let options: EmitterOptions
    /// 12 hex digits, random per emitter: part of every event id, so ids never collide across producers.
    public let producerTag: String
    /// `<producer name>-<tag>`, as sent in hello and batches.
    public let producerId: String

    private struct Pending {
        var sequence: UInt64
        var timestamp: Int64
        var kind: GridEventKind
        /// Set when the caller chose the id (re-emitting the same input stores it once).
        var id: String?
    }

    private let lock = ConditionLock()
    // Ring buffer of pending events.
    private var ring: [Pending?]
    private var head = 0
    private var count = 0
    private var nextSequence: UInt64 = 1
    private var counters = EmitterStats()
    private var droppedUnreported = 0
    private var inFlight = 0
    /// Events taken from the queue and being written to the spool.
    private var inTransit = 0
    private var workerWaiting = false
    private var closing = false
    private var worker: pthread_t?
    private var spool: Spool?
    private var spoolEmpty = true
    private var connectionNoticeGiven = false

    /// An emitter sending to `storage`: a socket path or `unix:///path`. By default from `EVENT_STORAGE`;
    /// unset or empty gives a disabled emitter that says so once and costs nothing per emit.
    public init(storage: String? = EventEmitter.environmentStorage(), options: EmitterOptions = EmitterOptions()) {
        var options = options
        let name = EmitterOptions.safeProducerName(options.producerName)
        if name != options.producerName {
            options.notice("producer name \"\(options.producerName.prefix(80))\" is not 1-64 of A-Z a-z 0-9 - _ . (not starting with .); using \"\(name)\"")
            options.producerName = name
        }
        self.options = options
        var tag = String(UInt64.random(in: 0...UInt64.max) & 0xFFFF_FFFF_FFFF, radix: 16)
        tag = String(repeating: "0", count: 12 - tag.count) + tag
        producerTag = tag
        producerId = options.producerName + "-" + tag
        var path = storage?.trimmingCharacters(in: .whitespacesAndNewlines) ?? ""
        if path.hasPrefix("unix://") { path.removeFirst("unix://".count) }
        if path.isEmpty {
            socketPath = nil
            ring = []
            options.notice("EVENT_STORAGE is not set; events are disabled")
            return
        }
        socketPath = path
        ring = Array(repeating: nil, count: max(1, options.queueCapacity))
        if let dir = options.spoolDirectory {
            spool = Spool(
                directory: dir, name: options.producerName, limit: options.spoolLimitBytes, faults: options.spoolFaults,
                notice: options.notice)
            spoolEmpty = spool?.isEmpty ?? true
            counters.spoolBytes = spool?.pendingBytes ?? 0
        }
        let box = Unmanaged.passRetained(self)
        var t = pthread_t()
        pthread_create(&t, nil, { arg in
            let emitter = Unmanaged<EventEmitter>.fromOpaque(arg!).takeRetainedValue()
            emitter.run()
            return nil
        }, box.toOpaque())
        worker = t
    }

    /// `EVENT_STORAGE` from the environment.
    public static func environmentStorage() -> String? {
        getenv("EVENT_STORAGE").map { String(cString: $0) }
    }

    public var isEnabled: Bool { socketPath != nil }

    /// Queues an event; returns its sequence number (0 when disabled). Never blocks on I/O, never throws.
    /// The event's id is `GridEvent.makeId(typeName:producerTag:sequence:)`.
    @discardableResult
    public func emit(_ kind: GridEventKind, at timestamp: Int64? = nil) -> UInt64 {
        enqueue(kind, timestamp: timestamp, id: nil)
    }

    /// Queues an event with an id of the caller's choosing (it must start with `event-<type name>-`; invalid
    /// events are dropped and counted). Returns the sequence number (0 when disabled).
    @discardableResult
    public func emit(_ kind: GridEventKind, id: String, at timestamp: Int64? = nil) -> UInt64 {
        enqueue(kind, timestamp: timestamp, id: id)
    }

    private func enqueue(_ kind: GridEventKind, timestamp: Int64?, id: String?) -> UInt64 {
        guard socketPath != nil else { return 0 }
        let ts = timestamp ?? StoreOptions.nowMicros()
        lock.lock()
        if count == ring.count {
            // Queue full (the worker could not spill): drop the oldest.
            ring[head] = nil
            head = (head + 1) % ring.count
            count -= 1
            counters.dropped += 1
            droppedUnreported += 1
        }
        let seq = nextSequence
        nextSequence += 1
        ring[(head + count) % ring.count] = Pending(sequence: seq, timestamp: ts, kind: kind, id: id)
        count += 1
        counters.emitted += 1
        let wake = workerWaiting && (count >= options.maxBatchEvents || count >= options.effectiveHighWaterMark)
        lock.unlock()
        if wake { lock.withLock { lock.broadcast() } }
        return seq
    }

    /// The id of the event emitted with `sequence` and `kind`.
    public func id(of kind: GridEventKind, sequence: UInt64) -> String {
        GridEvent.makeId(typeName: kind.typeName, producerTag: producerTag, sequence: sequence)
    }

    /// Waits until everything emitted so far is acknowledged (or dropped), at most `timeout` seconds.
    /// Returns true when nothing is left pending.
    @discardableResult
    public func flush(timeout: Double = 10) -> Bool {
        guard socketPath != nil else { return true }
        let deadline = monotonicNanos() + UInt64(max(0, timeout) * 1e9)
        lock.lock()
        defer { lock.unlock() }
        lock.broadcast()
        while count > 0 || inFlight > 0 || inTransit > 0 || !retry.isEmpty || !spoolEmpty {
            let now = monotonicNanos()
            if now >= deadline { return false }
            lock.wait(seconds: min(0.05, Double(deadline - now) / 1e9))
        }
        return true
    }

    public var stats: EmitterStats {
        lock.withLock {
            var s = counters
            s.queued = count + inFlight + inTransit + retry.reduce(0) { $0 + $1.count }
            return s
        }
    }

    /// Flushes (up to `timeout`), then stops the worker. What is not acked by then stays in the spool when
    /// there is one.
    public func close(timeout: Double = 5) {
        guard socketPath != nil, worker != nil else { return }
        flush(timeout: timeout)
        lock.withLock {
            closing = true
            lock.broadcast()
        }
        if let worker { pthread_join(worker, nil) }
        worker = nil
    }

    deinit { close(timeout: 0) }

    // MARK: Worker

    private func takeFromQueue(max: Int, maxBytes: Int = Int.max) -> [Pending] {
        var out: [Pending] = []
        out.reserveCapacity(Swift.min(max, count))
        var bytes = 0
        while count > 0, out.count < max {
            if maxBytes != Int.max {
                // Cheap upper estimate of the encoded size, so a batch never exceeds the daemon's frame limit.
                let size = EventEmitter.estimatedSize(ring[head]!)
                if !out.isEmpty, bytes + size > maxBytes { break }
                bytes += size
            }
            out.append(ring[head]!)
            ring[head] = nil
            head = (head + 1) % ring.count
            count -= 1
        }
        return out
    }

    private static func estimatedSize(_ p: Pending) -> Int {
        var n = 64 + (p.id?.utf8.count ?? 0)
        for (name, value) in p.kind.namedFields {
            n += 12 + name.utf8.count
            if case .string(let s) = value { n += s.utf8.count }
        }
        for e in p.kind.entities { n += 4 + e.utf8.count }
        return n
    }

    private func events(_ pending: [Pending]) -> [GridEvent] {
        pending.map { GridEvent(id: $0.id ?? id(of: $0.kind, sequence: $0.sequence), timestamp: $0.timestamp, kind: $0.kind) }
    }

    /// Moves every queued event to the spool; what does not fit goes back to the front of the queue.
    /// Call with the lock held: it is released while events are encoded and written, so `emit` never waits
    /// for disk I/O. Returns false when nothing could be spilled.
    @discardableResult
    private func spill(max: Int = Int.max) -> Bool {
        guard let spool else { return false }
        let taken = takeFromQueue(max: Swift.min(max, count))
        guard !taken.isEmpty else { return true }
        inTransit += taken.count
        let producer = producerId
        lock.unlock()
        let records = events(taken).enumerated().map { SpoolRecord(producer: producer, sequence: taken[$0.offset].sequence, event: $0.element) }
        let written = spool.append(records)
        lock.lock()
        inTransit -= taken.count
        counters.spooled += written
        counters.spoolBytes = spool.pendingBytes
        if written > 0 { spoolEmpty = false }
        if written < taken.count { requeueFront(Array(taken[written...])) }
        return written > 0
    }

    /// Puts events back at the front of the queue (dropping the oldest if they no longer fit).
    private func requeueFront(_ pending: [Pending]) {
        for p in pending.reversed() {
            if count == ring.count {
                // Full: the newest are kept, so this (older) one is the one dropped.
                counters.dropped += 1
                droppedUnreported += 1
                continue
            }
            head = (head - 1 + ring.count) % ring.count
            ring[head] = p
            count += 1
        }
    }

    /// Batches sent on the current connection and not yet acknowledged, oldest first.
    private var window: [[Pending]] = []
    static let windowSize = 4
    private var closingDrained = false
    /// Events that were in flight when a connection was lost: older than the spool and the queue, so they are
    /// sent first after reconnecting. At most `windowSize` batches, kept in memory.
    private var retry: [[Pending]] = []
    /// After a rejection with several batches in flight, send one batch at a time until the retried batches are
    /// through, so a second rejection names exactly the bad batch.
    private var cautious = false
    /// Set when the daemon answered that it cannot store (no space, failed closed): the worker disconnects,
    /// spools what is queued and waits (doubling up to `backoffMaxSeconds`) before resending.
    private var storeRefused = false
    private var refusalBackoff = 0.0
    private var spoolDamageReported = 0

    private func run() {
        var connection: DaemonConnection?
        var backoff = options.backoffInitialSeconds
        var everConnected = false
        var spoolingNoticeGiven = false
        while true {
            lock.lock()
            if closing, window.isEmpty, connection == nil || closingDrained || retry.isEmpty && spoolEmpty && count == 0 {
                // Keep what is left for the next start: retried events first, then the queue.
                if !retry.isEmpty {
                    requeueFront(retry.flatMap { $0 })
                    retry.removeAll()
                }
                if count > 0 { spill() }
                lock.unlock()
                return
            }
            if connection == nil, storeRefused {
                storeRefused = false
                counters.storeRefusals += 1
                let spilled = count > 0 && spill()
                lock.unlock()
                let first = refusalBackoff == 0
                refusalBackoff = min(max(refusalBackoff * 2, options.backoffInitialSeconds), options.backoffMaxSeconds)
                if first {
                    options.notice("grid-eventd cannot store events now; \(spilled ? "spooling them and " : "")retrying")
                }
                sleepUnlessClosing(refusalBackoff)
                continue
            }
            if connection == nil {
                lock.unlock()
                connection = connect(everConnected: &everConnected)
                if connection == nil {
                    // Unreachable: keep memory bounded by spilling everything queued, then wait and retry.
                    let spilled = lock.withLock { count > 0 && spill() }
                    if spilled, !spoolingNoticeGiven {
                        spoolingNoticeGiven = true
                        options.notice("grid-eventd unreachable; spooling events to \(spool?.path ?? "memory")")
                    }
                    sleepUnlessClosing(backoff)
                    backoff = min(backoff * 2, options.backoffMaxSeconds)
                    continue
                }
                backoff = options.backoffInitialSeconds
                spoolingNoticeGiven = false
                continue
            }
            let conn = connection!
            spillIfAboveHighWater()
            if droppedUnreported > 0, count < options.effectiveHighWaterMark, window.isEmpty {
                let n = droppedUnreported
                droppedUnreported = 0
                lock.unlock()
                options.notice("\(n) event(s) were dropped (queue and spool full)")
                _ = enqueue(.eventsDropped(producerId: producerId, dropped: n), timestamp: nil, id: nil)
                continue
            }
            // Order: retried events (in flight when a connection was lost) < spool < queue. Spills move the
            // newest events, the queue, so they never jump ahead of what is in flight.
            if closing {
                // Closing: send nothing new, only collect the acks of what is in flight.
                lock.unlock()
                if window.isEmpty { lock.withLock { closingDrained = true } } else { awaitWindowAck(conn, &connection) }
                continue
            }
            if !retry.isEmpty {
                if window.count < (cautious ? 1 : EventEmitter.windowSize) {
                    sendBatch(retry.removeFirst(), conn, &connection)
                } else {
                    lock.unlock()
                    awaitWindowAck(conn, &connection)
                }
                continue
            }
            if !spoolEmpty, let spool {
                if !window.isEmpty {
                    lock.unlock()
                    awaitWindowAck(conn, &connection)
                    continue
                }
                lock.unlock()
                let (records, end) = spool.read(maxEvents: options.maxBatchEvents, maxBytes: options.maxBatchBytes)
                reportSpoolDamage(spool)
                let (handled, acked) = sendSpooled(records, conn)
                let through = handled == records.count ? end : (handled > 0 ? records[handled - 1].end : spool.readOffset)
                spool.commit(through: through)  // file I/O: outside the lock, only this thread touches the spool
                if acked > 0 { refusalBackoff = 0 }
                lock.withLock {
                    counters.acked += acked
                    counters.spoolBytes = spool.pendingBytes
                    spoolEmpty = spool.isEmpty
                    lock.broadcast()
                }
                if handled < records.count {
                    connection = nil
                    lostConnection("spool replay interrupted")
                }
                continue
            }
            if count > 0, window.count < EventEmitter.windowSize {
                if count < options.maxBatchEvents, options.batchDelaySeconds > 0, window.isEmpty {
                    // Let a batch build up for a moment.
                    workerWaiting = true
                    lock.wait(seconds: options.batchDelaySeconds)
                    workerWaiting = false
                }
                sendBatch(takeFromQueue(max: options.maxBatchEvents, maxBytes: options.maxBatchBytes), conn, &connection)
                continue
            }
            if !window.isEmpty {
                lock.unlock()
                awaitWindowAck(conn, &connection)
                continue
            }
            // Idle.
            workerWaiting = true
            lock.wait(seconds: 0.25)
            workerWaiting = false
            lock.unlock()
        }
    }

    /// Call with the lock held: above the high-water mark, spill the queue so memory stays bounded.
    private func spillIfAboveHighWater() {
        guard count >= options.effectiveHighWaterMark, spool != nil else { return }
        // In chunks, oldest first, so the queue drains while producers keep emitting.
        while count >= options.effectiveHighWaterMark / 2, spill(max: 8192) {}
    }

    /// Call with the lock held (released on return): puts `batch` in the window and sends it.
    private func sendBatch(_ batch: [Pending], _ conn: DaemonConnection, _ connection: inout DaemonConnection?) {
        // Events the daemon would refuse (a bad id or field) are dropped here, one by one, so they cannot take
        // a whole batch down with them.
        let all = events(batch)
        var valid: [GridEvent] = []
        var kept: [Pending] = []
        for (p, e) in zip(batch, all) where (try? e.validate()) != nil {
            valid.append(e)
            kept.append(p)
        }
        if kept.count < batch.count {
            counters.dropped += batch.count - kept.count
        }
        guard !kept.isEmpty else {
            lock.unlock()
            options.notice("dropped \(batch.count) invalid event(s)")
            return
        }
        window.append(kept)
        inFlight += kept.count
        lock.unlock()
        if kept.count < batch.count { options.notice("dropped \(batch.count - kept.count) invalid event(s)") }
        let frame = WireCodec.encode(.batch(producerId: producerId, firstSequence: kept[0].sequence, events: valid))
        do {
            try conn.send(frame)
        } catch {
            connection = nil
            lostConnection("\(error)")
        }
    }

    /// Waits for the next ack of the window's batches and retires what it covers.
    private func awaitWindowAck(_ conn: DaemonConnection, _ connection: inout DaemonConnection?) {
        do {
            if try conn.nextAck(producer: producerId, timeout: options.ackTimeoutSeconds, idle: { [self] in
                lock.withLock { spillIfAboveHighWater() }
            }) != nil {
                // The daemon answers every batch of a connection once, in order: this ack is the oldest batch's.
                refusalBackoff = 0
                lock.withLock {
                    if !window.isEmpty {
                        let first = window.removeFirst()
                        inFlight -= first.count
                        counters.acked += first.count
                    }
                    if retry.isEmpty, window.isEmpty { cautious = false }
                    lock.broadcast()
                }
            } else {
                connection = nil
                lostConnection("no ack within \(options.ackTimeoutSeconds) s")
            }
        } catch let failure as DaemonConnection.Failure where failure.rejected {
            // Only with one batch in flight is it certain which batch was refused; otherwise resend one at a time.
            let dropped = lock.withLock { () -> Int in
                guard window.count == 1 else {
                    cautious = true
                    return 0
                }
                let first = window.removeFirst()
                inFlight -= first.count
                counters.dropped += first.count
                lock.broadcast()
                return first.count
            }
            if dropped > 0 { options.notice("grid-eventd rejected a batch of \(dropped) event(s): \(failure.description)") }
            connection = nil
            lostConnection("batch rejected")
        } catch {
            if let failure = error as? DaemonConnection.Failure, failure.storeUnavailable { storeRefused = true }
            connection = nil
            lostConnection("\(error)")
        }
    }

    /// Reports each damaged spool region once, with its offset (the events in it are lost).
    private func reportSpoolDamage(_ spool: Spool) {
        let damage = spool.corruptions
        guard damage.count > spoolDamageReported else { return }
        for d in damage[spoolDamageReported...] {
            options.notice("spool \(spool.path): skipped \(d.bytes) damaged byte(s) at offset \(d.offset) (checksum mismatch); the events stored there are lost")
            lock.withLock { counters.spoolDamagedBytes += Int(d.bytes) }
        }
        spoolDamageReported = damage.count
    }

    /// The connection is gone: every unacknowledged batch is kept, in order, to be sent first after reconnecting.
    private func lostConnection(_ reason: String) {
        let unacked = lock.withLock { () -> Int in
            let n = window.reduce(0) { $0 + $1.count }
            retry = window + retry
            window.removeAll()
            inFlight = 0
            counters.connected = false
            lock.broadcast()
            return n
        }
        if unacked > 0 { options.notice("lost grid-eventd (\(reason)); will resend \(unacked) unacknowledged event(s)") }
    }

    /// Sends spooled records, grouped into runs of one producer with consecutive sequence numbers, each
    /// acknowledged before the next. Returns how many records are done with (acked, or rejected as invalid and
    /// dropped) and how many were acked; fewer than all when the connection failed.
    private func sendSpooled(_ records: [SpoolRecord], _ connection: DaemonConnection) -> (handled: Int, acked: Int) {
        var acked = 0
        var i = 0
        while i < records.count {
            var j = i + 1
            while j < records.count, records[j].producer == records[i].producer, records[j].sequence == records[j - 1].sequence + 1 { j += 1 }
            let run = records[i..<j]
            let frame = WireCodec.encode(.batch(producerId: run.first!.producer, firstSequence: run.first!.sequence, events: run.map(\.event)))
            do {
                try connection.send(frame)
                _ = try connection.awaitAck(producer: run.first!.producer, through: run.last!.sequence, timeout: options.ackTimeoutSeconds) { [self] in
                    lock.withLock { spillIfAboveHighWater() }  // no queue batch is in flight during replay
                }
                acked += run.count
            } catch let failure as DaemonConnection.Failure where failure.rejected {
                // Invalid in the daemon's eyes: resending will not help; drop this run and reconnect.
                lock.withLock { counters.dropped += run.count }
                options.notice("grid-eventd rejected \(run.count) spooled event(s): \(failure.description)")
                return (j, acked)
            } catch {
                if let failure = error as? DaemonConnection.Failure, failure.storeUnavailable {
                    storeRefused = true
                } else {
                    options.notice("lost grid-eventd while replaying the spool (\(error)); will retry")
                }
                return (i, acked)
            }
            i = j
        }
        return (records.count, acked)
    }

    private func connect(everConnected: inout Bool) -> DaemonConnection? {
        do {
            let c = try DaemonConnection(path: socketPath!, producerId: producerId, client: options.producerName, timeoutSeconds: options.ackTimeoutSeconds)
            lock.withLock {
                if everConnected { counters.reconnects += 1 }
                counters.connected = true
            }
            if everConnected || connectionNoticeGiven { options.notice("connected to grid-eventd at \(socketPath!)") }
            everConnected = true
            connectionNoticeGiven = false
            return c
        } catch {
            lock.withLock { counters.connected = false }
            if !connectionNoticeGiven {
                connectionNoticeGiven = true
                options.notice("grid-eventd not reachable (\(error)); events are spooled and delivered when it is")
            }
            return nil
        }
    }

    private func sleepUnlessClosing(_ seconds: Double) {
        lock.withLock {
            if !closing { lock.wait(seconds: seconds) }
        }
    }
}
