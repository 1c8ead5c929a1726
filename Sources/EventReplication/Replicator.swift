import EventStore
import Foundation
import Logging
import NATSClient
import NIOConcurrencyHelpers
import NIOCore

/// Host side of replication: ships every committed batch frame of the local store to a JetStream stream, in
/// order, from a cursor kept in the data directory. Never in the path of local acks: it only reads the store.
/// While NATS is unreachable the local store is the buffer; once back it catches up with up to `maxInFlight`
/// publishes awaiting their PubAck. The cursor advances only over frames JetStream acknowledged; a publish that
/// fails rewinds to the cursor and resends (the `Nats-Msg-Id` `<host>-<sequence>` makes the resend a duplicate the
/// stream ignores within its duplicate window).
public final class Replicator: @unchecked Sendable {
    public let config: ReplicationConfig
    let store: EventStore
    let logger: Logger
    let cursorFile: CursorFile
    private let lock = NIOLock()
    private var connection: NATSConnection?
    private var task: Task<Void, Never>?
    private var state = ReplicatorStats()

    public init(store: EventStore, config: ReplicationConfig, logger: Logger) {
        self.store = store
        self.config = config
        self.logger = logger
        self.cursorFile = CursorFile(directory: store.directory)
        let saved: UInt64
        do {
            saved = try cursorFile.read(stream: config.stream) ?? 0
        } catch {
            logger.error("replication: \(error); starting from the beginning (duplicates are ignored by id)")
            saved = 0
        }
        state.cursor = saved
        state.hostId = config.hostId
        state.stream = config.stream
        state.subject = config.subject
    }

    /// The highest frame sequence JetStream acknowledged (the retention floor).
    public var cursor: UInt64 { lock.withLock { state.cursor } }

    /// Counters and state for `/api/stats`.
    public var stats: ReplicatorStats {
        var s = lock.withLock { state }
        s.headSequence = store.lastWrittenSequence
        s.pendingFrames = s.headSequence > s.cursor ? s.headSequence - s.cursor : 0
        s.connected = connection?.connectionState == .connected
        s.server = connection?.connectedServer?.description
        return s
    }

    /// Starts connecting (in the background: an unreachable cluster is logged once and retried) and shipping.
    public func start() {
        let c = NATSConnection(options: config.natsOptions(name: "grid-eventd replicator \(config.hostId)", logger: logger))
        lock.withLock { connection = c }
        task = Task { await self.run(c) }
    }

    /// Stops shipping, saves the cursor and closes the connection.
    public func stop() async {
        task?.cancel()
        await task?.value
        await connection?.close()
        try? cursorFile.write(stream: config.stream, sequence: cursor)
    }

    private func note(_ update: (inout ReplicatorStats) -> Void) { lock.withLock { update(&state) } }

    private func run(_ c: NATSConnection) async {
        let js = JetStream(c)
        await ensureStream(c, js)
        var cursor = self.cursor
        var next = cursor
        var inflight: [(sequence: UInt64, events: Int, task: Task<Int, Error>)] = []
        var lastSaved = cursor
        var lastSaveTime = Date.distantPast
        var failures = 0
        while !Task.isCancelled {
            do {
                if inflight.count < config.maxInFlight, c.connectionState == .connected {
                    // Up to 1,024 frames at a time; consecutive frames share a message up to the size limit, so a
                    // backlog (catching up after an outage) goes out in few large messages, while a frame that
                    // is alone goes out at once.
                    let frames = try store.committedFrames(
                        after: next, maxBytes: config.maxMessageBytes * 8, maxFrames: 1024)
                    let maxBytes = min(config.maxMessageBytes, max(4096, (c.serverInfo?.maxPayload ?? (1 << 20)) - 4096))
                    let head = store.lastWrittenSequence
                    let units = ReplicationMessage.pack(hostId: config.hostId, frames: frames, previous: next, maxBytes: maxBytes)
                    for unit in units.prefix(config.maxInFlight - inflight.count) {
                        // Published here, in frame order (the PUBs are queued before the next unit's); only the
                        // PubAcks are awaited concurrently.
                        var acks: [EventLoopFuture<PubAck>] = []
                        for m in unit.messages {
                            var h = NATSHeaders()
                            h["Grid-Host-Head"] = String(head)
                            h["Grid-Published"] = String(GridClock.nowMicros())
                            acks.append(try js.startPublish(config.subject, payload: m.encoded(), messageId: m.messageId, headers: h))
                        }
                        let task = Task { () throws -> Int in
                            var duplicates = 0
                            for a in acks where try await a.get().isDuplicate { duplicates += 1 }
                            return duplicates
                        }
                        inflight.append((unit.last, unit.events, task))
                        next = unit.last
                    }
                }
                if inflight.isEmpty {
                    // At most every 100 ms, here too: a save (an fsync) after every message would be on the path of
                    // the next one. Idle, the loop comes back every 5 ms and saves once the 100 ms are up.
                    if cursor != lastSaved, Date().timeIntervalSince(lastSaveTime) > 0.1 {
                        try cursorFile.write(stream: config.stream, sequence: cursor)
                        lastSaved = cursor
                        lastSaveTime = Date()
                    }
                    try await Task.sleep(for: .milliseconds(c.connectionState == .connected ? 5 : 50))
                    continue
                }
                let first = inflight.removeFirst()
                let duplicates = try await first.task.value
                cursor = first.sequence
                failures = 0
                note {
                    $0.cursor = cursor
                    $0.publishedMessages += 1
                    $0.publishedEvents += first.events
                    $0.duplicates += duplicates
                    $0.lastPublish = GridClock.nowMicros()
                    $0.lastError = nil
                }
                if cursor != lastSaved, Date().timeIntervalSince(lastSaveTime) > 0.1 {
                    try cursorFile.write(stream: config.stream, sequence: cursor)
                    lastSaved = cursor
                    lastSaveTime = Date()
                }
            } catch is CancellationError {
                break
            } catch {
                // Rewind: everything after the cursor is sent again, in order.
                for f in inflight { f.task.cancel() }
                for f in inflight { _ = try? await f.task.value }
                inflight = []
                next = cursor
                failures += 1
                let first = lock.withLock { state.lastError == nil }
                note {
                    $0.lastError = "\(error)"
                    $0.rewinds += 1
                }
                if first {
                    logger.warning("replication: publish failed (\(error)); resending from frame \(cursor + 1) when NATS is back")
                }
                try? await Task.sleep(for: .milliseconds(min(2000, 50 * (1 << min(failures, 6)))))
                if case NATSError.noResponders = error, c.connectionState == .connected {
                    // No stream takes the subject any more (deleted, or lost by the cluster): made again.
                    logger.warning("replication: no stream takes \(config.subject); setting up stream \(config.stream) again")
                    await ensureStream(c, js)
                }
            }
        }
        for f in inflight { f.task.cancel() }
        if cursor != lastSaved { try? cursorFile.write(stream: config.stream, sequence: cursor) }
    }

