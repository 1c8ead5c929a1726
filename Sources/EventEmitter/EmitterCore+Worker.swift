import EmitterSpool
import EventWire
import GridBase
import GridEvents
#if canImport(Glibc)
import Glibc
#endif

/// The worker thread: connects, sends the queue in batches (at most `windowSize` in flight), collects acks, resends
/// after a lost connection, replays spools, and spills the queue while the daemon is unreachable or refuses.
///
/// Order per producer: events in flight when a connection drops are resent first, then the spool, then the
/// queue. Events moved to the spool are the queue's oldest, so while any are on their way to the spool file
/// (`inTransit`) nothing is sent from the queue.
extension EmitterCore {
    func run() {
        var connection: DaemonConnection?
        var backoff = options.backoffInitialSeconds
        var everConnected = false
        var spoolingNoticeGiven = false
        while true {
            lock.lock()
            // What to do next is decided by `DeliveryPlan` (pure, tested on its own); carrying it out is here.
            switch DeliveryPlan.next(deliveryState(connected: connection != nil)) {
            case .finish:
                // Keep what is left for the next start: retried events first, then the queue.
                let again = delivery.takeAllRetries()
                if !again.isEmpty { requeueFront(again.flatMap { $0 }) }
                spillAll()
                lock.unlock()
                return
            case .backOffRefused:
                storeRefused = false
                counters.storeRefusals += 1
                let spilled = !queue.isEmpty && spoolUsable
                spillAll()
                lock.unlock()
                let first = refusalBackoff == 0
                refusalBackoff = min(max(refusalBackoff * 2, options.backoffInitialSeconds), options.backoffMaxSeconds)
                if first {
                    options.notice("grid-eventd cannot store events now; \(spilled ? "spooling them and " : "")retrying")
                }
                sleepUnlessClosing(refusalBackoff)
            case .connect:
                lock.unlock()
                connection = connect(everConnected: &everConnected)
                if connection == nil {
                    // Unreachable: keep memory bounded by spilling everything queued, then wait and retry.
                    let spilled = lock.withLock { () -> Bool in
                        let had = !queue.isEmpty && spoolUsable
                        spillAll()
                        return had
                    }
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
            case .reportDrops:
                let n = droppedUnreported
                droppedUnreported = 0
                lock.unlock()
                options.notice("\(n) event(s) were dropped (queue and spool full)")
                if enqueue(.eventsDropped(producerId: producerId, dropped: n), timestamp: nil, id: nil, isReport: true) == 0 {
                    lock.withLock { droppedUnreported += n }
                }
            case .markDrained:
                // Closing: nothing new is sent, and nothing is in flight any more.
                closingDrained = true
                lock.unlock()
            case .collectAck:
                lock.unlock()
                awaitWindowAck(connection!, &connection)
            case .resend:
                sendBatch(delivery.takeRetry(), connection!, &connection)
            case .replayOwnSpool, .replayAdoptedSpool:
                // Spools (this producer's own, then those adopted) are replayed with nothing else in flight, since
                // the connection answers acks in order and a replay waits for its own.
                let replaying = spoolEmpty ? adopted.first! : spool!
                lock.unlock()
                if !replay(replaying, connection!) {
                    connection = nil
                    lostConnection("spool replay interrupted")
                }
            case .waitForBatch:
                // Let a batch build up for a moment.
                workerWaiting = true
                lock.wait(seconds: options.batchDelaySeconds)
                workerWaiting = false
                if inTransit > 0 || queue.isEmpty {
                    lock.unlock()
                    continue
                }
                sendBatch(takeFromQueue(max: options.maxBatchEvents, maxBytes: options.maxBatchBytes), connection!, &connection)
            case .sendQueue:
                sendBatch(takeFromQueue(max: options.maxBatchEvents, maxBytes: options.maxBatchBytes), connection!, &connection)
            case .waitForSpill:
                // The oldest queued events are on their way to the spool: wait for them, then replay.
                lock.wait(seconds: 0.005)
                lock.unlock()
            case .scanOrphans:
                // Idle: now and then look for spools whose process has died since.
                lock.unlock()
                adoptOrphans()
            case .idle:
                workerWaiting = true
                lock.wait(seconds: 0.25)
                workerWaiting = false
                lock.unlock()
            }
        }
    }

    /// The delivery state `DeliveryPlan` decides on; call with the lock held.
    func deliveryState(connected: Bool) -> DeliveryPlan.DeliveryState {
        DeliveryPlan.DeliveryState(
            connected: connected, closing: closing, closingDrained: closingDrained, storeRefused: storeRefused,
            inFlightBatches: delivery.inFlight.count, retryBatches: delivery.retry.count, cautious: delivery.cautious, ownSpoolPending: !spoolEmpty,
            adoptedSpools: adopted.count, queued: queue.count, highWaterMark: highWaterMark, maxBatchEvents: options.maxBatchEvents,
            batchDelay: options.batchDelaySeconds > 0, inTransit: inTransit > 0, droppedUnreported: droppedUnreported > 0,
            orphanScanDue: spool != nil && monotonicNanos() - lastAdoptionScan > 30_000_000_000)
    }

    /// Sends one read of `spool` (about one batch) and commits what was acknowledged. False when the connection
    /// failed. An adopted spool that is delivered is closed (and deleted if it was a `<name>-<pid>.spool`).
    private func replay(_ spool: Spool, _ conn: DaemonConnection) -> Bool {
        let (records, end) = spool.read(maxEvents: options.maxBatchEvents, maxBytes: options.maxBatchBytes)
        reportSpoolDamage(spool)
        let (handled, ok) = sendSpooled(records, conn)
        let through = handled == records.count ? end : (handled > 0 ? records[handled - 1].end : spool.readOffset)
        let own = spool === self.spool
        // The spool writer may append meanwhile: it marks the spool non-empty after each append, so "empty" is
        // only believed when no append finished since before it was read.
        let appendsBefore = lock.withLock { spoolAppends }
        let freed = spool.commit(through: through)  // file I/O outside the lock: only this thread reads and commits
        let empty = spool.isEmpty
        if own {
            let pending = spool.pendingBytes
            lock.withLock {
                counters.spoolBytes = pending
                spoolFileBytes -= freed
                spoolEmpty = empty && spoolAppends == appendsBefore
                if spoolEmpty { spoolFullNoticeGiven = false }
                lock.broadcast()
            }
        } else if empty {
            if spool.isPidSuffixed { spool.removeFiles() }
            lock.withLock {
                adopted.removeAll { $0 === spool }
                lock.broadcast()
            }
        }
        return ok && handled == records.count
    }

    /// Call with the lock held (released on return): puts `batch` in the window and sends it.
    func sendBatch(_ batch: [Pending], _ conn: DaemonConnection, _ connection: inout DaemonConnection?) {
        // Events the daemon would refuse (a bad id or field) are dropped here, one by one, so they cannot take
        // a whole batch down with them.
        var kept: [Pending] = []
        kept.reserveCapacity(batch.count)
        var invalid = 0
        for p in batch {
            if p.validated || (try? GridEvent.validate(kind: p.kind, id: p.id)) != nil {
                kept.append(p)
            } else {
                invalid += 1
            }
        }
        counters.dropped += invalid
        guard !kept.isEmpty else {
            lock.unlock()
            options.notice("dropped \(batch.count) invalid event(s)")
            return
        }
        delivery.sent(kept)
        lock.unlock()
        if invalid > 0 { options.notice("dropped \(invalid) invalid event(s)") }
        do {
            try conn.sendBatch(producer: producerId, firstSequence: kept[0].sequence, kept) { p, body in
                EventEncoder.append(kind: p.kind, timestamp: p.timestamp, id: p.id, producerTag: producerTag, sequence: p.sequence, to: &body)
            }
        } catch {
            connection = nil
            lostConnection("\(error)")
        }
    }

    /// Waits for the next ack of the window's batches and retires what it covers.
    func awaitWindowAck(_ conn: DaemonConnection, _ connection: inout DaemonConnection?) {
        do {
            if try conn.nextAck(producer: producerId, timeout: options.ackTimeoutSeconds) != nil {
                // The daemon answers every batch of a connection once, in order: this ack is the oldest batch's.
                refusalBackoff = 0
                lock.withLock {
                    if let first = delivery.acknowledged() {
                        for p in first { acknowledged(p) }
                    }
                    lock.broadcast()
                }
            } else {
                connection = nil
                lostConnection("no ack within \(options.ackTimeoutSeconds) s")
            }
        } catch let failure as DaemonConnection.Failure where failure.rejected {
            // Only with one batch in flight is it certain which batch was refused; otherwise resend one at a time.
            let dropped = lock.withLock { () -> Int in
                guard let first = delivery.rejected() else { return 0 }
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
        let key = ObjectIdentifier(spool)
        let reported = spoolDamageReported[key] ?? 0
        guard damage.count > reported else { return }
        for d in damage[reported...] {
            options.notice("spool \(spool.path): skipped \(d.bytes) damaged byte(s) at offset \(d.offset) (checksum mismatch); the events stored there are lost")
            lock.withLock { counters.spoolDamagedBytes += Int(d.bytes) }
        }
        spoolDamageReported[key] = damage.count
    }

    /// The connection is gone: every unacknowledged batch is kept, in order, to be sent first after reconnecting.
    func lostConnection(_ reason: String) {
        let unacked = lock.withLock { () -> Int in
            let n = delivery.lost()
            counters.connected = false
            lock.broadcast()
            return n
        }
        if unacked > 0 { options.notice("lost grid-eventd (\(reason)); will resend \(unacked) unacknowledged event(s)") }
    }

    /// Sends spooled records, grouped into runs of one producer with consecutive sequence numbers, each
    /// acknowledged before the next. Returns how many records are done with (acked, or rejected as invalid and
    /// dropped) and whether the connection is still good. Records of this emitter count as acknowledged (or as
    /// reports); records of earlier processes as replayed.
    private func sendSpooled(_ records: [SpoolRecord], _ connection: DaemonConnection) -> (handled: Int, ok: Bool) {
        var i = 0
        while i < records.count {
            var j = i + 1
            while j < records.count, records[j].producer == records[i].producer, records[j].sequence == records[j - 1].sequence + 1 { j += 1 }
            let run = records[i..<j]
            do {
                try connection.sendBatch(producer: run.first!.producer, firstSequence: run.first!.sequence, run) { r, body in
                    EventEncoder.append(kind: r.event.kind, timestamp: r.event.timestamp, id: r.event.id, producerTag: "", sequence: 0, to: &body)
                }
                _ = try connection.awaitAck(producer: run.first!.producer, through: run.last!.sequence, timeout: options.ackTimeoutSeconds)
                refusalBackoff = 0
                lock.withLock {
                    if run.first!.producer == producerId {
                        for r in run { acknowledged(Pending(sequence: r.sequence, timestamp: 0, kind: r.event.kind, id: nil, isReport: isOwnReport(r.event))) }
                    } else {
                        counters.replayed += run.count
                    }
                }
            } catch let failure as DaemonConnection.Failure where failure.rejected {
                // Invalid in the daemon's eyes: resending will not help; drop this run and reconnect.
                lock.withLock { counters.dropped += run.count }
                options.notice("grid-eventd rejected \(run.count) spooled event(s): \(failure.description)")
                return (j, false)
            } catch {
                if let failure = error as? DaemonConnection.Failure, failure.storeUnavailable {
                    storeRefused = true
                } else {
                    options.notice("lost grid-eventd while replaying the spool (\(error)); will retry")
                }
                return (i, false)
            }
            i = j
        }
        return (records.count, true)
    }

    private func isOwnReport(_ event: GridEvent) -> Bool {
        if case .eventsDropped(let p, _) = event.kind, p == producerId { return true }
        return false
    }

    private func connect(everConnected: inout Bool) -> DaemonConnection? {
        do {
            let c = try DaemonConnection(path: socketPath, producerId: producerId, client: options.producerName, timeoutSeconds: options.ackTimeoutSeconds)
            lock.withLock {
                if everConnected { counters.reconnects += 1 }
                counters.connected = true
            }
            if everConnected || connectionNoticeGiven { options.notice("connected to grid-eventd at \(socketPath)") }
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

    /// Waits `seconds` (a backoff) unless the emitter closes. The lock's condition is shared with the spool writer
    /// and the producers, so a wake-up before the time is not the end of the wait.
    private func sleepUnlessClosing(_ seconds: Double) {
        let deadline = monotonicNanos() + UInt64(max(0, seconds) * 1e9)
        lock.withLock {
            while !closing {
                let now = monotonicNanos()
                if now >= deadline { break }
                lock.wait(seconds: Double(deadline - now) / 1e9)
            }
        }
    }
}
