import EventQuery
import EventStore
import GridEvents
import Logging
#if canImport(Glibc)
import Glibc
#endif

/// The daemon's single writer. Connections hand it decoded batches; it takes everything waiting, drops what is
/// already stored (a batch resent after a lost ack), prepares the rest, appends each batch as its own frame in one
/// store call, so all of them share one fdatasync (group commit across producers), and then completes each batch.
/// The store is touched only here (and by reads through the HTTP thread pool), never on a SwiftNIO event loop.
final class BatchWriter: @unchecked Sendable {
    /// A batch for the writer, as it arrived: the writer thread checks it against the store and prepares its
    /// frame (`prepare(_:)`), so no event loop or async task ever waits on the store's index or the disk.
    struct Job {
        /// What the events are, before the writer prepared them.
        enum Input {
            /// Events from a producer, HTTP or the daemon itself: mapped to records (`GridEvent.records()`).
            case events([GridEvent])
            /// Events replicated from another host, with the records they were stored as there.
            case replicated([(event: GridEvent, records: [Record])])
        }

        var producer: String
        /// Sequence of the batch's last event: what the ack confirms.
        var through: UInt64
        var eventCount: Int
        var input: Input
        /// The events not yet stored, prepared on the writer thread: one frame, or several when the batch is larger
        /// than a segment holds; empty when all were already stored (a resend).
        var prepared: [EventStore.PreparedBatch] = []
        /// The events being stored (for the live feed).
        var newEvents: [GridEvent] = []
        /// How many of `newEvents` each of `prepared` holds, in order (so each event's frame is known).
        var batchEventCounts: [Int] = []
        var receivedAt: UInt64
        var completion: @Sendable (Result<Done, StoreError>) -> Void

        /// A producer's batch of `events`, the first with sequence `firstSequence`.
        init(producer: String, firstSequence: UInt64, events: [GridEvent], receivedAt: UInt64,
             completion: @escaping @Sendable (Result<Done, StoreError>) -> Void) {
            self.producer = producer
            self.through = events.isEmpty ? (firstSequence == 0 ? 0 : firstSequence - 1) : firstSequence + UInt64(events.count) - 1
            self.eventCount = events.count
            self.input = .events(events)
            self.receivedAt = receivedAt
            self.completion = completion
        }

        /// Replicated events with their records (the aggregator's sink); acknowledged as sequence 0.
        init(replicated batch: [(event: GridEvent, records: [Record])], receivedAt: UInt64,
             completion: @escaping @Sendable (Result<Done, StoreError>) -> Void) {
            self.producer = "replication"
            self.through = 0
            self.eventCount = batch.count
            self.input = .replicated(batch)
            self.receivedAt = receivedAt
            self.completion = completion
        }
    }

    /// A job once durable: the sequence its ack confirms and how many of its events were new to the store.
    struct Done: Sendable {
        var through: UInt64
        var stored: Int
    }

    /// Fills in a job's frames on the writer thread: drops the events already stored (a resend after a lost ack,
    /// a reconnect or a daemon restart carries the same ids), maps the rest to records and prepares them.
    /// - Throws: `StoreError` (`batchTooLarge`, `invalidArgument`) when an event cannot be stored at all; the job
    ///   is then refused alone.
    func prepare(_ job: inout Job) throws(StoreError) {
        switch job.input {
        case .events(let events):
            let stored = store.contains(ids: events.map(\.id), timestamps: events.map(\.timestamp))
            var fresh: [GridEvent] = []
            fresh.reserveCapacity(events.count)
            for (e, isStored) in zip(events, stored) where !isStored { fresh.append(e) }
            let prepared = fresh.isEmpty ? [] : try prepare(fresh[...])
            job.prepared = prepared.map(\.0)
            job.batchEventCounts = prepared.map(\.1)
            job.newEvents = fresh
        case .replicated(let batch):
            let stored = store.contains(ids: batch.map(\.event.id), timestamps: batch.map(\.event.timestamp))
            var fresh: [(event: GridEvent, records: [Record])] = []
            fresh.reserveCapacity(batch.count)
            var seen = Set<String>(minimumCapacity: batch.count)
            for (b, isStored) in zip(batch, stored) where !isStored && seen.insert(b.event.id).inserted { fresh.append(b) }
            var records: [Record] = []
            var count = 0
            for b in fresh {
                if records.count + b.records.count > 16_384 {
                    job.prepared.append(try store.prepare(records))
                    job.batchEventCounts.append(count)
                    records = []
                    count = 0
                }
                records += b.records
                count += 1
            }
            if !records.isEmpty {
                job.prepared.append(try store.prepare(records))
                job.batchEventCounts.append(count)
            }
            job.newEvents = fresh.map(\.event)
        }
    }

