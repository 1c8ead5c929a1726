import Dispatch
import EventStore
import GridEvents
import GridEventsLogging
import NIOConcurrencyHelpers

/// grid-eventd's own log records as `log` events (`--log-events LEVEL`): straight into its own writer (not through
/// the socket), so they never wait for a connection. What keeps it from feeding on itself: a record logged on the
/// writer thread (the writer reporting its own failures) is never stored, and at most `maxPerSecond` records a
/// second are (the rest are counted in `dropped`); records logged before the store is open are dropped too (both
/// counts are in `/api/stats` `own_logs` and `/metrics`). The
/// caller only counts and queues: the event is handed to the writer from a queue of the sink's own (at most 1,000
/// waiting), so a record logged while the store holds a lock of its own (a notice from maintenance) never waits on
/// the store.
public final class DaemonLogSink: GridEventsLogSink, @unchecked Sendable {
    private let lock = NIOLock()
    private var writer: BatchWriter?
    private var tag = ""
    private var sequence: UInt64 = 0
    private var windowStart: UInt64 = 0
    private var windowCount = 0
    private var droppedCount = 0
    private var suppressedCount = 0
    private var waiting = 0
    private let queue = DispatchQueue(label: "grid-eventd.own-logs")
    public let maxPerSecond: Int

    public init(maxPerSecond: Int = 200) {
        self.maxPerSecond = maxPerSecond
    }

    /// Records dropped: before the store was open, or over the rate.
    public var dropped: Int { lock.withLock { droppedCount } }
    /// Records logged on the writer thread, never stored.
    public var suppressed: Int { lock.withLock { suppressedCount } }

    func attach(_ writer: BatchWriter) {
        let t = ProducerTag.random()
        lock.withLock {
            self.writer = writer
            tag = t
        }
    }

    func detach() { lock.withLock { writer = nil } }

    public func emitLog(_ entry: LogEntry, timestamp: Int64) {
        let now = monotonicNanos()
        let next: (BatchWriter, UInt64, String)? = lock.withLock {
            guard let writer else {
                droppedCount += 1
                return nil
            }
            if writer.isWriterThread {
                suppressedCount += 1
                return nil
            }
            if now - windowStart >= 1_000_000_000 {
                windowStart = now
                windowCount = 0
            }
            guard windowCount < maxPerSecond, waiting < 1000 else {
                droppedCount += 1
                return nil
            }
            windowCount += 1
            waiting += 1
            sequence += 1
            return (writer, sequence, tag)
        }
        guard let (writer, seq, tag) = next else { return }
        let event = GridEvent(id: GridEvent.makeId(typeName: "log", producerTag: tag, sequence: seq), timestamp: timestamp, kind: .log(entry))
        queue.async { [self] in
            let attached = lock.withLock { () -> Bool in
                waiting -= 1
                return self.writer != nil
            }
            if attached { writer.appendOwn(event) }
        }
    }
}