    /// Creates the stream when absent; refuses (logs, retries every 30 s) when it exists with conflicting settings.
    private func ensureStream(_ c: NATSConnection, _ js: JetStream) async {
        var loggedWaiting = false
        while !Task.isCancelled {
            if c.connectionState != .connected {
                try? await Task.sleep(for: .milliseconds(50))
                continue
            }
            let cfg = streamConfig(config, knownServers: c.knownServers.count)
            do {
                let info = try await js.ensureStream(cfg)
                note {
                    $0.streamReady = true
                    $0.lastError = nil
                }
                logger.info("replication: stream \(config.stream) ready (\(info.config.numReplicas ?? 1) replicas); publishing to \(config.subject)")
                return
            } catch let e as NATSError {
                if case .streamConfigConflict = e {
                    logger.error("replication: \(e); not replicating until it is fixed (checked again every 30 s)")
                    note { $0.lastError = e.description }
                    try? await Task.sleep(for: .seconds(30))
                } else {
                    if !loggedWaiting { logger.warning("replication: cannot set up stream \(config.stream) yet: \(e); retrying") }
                    loggedWaiting = true
                    note { $0.lastError = e.description }
                    try? await Task.sleep(for: .milliseconds(500))
                }
            } catch {
                note { $0.lastError = "\(error)" }
                try? await Task.sleep(for: .milliseconds(500))
            }
        }
    }
}

/// The stream replication asks for: file storage, limits retention, `<prefix>.>`, replicas min(3, cluster size)
/// unless configured, the configured duplicate window.
func streamConfig(_ config: ReplicationConfig, knownServers: Int) -> StreamConfig {
    var s = StreamConfig(name: config.stream, subjects: [config.streamSubjects])
    s.storage = "file"
    s.retention = "limits"
    s.discard = "old"
    s.numReplicas = config.replicas ?? min(3, max(1, knownServers))
    s.duplicateWindow = Int64(config.duplicateWindowSeconds) * 1_000_000_000
    return s
}

/// The replicator's state in `/api/stats` (`replication`).
public struct ReplicatorStats: Sendable, Codable {
    public var hostId = ""
    public var stream = ""
    public var subject = ""
    public var connected = false
    public var server: String?
    public var streamReady = false
    /// Highest frame sequence acknowledged by JetStream.
    public var cursor: UInt64 = 0
    /// Highest frame sequence written locally.
    public var headSequence: UInt64 = 0
    public var pendingFrames: UInt64 = 0
    public var publishedMessages = 0
    public var publishedEvents = 0
    public var duplicates = 0
    public var rewinds = 0
    public var lastPublish: Int64?
    public var lastError: String?
    /// Retention deleted frames before they were shipped (only `max_bytes` can force it).
    public var lostToRetention: [String] = []

    enum CodingKeys: String, CodingKey {
        case hostId = "host_id", stream, subject, connected, server, streamReady = "stream_ready", cursor
        case headSequence = "head_sequence", pendingFrames = "pending_frames", publishedMessages = "published_messages"
        case publishedEvents = "published_events", duplicates, rewinds, lastPublish = "last_publish"
        case lastError = "last_error", lostToRetention = "lost_to_retention"
    }

    mutating func record(loss: ReplicationLoss) { lostToRetention.append(loss.description) }
}

extension Replicator {
    /// Records a retention loss (called from the store's `onReplicationLoss`).
    public func report(loss: ReplicationLoss) {
        logger.error("replication: \(loss)")
        note { $0.record(loss: loss) }
    }
}