    /// Encodes `events` as one frame, or, when that is more than a segment holds (a small `--segment-size`), as
    /// several frames of consecutive events. Each frame is atomic; the batch is acked once all are durable, and
    /// after a crash between them a resend stores the rest once.
    private func prepare(_ events: ArraySlice<GridEvent>) throws(StoreError) -> [(EventStore.PreparedBatch, Int)] {
        var records: [Record] = []
        records.reserveCapacity(events.count * 4)
        for e in events { records.append(contentsOf: e.records()) }
        do throws(StoreError) {
            return [(try store.prepare(records), events.count)]
        } catch where error.code == .batchTooLarge && events.count > 1 {
            let mid = events.startIndex + events.count / 2
            return try prepare(events[..<mid]) + prepare(events[mid...])
        }
    }

    private let store: EventStore
    private let logger: Logger
    /// Receives every event once it is durable.
    let feed: LiveFeed
    private let lock = ConditionLock()
    private var queue: [Job] = []
    private var stopping = false
    private var running = 0
    private var thread: pthread_t?
    let metrics = IngestMetrics()
    /// Told of every job once it is durable, on the writer thread (the Prometheus counters). Set before `start()`.
    var onDurable: (@Sendable (Job) -> Void)?

    /// Whether the caller runs on the writer thread: what it logs reports the writer's own work or failures, and
    /// grid-eventd never stores those as events of its own (storing them would loop through the writer).
    var isWriterThread: Bool { thread.map { pthread_equal($0, pthread_self()) != 0 } ?? false }
    /// Receives every grid event once stored (the state behind `/api/grid/agents`).
    let gridState: GridStateKeeper?

    init(store: EventStore, logger: Logger, keepaliveSeconds: Double = 15, gridState: GridStateKeeper? = nil) {
        self.store = store
        self.logger = logger
        self.gridState = gridState
        self.feed = LiveFeed(keepaliveSeconds: keepaliveSeconds)
    }

    func start() {
        let box = Unmanaged.passRetained(self)
        var t = pthread_t()
        pthread_create(&t, nil, { arg in
            let writer = Unmanaged<BatchWriter>.fromOpaque(arg!).takeRetainedValue()
            writer.loop()
            return nil
        }, box.toOpaque())
        thread = t
    }

    /// Queues a batch; `completion` runs on the writer thread once it is durable, or with the error (a job whose
    /// events cannot be stored at all fails alone, before the group is written).
    func submit(_ job: Job) {
        lock.withLock {
            queue.append(job)
            lock.broadcast()
        }
    }

    /// Jobs queued or being written.
    var pending: Int { lock.withLock { queue.count + running } }

    /// Blocks until no job is queued or being written, or `seconds` have passed; true when drained. Call it off
    /// the async executor and the event loops (shutdown runs it on a pool thread).
    func waitDrained(seconds: Double) -> Bool {
        let deadline = monotonicNanos() + UInt64(max(0, seconds) * 1e9)
        return lock.withLock {
            while queue.count + running > 0 {
                let now = monotonicNanos()
                guard now < deadline else { return false }
                _ = lock.wait(seconds: Double(deadline - now) / 1e9)
            }
            return true
        }
    }

    /// Finishes every queued job, then stops the thread.
    func stop() {
        lock.withLock {
            stopping = true
            lock.broadcast()
        }
        if let thread { pthread_join(thread, nil) }
        thread = nil
    }

    private func loop() {
        while true {
            var jobs: [Job] = []
            lock.withLock {
                while queue.isEmpty && !stopping { lock.wait() }
                jobs = queue
                queue.removeAll(keepingCapacity: true)
                running = jobs.count
            }
            if jobs.isEmpty { return }  // stopping and drained
            write(jobs)
            lock.withLock {
                running = 0
                if queue.isEmpty { lock.broadcast() }  // wakes `waitDrained`
            }
        }
    }

