import EventRecords
import EventStore
import Foundation
import GridEvents
import Logging
import NATSClient
import NIOConcurrencyHelpers

/// Where an aggregator stores what it pulls: durably, before it acks. grid-eventd's writer implements it.
public protocol ReplicaSink: Sendable {
    /// Stores the events (skipping ids already stored) and returns once they are durable.
    /// Each entry: the event and the records to write (its own, plus the origin host entity).
    func storeReplicated(_ batch: [(event: GridEvent, records: [Record])]) async throws
}

/// The cluster view: pulls every host's frames from its own durable consumer, stores them locally (each event
/// gains the entity `host-<id>`), and acks a message only once its events are durable. A message that fails its
/// checksum or does not decode, or that is not a grid-events message of the host its subject names, is reported
/// (log and `/api/stats`, with its stream sequence) and terminated (`+TERM`), never redelivered forever. Event ids
/// are kept, so a redelivery stores nothing twice.
public final class Aggregator: @unchecked Sendable {
    public let config: ReplicationConfig
    let sink: ReplicaSink
    let logger: Logger
    private let lock = NIOLock()
    private var connection: NATSConnection?
    private var task: Task<Void, Never>?
    private var state = AggregatorStats()
    /// Per host: the order keeper (used by the pull loop only).
    var order = FrameOrder(patience: Aggregator.gapPatience)
    /// The positions of what is stored (after the last stored batch): where a host goes back to when a store
    /// fails. Pull loop only.
    private var stored: [String: FrameOrder.Position] = [:]
    /// The positions and processed floor last written to `positionsFile` (the acker only).
    private var durable: [String: FrameOrder.Position] = [:]
    private var durableFloor: UInt64?
    /// The processed floor the positions file had at start (the pull loop's first setUp reads it).
    var savedFloor: UInt64?
    /// Saves the positions of a stored batch, then acks it; the pull loop goes on meanwhile (at most one batch
    /// behind it, so at most two batches are held).
    private var acker: Task<Void, Never>?
    /// Where the positions survive a restart; nil: they do not (tests without a store).
    private let positionsFile: PositionsFile?
    private var positionsFailing = false

    /// How long a gap in a host's frames may hold later ones back before they are stored anyway (a frame that
    /// will never come: it left the stream by its limits).
    static let gapPatience: TimeInterval = 20
    /// How long a stream sequence may be missing while later ones arrive, or nothing may arrive while the stream
    /// holds messages not yet processed, before the consumer is made again from the first one not processed
    /// (`StreamProgress`). Above the ack wait (a killed run's messages come back after it) and below `gapPatience`
    /// (so the frames this brings back are stored in their order).
    static let stallLimit: TimeInterval = 12
    /// The consumer's ack wait: when a message delivered and not acknowledged is delivered again. Frames a killed
    /// aggregator had received come back this long after it received them, and the restarted one holds later
    /// frames of their hosts back until then, so it must be well below `gapPatience`. (A store that takes longer
    /// makes the server deliver its messages again: they are stored once, by id.)
    public static let ackWait: Duration = .seconds(5)

    /// `positions`: where each host's position is kept across restarts (the daemon passes its store's).
    public init(config: ReplicationConfig, sink: ReplicaSink, logger: Logger, positions: PositionsFile? = nil) {
        self.config = config
        self.sink = sink
        self.logger = logger
        self.positionsFile = positions
        state.stream = config.stream
        state.consumer = config.durableName
    }

    public var stats: AggregatorStats {
        var s = lock.withLock { state }
        s.connected = connection?.connectionState == .connected
        s.server = connection?.connectedServer?.description
        let now = GridClock.nowMicros()
        for (k, var h) in s.hosts {
            h.lagFrames = h.headSequence > h.lastSequence ? h.headSequence - h.lastSequence : 0
            h.lagEvents = Int(Double(h.lagFrames) * (h.frames > 0 ? Double(h.events) / Double(h.frames) : 0))
            h.lagSeconds = h.lagFrames > 0 ? Double(now - (h.lastPublished ?? now)) / 1e6 : h.lastDelaySeconds
            s.hosts[k] = h
        }
        return s
    }

    public func start() {
        let c = NATSConnection(options: config.natsOptions(name: "grid-eventd aggregator \(config.hostId)", logger: logger))
        lock.withLock { connection = c }
        task = Task { await self.run(c) }
    }

    public func stop() async {
        task?.cancel()
        await task?.value
        await acker?.value
        await connection?.close()
    }

    func note(_ update: (inout AggregatorStats) -> Void) { lock.withLock { update(&state) } }

