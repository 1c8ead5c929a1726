import EventStore
import GridEvents
import Logging
#if canImport(Glibc)
import Glibc
#endif

/// The daemon's single writer. Connections hand it decoded batches; it takes everything waiting, drops what is
/// already stored (a batch resent after a lost ack), appends each batch as its own frame in one store call, so
/// all of them share one fdatasync (group commit across producers), and then completes each batch.
final class BatchWriter: @unchecked Sendable {
    struct Job {
        var producer: String
        var firstSequence: UInt64
        var events: [GridEvent]
        var receivedAt: UInt64
        var completion: @Sendable (Result<UInt64, StoreError>) -> Void
    }

    private let store: EventStore
    private let logger: Logger
    private let lock = ConditionLock()
    private var queue: [Job] = []
    private var stopping = false
    private var running = 0
    private var thread: pthread_t?
    let metrics = IngestMetrics()

    init(store: EventStore, logger: Logger) {
        self.store = store
        self.logger = logger
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

    /// Queues a batch; `completion` runs on the writer thread with the sequence now durable, or the error.
    func submit(_ job: Job) {
        lock.withLock {
            queue.append(job)
            lock.broadcast()
        }
    }

    /// Jobs queued or being written.
    var pending: Int { lock.withLock { queue.count + running } }

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
            lock.withLock { running = 0 }
        }
    }

    private func write(_ jobs: [Job]) {
        var batches: [[Record]] = []
        var writing: [(job: Job, through: UInt64)] = []
        for job in jobs {
            let through = job.firstSequence + UInt64(job.events.count) - 1
            var records: [Record] = []
            records.reserveCapacity(job.events.count * 4)
            // A resent event (after a lost ack, a reconnect or a daemon restart) carries the same id: stored once.
            for e in job.events where !store.contains(id: e.id) {
                records.append(contentsOf: e.records())
            }
            if records.isEmpty {
                finish(job, through: through, result: .success(through))
            } else {
                batches.append(records)
                writing.append((job, through))
            }
        }
        guard !batches.isEmpty else { return }
        do throws(StoreError) {
            _ = try store.append(batches: batches)
            for (job, through) in writing { finish(job, through: through, result: .success(through)) }
        } catch {
            if error.code == .invalidArgument || error.code == .batchTooLarge, batches.count > 1 {
                // One batch is bad: write the others on their own so only it fails.
                for (k, (job, through)) in writing.enumerated() {
                    do throws(StoreError) {
                        _ = try store.append(batches[k])
                        finish(job, through: through, result: .success(through))
                    } catch {
                        finish(job, through: through, result: .failure(error))
                    }
                }
            } else {
                logger.error("append failed: \(error)")
                for (job, through) in writing { finish(job, through: through, result: .failure(error)) }
            }
        }
    }

    private func finish(_ job: Job, through: UInt64, result: Result<UInt64, StoreError>) {
        if case .success = result { metrics.record(events: job.events.count, receivedAt: job.receivedAt) }
        job.completion(result)
    }

    /// Appends one event the daemon produced itself (its metrics), through the same writer.
    func appendOwn(_ event: GridEvent) {
        submit(Job(producer: "grid-eventd", firstSequence: 1, events: [event], receivedAt: monotonicNanos(), completion: { _ in }))
    }
}

/// Ingest counters and receive-to-ack latencies (the last 4096), for /api/stats and `storage_metrics`.
final class IngestMetrics: @unchecked Sendable {
    private let lock = ConditionLock()
    private var totalEvents = 0
    private var latencies = [UInt64](repeating: 0, count: 4096)
    private var latencyCount = 0
    private var windowStart = monotonicNanos()
    private var windowEvents = 0
    private var lastRate = 0.0

    func record(events: Int, receivedAt: UInt64) {
        let now = monotonicNanos()
        lock.withLock {
            totalEvents += events
            windowEvents += events
            latencies[latencyCount % latencies.count] = now - receivedAt
            latencyCount += 1
        }
    }

    /// Events per second since the previous call (or since start).
    func takeRate() -> Double {
        lock.withLock {
            let now = monotonicNanos()
            let seconds = Double(now - windowStart) / 1e9
            lastRate = seconds > 0 ? Double(windowEvents) / seconds : 0
            windowStart = now
            windowEvents = 0
            return lastRate
        }
    }

    var ingestedEvents: Int { lock.withLock { totalEvents } }

    /// p99 of receive-to-ack time, microseconds.
    var ackP99Micros: Int {
        lock.withLock {
            let n = min(latencyCount, latencies.count)
            guard n > 0 else { return 0 }
            let sorted = latencies[0..<n].sorted()
            return Int(sorted[min(n - 1, n * 99 / 100)] / 1000)
        }
    }
}

/// Resident memory of this process, bytes (from /proc/self/statm).
func residentBytes() -> Int {
    guard let f = fopen("/proc/self/statm", "r") else { return 0 }
    defer { fclose(f) }
    var size = 0
    var resident = 0
    guard fscanf_statm(f, &size, &resident) else { return 0 }
    return resident * Int(sysconf(Int32(_SC_PAGESIZE)))
}

private func fscanf_statm(_ f: UnsafeMutablePointer<FILE>, _ size: inout Int, _ resident: inout Int) -> Bool {
    var buffer = [CChar](repeating: 0, count: 256)
    guard fgets(&buffer, 256, f) != nil else { return false }
    let fields = String(cString: buffer).split(separator: " ")
    guard fields.count >= 2, let s = Int(fields[0]), let r = Int(fields[1]) else { return false }
    size = s
    resident = r
    return true
}