    /// Writes a group and completes its jobs in submission order, only after everything they cover is durable:
    /// a job whose events were all stored already (a resend) is acked after the same sync, or after a barrier,
    /// never before the data it found in the index is on disk.
    private func write(_ received: [Job]) {
        var jobs: [Job] = []
        jobs.reserveCapacity(received.count)
        for var job in received {
            do throws(StoreError) {
                try prepare(&job)
                jobs.append(job)
            } catch {
                job.completion(.failure(error))  // this job alone: its events cannot be stored
            }
        }
        let writing = jobs.flatMap(\.prepared)
        let toFold = gridState == nil ? [] : gridEventsToFold(jobs)
        var failure: StoreError?
        var receipts: [AppendReceipt] = []
        do throws(StoreError) {
            if writing.isEmpty {
                try store.barrier()
            } else {
                // Every batch its own frame, one fdatasync for all of them (group commit).
                receipts = try store.append(prepared: writing)
            }
        } catch {
            failure = error
        }
        report(failure)
        if let gridState, !toFold.isEmpty {
            // Folded on the keeper's thread; the bounds are the store's now, before the next group is appended.
            if failure == nil {
                gridState.enqueue(toFold, bounds: store.logBounds)
            } else {
                // Frames before the failing one may be stored (and would never be resent as new): fold exactly
                // those the store now holds.
                let stored = store.contains(ids: toFold.map(\.id), timestamps: toFold.map(\.timestamp))
                gridState.enqueue(zip(toFold, stored).filter(\.1).map(\.0), bounds: store.logBounds)
            }
        }
        var next = 0
        for job in jobs {
            let mine = failure == nil && receipts.count >= next + job.prepared.count ? Array(receipts[next..<(next + job.prepared.count)]) : []
            next += job.prepared.count
            finish(job, receipts: mine, result: failure.map { .failure($0) } ?? .success(Done(through: job.through, stored: job.newEvents.count)))
        }
    }

    /// The grid events of a group the store will index, in the order it stores them. Each job's events were
    /// checked against the store on this thread just before the group (`prepare(_:)`), so none is stored yet; an
    /// event repeated inside the group (the same batch resent on another connection) is left out after its first
    /// copy, as the store will ignore it.
    private func gridEventsToFold(_ jobs: [Job]) -> [GridEvent] {
        let count = jobs.reduce(0) { $0 + $1.newEvents.count }
        var seen = Set<String>(minimumCapacity: count)
        var out: [GridEvent] = []
        out.reserveCapacity(count)
        for job in jobs {
            for e in job.newEvents where GridFold.folds(e.type) && seen.insert(e.id).inserted { out.append(e) }
        }
        return out
    }

    private var failingSince: UInt64?
    private var failuresUnreported = 0
    private var lastFailureLog: UInt64 = 0

    /// Logs a store failure once when it starts (then at most every 10 s with a count) and once when writes
    /// succeed again, so a full disk does not flood the log. A failed-closed store is logged as critical: it
    /// acknowledges nothing more until grid-eventd is restarted.
    private func report(_ failure: StoreError?) {
        let now = monotonicNanos()
        guard let failure else {
            if failingSince != nil {
                logger.notice("writes succeed again after \((now - failingSince!) / 1_000_000_000) s of refused batches")
                failingSince = nil
                failuresUnreported = 0
            }
            return
        }
        let first = failingSince == nil
        if first { failingSince = now }
        guard first || now - lastFailureLog >= 10_000_000_000 else {
            failuresUnreported += 1
            return
        }
        lastFailureLog = now
        let more = failuresUnreported > 0 ? " (\(failuresUnreported) more refused since the last report)" : ""
        failuresUnreported = 0
        switch failure.code {
        case .syncFailed, .failedClosed:
            logger.critical("store failed closed, nothing more is acknowledged: \(failure); restart grid-eventd to recover\(more)")
        case .noSpace:
            logger.error("refusing writes, no space left: \(failure); producers spool until space is freed\(more)")
        default:
            logger.error("append failed: \(failure)\(more)")
        }
    }

    private func finish(_ job: Job, receipts: [AppendReceipt], result: Result<Done, StoreError>) {
        if case .success = result {
            metrics.record(events: job.eventCount, receivedAt: job.receivedAt)
            feed.publish(Self.positioned(job, receipts: receipts))
            onDurable?(job)
        }
        job.completion(result)
    }

    /// Each new event of a job with its stream position: its frame's sequence (from the receipts, one per prepared
    /// batch) and its index among that frame's events.
    static func positioned(_ job: Job, receipts: [AppendReceipt]) -> [(GridEvent, StreamPosition?)] {
        guard receipts.count == job.batchEventCounts.count, job.batchEventCounts.reduce(0, +) == job.newEvents.count else {
            return job.newEvents.map { ($0, nil) }
        }
        var out: [(GridEvent, StreamPosition?)] = []
        out.reserveCapacity(job.newEvents.count)
        var k = 0
        for (receipt, count) in zip(receipts, job.batchEventCounts) {
            for i in 0..<count {
                out.append((job.newEvents[k], StreamPosition.after(frame: receipt.sequence, event: i)))
                k += 1
            }
        }
        return out
    }

    /// Appends one event the daemon produced itself (its metrics), through the same writer.
    func appendOwn(_ event: GridEvent) {
        submit(Job(producer: "grid-eventd", firstSequence: 1, events: [event], receivedAt: monotonicNanos(), completion: { _ in }))
    }
}