    /// Loads the saved positions (before the first pull). A file that cannot be used is reported, and then no
    /// host's first message starts its chain (a gap waits `gapPatience` at most).
    private func loadPositions() {
        guard let f = positionsFile else { return }
        do {
            if let (saved, processed) = try f.load(stream: config.stream) {
                durable = saved
                stored = saved
                savedFloor = processed
                durableFloor = processed
                order = FrameOrder(patience: Self.gapPatience, positions: saved, strictNewHosts: true)
                logger.info("aggregator: resuming \(saved.count) host position(s) from \(f.path)")
            }
        } catch {
            logger.error("aggregator: \(error); starting without saved positions (a host's frames after a gap wait up to \(Int(Self.gapPatience)) s)")
            note { $0.lastError = error.description }
            order = FrameOrder(patience: Self.gapPatience, strictNewHosts: true)
        }
    }

    // Pull loop only: what this run processed of the stream, when a pull last brought messages, when the consumer
    // was last checked, when a store last failed, whether the stream holds only our subjects (then every sequence
    // is delivered to us), and whether the consumer was set up once already.
    var progress = StreamProgress()
    var lastDelivery = Date()
    var lastCheck = Date()
    var lastStoreFailure: Date?
    var streamIsOurs = false
    var setUpBefore = false

    private func run(_ c: NATSConnection) async {
        let js = JetStream(c)
        loadPositions()
        guard await setUp(c, js) else { return }
        var failures = 0
        while !Task.isCancelled {
            do {
                if c.connectionState != .connected {
                    try await Task.sleep(for: .milliseconds(50))
                    continue
                }
                // What is waiting, at once (no_wait: the server answers 404 after the last one). When nothing is,
                // a long poll for one message (returns as soon as one arrives, or after 1 s), so a quiet stream
                // costs one request a second and a new message is here within a round trip. A pull for more than
                // one message would hold back the first until the batch fills or the request expires.
                var messages = try await js.fetch(
                    stream: config.stream, consumer: config.durableName, batch: config.pullBatch, expires: nil, noWait: true)
                if messages.isEmpty {
                    messages = try await js.fetch(stream: config.stream, consumer: config.durableName, batch: 1, expires: .seconds(1))
                }
                failures = 0
                if !messages.isEmpty {
                    lastDelivery = Date()
                    try await process(messages)
                }
                try await watch(js)
            } catch is CancellationError {
                return
            } catch NATSError.pullTerminated(let why) {
                logger.warning("aggregator: pull ended by the server (\(why)); setting the consumer up again")
                guard await setUp(c, js) else { return }
            } catch {
                failures += 1
                note { $0.lastError = "\(error)" }
                if failures == 1 { logger.warning("aggregator: \(error); retrying") }
                try? await Task.sleep(for: .milliseconds(min(2000, 50 * (1 << min(failures, 6)))))
            }
        }
    }

    private struct Accepted {
        var message: JetStreamMessage
        var decoded: ReplicationMessage
        var events: [GridEvent]
        var published: Int64?
        var head: UInt64?
    }

