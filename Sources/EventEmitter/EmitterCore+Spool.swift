@_spi(Testing) import EmitterSpool
import GridBase
import GridEvents
#if canImport(Glibc)
import Glibc
#endif

/// Moving events from the queue to the spool: chunks are taken in queue order and numbered, encoded outside the
/// lock (by the spool writer, the worker, or a producer that found the queue full), and written by the spool
/// writer thread in number order with large sequential writes, one checked fdatasync each.
extension EmitterCore {
    /// Takes up to `max` of the oldest queued events, as many as the spool has room for, encodes them and hands
    /// them to the spool writer. Call with the lock held; it is released while encoding. False when nothing
    /// could be taken (no usable spool, spool full, empty queue).
    @discardableResult
    func spillChunk(max: Int) -> Bool {
        guard let spool, spoolUsable, !spillFailing, !queue.isEmpty else { return false }
        let room = spool.limit - spoolFileBytes - spoolReserved
        var bound = 0
        let taken = queue.removeFirst(max: max) { p in
            let b = Spool.recordBound(producer: producerId, kind: p.kind, id: p.id, producerTag: producerTag)
            if bound + b > room { return false }
            bound += b
            return true
        }
        guard !taken.isEmpty else {
            if !spoolFullNoticeGiven {
                spoolFullNoticeGiven = true
                let limit = spool.limit
                lock.unlock()
                options.notice("spool \(spool.path) is full (\(limit) bytes); events wait in memory until it drains")
                lock.lock()
            }
            return false
        }
        if waitingEmitters > 0 { lock.broadcast() }
        let ticket = nextTicket
        nextTicket += 1
        inTransit += taken.count
        spoolReserved += bound
        let producer = producerId
        let tag = producerTag
        lock.unlock()
        var bytes: [UInt8] = []
        bytes.reserveCapacity(bound)
        for p in taken {
            Spool.appendRecord(
                producer: producer, sequence: p.sequence, kind: p.kind, timestamp: p.timestamp, id: p.id, producerTag: tag,
                to: &bytes)
        }
        lock.lock()
        unwrittenBytes += bytes.count
        chunks[ticket] = SpillChunk(events: taken, bytes: bytes, reserved: bound)
        lock.broadcast()
        return true
    }

    /// Spills the whole queue (or what the spool has room for). Lock held.
    func spillAll() {
        while !queue.isEmpty, spillChunk(max: 8192) {}
    }

    /// The spool writer thread: writes chunks in ticket order, several at once up to 8 MiB, and spills above the
    /// high-water mark (`.dropOldest`, or `.wait` while the daemon is unreachable).
    func runWriter() {
        guard let spool else { return }
        lock.lock()
        while true {
            if chunks[nextTicketToWrite] != nil {
                var batch: [SpillChunk] = []
                var size = 0
                while size < 8 << 20, let c = chunks.removeValue(forKey: nextTicketToWrite) {
                    batch.append(c)
                    size += c.bytes.count
                    nextTicketToWrite += 1
                }
                let reserved = batch.reduce(0) { $0 + $1.reserved }
                if spillFailing {
                    for c in batch { failedSpill += c.events }
                    spoolReserved -= reserved
                    unwrittenBytes -= size
                    finishFailedSpill()
                    continue
                }
                lock.unlock()
                var bytes: [UInt8]
                if batch.count == 1 {
                    bytes = batch[0].bytes
                } else {
                    bytes = []
                    bytes.reserveCapacity(size)
                    for c in batch { bytes += c.bytes }
                }
                let err = spool.append(encoded: bytes)
                let pending = spool.pendingBytes
                if err != 0 {
                    options.notice(
                        "spool \(spool.path): write or fdatasync failed (\(String(cString: strerror(err)))); not spooling any more, events stay in memory")
                }
                lock.lock()
                spoolReserved -= reserved
                unwrittenBytes -= size
                let n = batch.reduce(0) { $0 + $1.events.count }
                if err == 0 {
                    inTransit -= n
                    counters.spooled += n
                    spoolFileBytes += size
                    counters.spoolBytes = pending
                    spoolEmpty = false
                    spoolAppends += 1
                    lock.broadcast()
                } else {
                    spoolUsable = false
                    spillFailing = true
                    for c in batch { failedSpill += c.events }
                    finishFailedSpill()
                }
                continue
            }
            // Above the high-water mark, spill until the queue is down to half of it.
            if spillDraining || queue.count >= highWaterMark, queue.count > highWaterMark / 2, spillsAboveHighWater,
                unwrittenBytes < EmitterCore.maxUnwrittenBytes
            {
                spillDraining = true
                if spillChunk(max: 8192) { continue }
            }
            spillDraining = false
            if writerStop, nextTicketToWrite == nextTicket { break }
            lock.wait(seconds: 0.05)
        }
        lock.unlock()
    }

    /// After a failed write: once every chunk taken before the failure has come back, puts all their events at
    /// the front of the queue, in order (they are older than anything queued). Lock held.
    func finishFailedSpill() {
        guard spillFailing, nextTicketToWrite == nextTicket else { return }
        inTransit -= failedSpill.count
        requeueFront(failedSpill)
        failedSpill = []
        spillFailing = false
        lock.broadcast()
    }

    /// Adopts the spools of dead processes with this producer name (`<name>.spool`, `<name>-<pid>.spool` that no
    /// live process holds): they are replayed before this emitter's own queue, each exactly as far as the daemon
    /// acknowledges, and a `<name>-<pid>.spool` is deleted once delivered. Taking a spool's lock is what adopts
    /// it, so two live processes never replay the same one.
    func adoptOrphans() {
        guard let spool, let dir = options.spoolDirectory else { return }
        lastAdoptionScan = monotonicNanos()
        let held = lock.withLock { Set(adopted.map(\.path)) }
        for path in Spool.siblings(directory: dir, name: options.producerName) where path != spool.path && !held.contains(path) {
            guard let orphan = Spool(adopting: path, faults: options.spoolFaults) else { continue }
            if orphan.isEmpty {
                if orphan.isPidSuffixed { orphan.removeFiles() }
                continue
            }
            options.notice("adopting spool \(path) (\(orphan.pendingBytes) bytes) of a process that is gone; replaying it")
            lock.withLock {
                adopted.append(orphan)
                lock.broadcast()
            }
        }
    }
}
