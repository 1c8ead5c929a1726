import EmitterSpool
import Foundation
import GridBase
import GridEvents
#if canImport(Glibc)
import Glibc
#endif

/// The client library every grid process links: `emit` puts an event in a bounded in-memory queue and returns; a
/// background thread batches events to grid-eventd over its Unix socket, waits for each batch's ack, and resends
/// what was not acked after a reconnect. A second thread writes the on-disk spool.
///
/// Limits and what happens at each (README, "The emitter"):
/// - queue (`queueCapacity`, default 100,000 events): above `highWaterMark`, or while the daemon is unreachable,
///   events spill to the spool. When the queue is full, `whenFull` decides: `.dropOldest` (the default, `emit`
///   never waits) first moves the oldest events to the spool itself and drops the oldest only when the spool is
///   full (or failed); `.wait(seconds:)` waits for room that long.
/// - spool (`spoolLimitBytes`, default 256 MiB): replayed in order once the daemon is back, before newer events;
///   it survives this process's restart, and spools of dead processes with the same producer name are adopted.
/// - dropped events are reported as one `events_dropped` event once the daemon is reachable.
///
/// An emitter nobody holds any more is freed: it stops its threads, keeping what it had not delivered in its
/// spool (as `close(timeout: 0)` does).
public final class EventEmitter: @unchecked Sendable {
    /// Where events go, or nil when disabled.
    public let socketPath: String?
    public let options: EmitterOptions
    /// 12 hex digits, random per emitter: part of every event id, so ids never collide across producers.
    public let producerTag: String
    /// `<producer name>-<tag>`, as sent in hello and batches.
    public let producerId: String
    /// The threads hold the core, never this object, so dropping the last reference to it ends them.
    let core: EmitterCore?

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
        let tag = ProducerTag.random()
        producerTag = tag
        producerId = options.producerName + "-" + tag
        var path = storage?.trimmingCharacters(in: .whitespacesAndNewlines) ?? ""
        if path.hasPrefix("unix://") { path.removeFirst("unix://".count) }
        if path.isEmpty {
            socketPath = nil
            core = nil
            options.notice("EVENT_STORAGE is not set; events are disabled")
            return
        }
        socketPath = path
        core = EmitterCore(socketPath: path, options: options, producerTag: tag, producerId: producerId)
    }

    deinit { core?.close(timeout: 0) }

    /// `EVENT_STORAGE` from the environment.
    public static func environmentStorage() -> String? {
        getenv("EVENT_STORAGE").map { String(cString: $0) }
    }

    public var isEnabled: Bool { socketPath != nil }

    /// Queues an event; returns its sequence number, 0 when disabled or when, with `whenFull: .wait`, no room
    /// came within the wait (counted in `stats.timedOut`). With the default `.dropOldest` it never waits for I/O
    /// or for the daemon. The event's id is `GridEvent.makeId(typeName:producerTag:sequence:)`.
    @discardableResult
    public func emit(_ kind: GridEventKind, at timestamp: Int64? = nil) -> UInt64 {
        core?.enqueue(kind, timestamp: timestamp, id: nil) ?? 0
    }

    /// Queues an event with an id of the caller's choosing (it must start with `event-<type name>-`; invalid
    /// events are dropped and counted). Returns the sequence number (0 as for `emit(_:at:)`).
    @discardableResult
    public func emit(_ kind: GridEventKind, id: String, at timestamp: Int64? = nil) -> UInt64 {
        core?.enqueue(kind, timestamp: timestamp, id: id) ?? 0
    }

    /// As `emit(_:id:at:)` for an event the caller has already checked with `GridEvent.validate(kind:id:)` (an
    /// importer that reports bad input itself): the worker does not check it again.
    @discardableResult
    public func emit(checked kind: GridEventKind, id: String, at timestamp: Int64) -> UInt64 {
        core?.enqueue(kind, timestamp: timestamp, id: id, validated: true) ?? 0
    }

    /// The id of the event emitted with `sequence` and `kind`.
    public func id(of kind: GridEventKind, sequence: UInt64) -> String {
        GridEvent.makeId(typeName: kind.typeName, producerTag: producerTag, sequence: sequence)
    }

    /// Waits until everything emitted so far is acknowledged, and the spools this emitter replays (its own from
    /// earlier runs, adopted ones) are delivered, at most `timeout` seconds. Returns true when nothing is left
    /// pending and no event of this emitter was dropped since the previous `flush` returned.
    @discardableResult
    public func flush(timeout: Double = 10) -> Bool {
        core?.flush(timeout: timeout) ?? true
    }

    public var stats: EmitterStats { core?.stats ?? EmitterStats() }

    /// Whether anything is still to be delivered (queued, in flight, spooled, in an adopted spool).
    public var hasPending: Bool { core?.hasPending ?? false }

    /// Whether the event emitted with `sequence` was acknowledged. Needs `options.trackAcknowledgements`
    /// (false otherwise).
    public func isAcknowledged(sequence: UInt64) -> Bool { core?.isAcknowledged(sequence) ?? false }

    /// The spool file this emitter writes, when it has one.
    public var spoolPath: String? { core?.spool?.path }

    /// Flushes (up to `timeout`), then stops the threads. What is not acked by then stays in the spool when
    /// there is one.
    public func close(timeout: Double = 5) { core?.close(timeout: timeout) }
}