    private func process(_ messages: [JetStreamMessage]) async throws {
        var accepted: [Accepted] = []
        /// Per host touched here: where it goes back to when the store fails (its durable position).
        var undo: [String: FrameOrder.Position?] = [:]
        let now = Date()
        for m in messages {
            let seq = m.metadata?.streamSequence ?? 0
            if seq > 0 { progress.delivered(seq, now: now) }
            let prefix = config.subjectPrefix + "."
            guard m.subject.hasPrefix(prefix), !m.subject.dropFirst(prefix.count).contains(".") else {
                reject(m, seq, "subject \(m.subject) is not <prefix>.<host id>")
                continue
            }
            let host = String(m.subject.dropFirst(prefix.count))
            let decoded: ReplicationMessage
            do {
                decoded = try ReplicationMessage.decode(m.payload)
            } catch {
                reject(m, seq, "\(error)")
                continue
            }
            guard decoded.hostId == host else {
                reject(m, seq, "message of host \(decoded.hostId) on the subject of host \(host)")
                continue
            }
            var events: [GridEvent] = []
            var bad: String?
            for (i, b) in decoded.events.enumerated() {
                do { events.append(try BinaryCodec.decode(b)) } catch {
                    bad = "event \(i) of frame \(decoded.sequence) does not decode: \(error)"
                    break
                }
            }
            if let bad {
                reject(m, seq, bad)
                continue
            }
            // Order: a frame is stored only after the frame the host sent before it (a publish the stream lost
            // while a later one got in is sent again by the host, after it). Later frames wait (nak, 100 ms).
            if undo[host] == nil {
                let back = stored[host] ?? (order.strictNewHosts || decoded.part != 0 ? nil : FrameOrder.Position(applied: decoded.previous))
                undo.updateValue(back, forKey: host)
            }
            switch order.admit(decoded, now: Date()) {
            case .hold:
                try? m.nak(delay: .milliseconds(100))
                note { $0.heldBack += 1 }
                continue
            case .gapAccepted(let from):
                logger.warning("aggregator: frames of host \(host) after \(from) up to \(decoded.previous) never arrived in \(Int(Self.gapPatience)) s; going on from frame \(decoded.sequence)")
                note { $0.gapsAccepted += 1 }
            case .apply:
                break
            }
            accepted.append(
                Accepted(
                    message: m, decoded: decoded, events: events, published: m.headers?["Grid-Published"].flatMap { Int64($0) },
                    head: m.headers?["Grid-Host-Head"].flatMap { UInt64($0) }))
        }
        guard !accepted.isEmpty else { return }
        var batch: [(event: GridEvent, records: [Record])] = []
        for a in accepted {
            let entity = "host-" + a.decoded.hostId
            for e in a.events {
                let tagged = Self.tagged(e, hostEntity: entity)
                batch.append((tagged, tagged.records()))
            }
        }
        do {
            try await sink.storeReplicated(batch)
        } catch {
            lastStoreFailure = Date()
            for a in accepted { try? a.message.nak(delay: .seconds(1)) }
            for (host, position) in undo { order.reset(host, to: position) }
            note { $0.lastError = "storing replicated events: \(error)" }
            logger.warning("aggregator: cannot store replicated events (\(error)); redelivery in 1 s")
            return
        }
        // The positions are saved and the batch acked behind the loop (an fsync or two), while it fetches and
        // stores the next batch; the saves and acks keep their order, and a batch is acked only after the
        // positions covering it are saved.
        stored = order.positions
        let storedAt = Date()
        for a in accepted {
            if let seq = a.message.metadata?.streamSequence { progress.processed(seq, now: storedAt) }
        }
        let positions = stored
        let floor = progress.floor
        let messages = accepted.map(\.message)
        await acker?.value
        acker = Task {
            self.savePositions(positions, processed: floor)
            for m in messages { try? m.ack() }
        }
        let micros = GridClock.nowMicros()
        note { s in
            for a in accepted {
                var h = s.hosts[a.decoded.hostId] ?? HostReplicationStats()
                if a.decoded.part == a.decoded.parts - 1 {
                    h.lastSequence = max(h.lastSequence, a.decoded.sequence)
                    h.frames += Int(a.decoded.sequence - a.decoded.firstSequence) + 1
                }
                if let head = a.head { h.headSequence = max(h.headSequence, head) }
                h.headSequence = max(h.headSequence, h.lastSequence)
                h.events += a.events.count
                h.lastHeard = micros
                if let p = a.published {
                    h.lastPublished = p
                    h.lastDelaySeconds = Double(micros - p) / 1e6
                }
                s.hosts[a.decoded.hostId] = h
            }
            s.messages += accepted.count
            s.events += accepted.reduce(0) { $0 + $1.events.count }
            s.lastError = nil
        }
    }

    /// Saves every host's position once the batch is durable and before its acks: a restart then holds a host's
    /// later frames back until the ones this run received and did not acknowledge come back. When it cannot be
    /// saved the acks go out anyway (nothing is lost; after a restart a host's next frames might wait for the gap
    /// patience once): reported, not retried in a loop.
    private func savePositions(_ now: [String: FrameOrder.Position], processed: UInt64) {
        guard now != durable || processed != durableFloor else { return }
        guard let f = positionsFile else {
            durable = now
            durableFloor = processed
            return
        }
        do {
            try f.write(stream: config.stream, now, processed: processed)
            durable = now
            durableFloor = processed
            if positionsFailing { logger.info("aggregator: positions saved again to \(f.path)") }
            positionsFailing = false
        } catch {
            if !positionsFailing { logger.error("aggregator: \(error)") }
            positionsFailing = true
            note { $0.lastError = error.description }
        }
    }

    private func reject(_ m: JetStreamMessage, _ seq: UInt64, _ why: String) {
        logger.error("aggregator: stream \(config.stream) sequence \(seq) on \(m.subject) rejected and terminated: \(why)")
        try? m.term()
        if seq > 0 { progress.processed(seq, now: Date()) }
        note {
            $0.rejected += 1
            $0.rejections.append(Rejection(streamSequence: seq, subject: m.subject, reason: why, at: GridClock.nowMicros()))
            if $0.rejections.count > 50 { $0.rejections.removeFirst($0.rejections.count - 50) }
        }
    }

    /// The event with its origin host as an entity too (its records then hold it in the concept record and as an
    /// edge); unchanged when it already names the host.
    public static func tagged(_ e: GridEvent, hostEntity: String) -> GridEvent {
        var tagged = e
        if !tagged.entities.contains(hostEntity) { tagged.extraEntities.append(hostEntity) }
        return tagged
    }
}
