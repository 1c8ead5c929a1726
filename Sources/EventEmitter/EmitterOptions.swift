@_spi(Testing) import EmitterSpool
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// How an emitter batches, spools and retries. Every bound here is a hard limit on memory or disk.
public struct EmitterOptions: Sendable {
    /// Names this producer; the spool file is named after it, so a restarted process finds its spool.
    public var producerName: String
    /// Events held in memory (default 100,000). When full and the spool is full too, the oldest are dropped
    /// and counted.
    public var queueCapacity = 100_000
    /// Queue length above which events spill to the spool even while connected (default 80% of capacity).
    public var highWaterMark: Int?
    /// Largest batch sent at once: events and encoded bytes.
    public var maxBatchEvents = 4096
    public var maxBatchBytes = 1 << 20
    /// How long the worker waits for more events before sending a partial batch.
    public var batchDelaySeconds = 0.002
    /// Where the spool lives (default `$EVENT_SPOOL_DIR`, else `/tmp/grid-events-spool-<uid>`); nil disables it.
    public var spoolDirectory: String?
    /// Largest spool file (default 256 MiB).
    public var spoolLimitBytes = 256 << 20
    /// Reconnect backoff: doubles from `backoffInitial` up to `backoffMax` seconds.
    public var backoffInitialSeconds = 0.05
    public var backoffMaxSeconds = 2.0
    /// How long to wait for an ack before treating the connection as dead.
    public var ackTimeoutSeconds = 10.0
    /// What `emit` does when the queue is full: `.dropOldest` (default; `emit` never waits: the oldest events
    /// move to the spool, and only when the spool is full too are the oldest dropped and counted) or
    /// `.wait(seconds:)` (for tools that must not lose anything: `emit` waits up to that long for room, then
    /// gives up on that event, returning 0).
    public var whenFull: WhenFull = .dropOldest
    /// Keep one bit per emitted event saying whether it was acknowledged (`EventEmitter.isAcknowledged`), so a
    /// tool can say exactly which events were not stored. Off by default (it grows with the events emitted).
    public var trackAcknowledgements = false
    /// Test hook: failures injected into the spool's system calls, and counts of them.
    @_spi(Testing) public var spoolFaults: SpoolFaults?
    /// Receives the emitter's few notices (disabled, spooling, reconnected, dropped). Default: standard error.
    public var notice: @Sendable (String) -> Void = { message in
        let line = Array(("[grid-events] " + message + "\n").utf8)
        _ = line.withUnsafeBytes { write(2, $0.baseAddress, $0.count) }
    }

    public init(producerName: String = EmitterOptions.processName()) {
        self.producerName = producerName
        if let dir = getenv("EVENT_SPOOL_DIR") {
            spoolDirectory = String(cString: dir)
        } else {
            spoolDirectory = "/tmp/grid-events-spool-\(getuid())"
        }
    }

    /// The running program's name.
    public static func processName() -> String {
        guard let exe = try? String(contentsOfFile: "/proc/self/comm", encoding: .utf8) else { return "producer" }
        let name = exe.trimmingCharacters(in: .whitespacesAndNewlines).filter { $0.isLetter || $0.isNumber || $0 == "-" || $0 == "_" }
        return name.isEmpty ? "producer" : name
    }

    /// `name` when it is 1-64 of `A-Z a-z 0-9 - _ .` not starting with `.`, else the same with every other byte
    /// replaced by `_` (cut to 64, `emitter` when empty). The name becomes the spool file's name and the start of
    /// the producer id, so it must not reach outside the spool directory.
    public static func safeProducerName(_ name: String) -> String {
        var bytes = Array(name.utf8.prefix(64)).map { c -> UInt8 in
            switch c {
            case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
                UInt8(ascii: "-"), UInt8(ascii: "_"), UInt8(ascii: "."):
                return c
            default: return UInt8(ascii: "_")
            }
        }
        if bytes.first == UInt8(ascii: ".") { bytes[0] = UInt8(ascii: "_") }
        return bytes.isEmpty ? "emitter" : String(decoding: bytes, as: UTF8.self)
    }

    /// See `whenFull`.
    public enum WhenFull: Sendable, Equatable {
        /// Never wait: spool the oldest, drop the oldest when the spool is full too.
        case dropOldest
        /// Wait for room up to this many seconds (the worker frees it by sending, or by spooling while the daemon is
        /// unreachable); after that the event is not queued.
        case wait(seconds: Double)
    }

    var effectiveHighWaterMark: Int { highWaterMark ?? max(1, queueCapacity * 8 / 10) }
}

/// Counters an emitter keeps. All monotonic except `queued` and `spoolBytes`.
public struct EmitterStats: Sendable, Equatable {
    /// Events passed to `emit` and queued.
    public var emitted = 0
    /// This emitter's own events (those passed to `emit`) that the daemon acknowledged as durable.
    public var acked = 0
    /// Events of earlier processes (this producer name's spool from before, adopted spools of dead processes)
    /// that this emitter replayed and the daemon acknowledged.
    public var replayed = 0
    /// `events_dropped` reports this emitter made and the daemon acknowledged.
    public var reports = 0
    /// `emit` calls that found no room within `whenFull: .wait(seconds:)` (those events were not queued).
    public var timedOut = 0
    /// Events written to the spool.
    public var spooled = 0
    /// Events of this emitter dropped because queue and spool were full (or they were invalid, or the daemon
    /// refused them).
    public var dropped = 0
    /// Successful connections after the first.
    public var reconnects = 0
    /// Events in memory now.
    public var queued = 0
    /// Bytes in the spool not yet acknowledged.
    public var spoolBytes = 0
    /// Spool bytes skipped on replay because they failed their checksum (the events there are lost; each
    /// damaged region is reported through `notice` with its offset).
    public var spoolDamagedBytes = 0
    /// Times the daemon answered that it could not store a batch (no space, failed closed).
    public var storeRefusals = 0
    public var connected = false
}


