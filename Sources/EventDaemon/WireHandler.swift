import EventStore
import EventWire
import GridEvents
import Logging
import NIOCore
#if canImport(Glibc)
import Glibc
#endif

/// One producer connection: checks the peer's credentials, decodes frames with hard limits, hands batches to
/// the writer (which checks them against the store and prepares them on its own thread: nothing here blocks the
/// event loop) and acks each batch once it is durable. Any protocol error gets an error frame, then the
/// connection is closed; other connections and the store are untouched.
final class WireHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private let writer: BatchWriter
    private let config: DaemonConfig
    private let logger: Logger
    private let connections: ConnectionRegistry
    private var decoder: WireDecoder
    private var producer: String?
    private var inFlight = 0
    private var closing = false
    private var helloTimer: Scheduled<Void>?
    /// Armed while a frame is partly received (or acks cannot be written): fires after `frameTimeoutSeconds`.
    private var stallTimer: Scheduled<Void>?

    init(writer: BatchWriter, config: DaemonConfig, connections: ConnectionRegistry, logger: Logger) {
        self.writer = writer
        self.config = config
        self.connections = connections
        self.logger = logger
        self.decoder = WireDecoder(maxFrame: config.maxFrame)
    }

    func channelActive(context: ChannelHandlerContext) {
        let channel = context.channel
        guard connections.add(channel) else {
            fail(context, WireError(.tooManyConnections, "the daemon serves at most \(config.maxConnections) connections; retry later"))
            return
        }
        let loopBound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        if let provider = channel as? SocketOptionProvider {
            // On the event loop this future is already complete, so the check runs before any read.
            let credentials: EventLoopFuture<PeerCredentials> = provider.unsafeGetSocketOption(
                level: SocketOptionLevel(SOL_SOCKET), name: SocketOptionName(SO_PEERCRED))
            credentials.whenComplete { result in
                let (handler, context) = loopBound.value
                let reason: String?
                switch result {
                case .success(let cred): reason = handler.refusal(for: cred)
                case .failure(let error): reason = "could not read peer credentials: \(error)"
                }
                if let reason {
                    handler.logger.warning("refused connection: \(reason)")
                    handler.fail(context, WireError(.permissionDenied, reason))
                }
            }
        }
        helloTimer = context.eventLoop.scheduleTask(in: .milliseconds(Int64(config.helloTimeoutSeconds * 1000))) {
            let (handler, context) = loopBound.value
            if handler.producer == nil {
                handler.fail(context, WireError(.timeout, "no hello within \(handler.config.helloTimeoutSeconds) s"))
            }
        }
        context.fireChannelActive()
    }

    func channelInactive(context: ChannelHandlerContext) {
        helloTimer?.cancel()
        stallTimer?.cancel()
        connections.remove(context.channel)
        context.fireChannelInactive()
    }

    /// Nil when the peer may connect, else why not (SO_PEERCRED against the allowed uids and gids).
    private func refusal(for cred: PeerCredentials) -> String? {
        let me = getuid()
        if cred.uid == me || cred.uid == 0 || config.allowedUids.contains(cred.uid) || config.allowedGids.contains(cred.gid) {
            return nil
        }
        return "peer uid \(cred.uid) gid \(cred.gid) (pid \(cred.pid)) is not allowed; the daemon accepts uid \(me), root and --allow-uid/--allow-gid"
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !closing else { return }
        var buffer = unwrapInboundIn(data)
        buffer.withUnsafeReadableBytes { decoder.append($0) }
        buffer.moveReaderIndex(forwardBy: buffer.readableBytes)
        var decoded = 0
        do throws(WireError) {
            while !closing, let frame = try decoder.next() {
                decoded += 1
                try handle(frame, context)
            }
        } catch {
            logger.info("closing connection of \(producer ?? "unknown producer"): \(error)")
            fail(context, error)
            return
        }
        if decoded > 0 {
            // Progress: a frame left partial by this read (the common case under load) gets a fresh timeout.
            stallTimer?.cancel()
            stallTimer = nil
        }
        updateStallTimer(context)
    }

    /// Reads only while fewer than `maxInFlightPerConnection` batches wait for the disk and the peer takes our
    /// acks and pongs (the channel is writable): a peer that never reads cannot make the daemon buffer answers.
    private func updateReading(_ context: ChannelHandlerContext) {
        let read = !closing && inFlight < config.maxInFlightPerConnection && context.channel.isWritable
        _ = context.channel.setOption(ChannelOptions.autoRead, value: read)
        updateStallTimer(context)
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        updateReading(context)
        context.fireChannelWritabilityChanged()
    }

    /// A connection is stalled when a frame has started but not finished arriving while we are reading, or
    /// when the peer has not taken our answers: either way it is closed after `frameTimeoutSeconds` (counted from
    /// the last complete frame, so a frame must finish within that time of the one before it).
    private func updateStallTimer(_ context: ChannelHandlerContext) {
        let waitingForDisk = inFlight >= config.maxInFlightPerConnection
        let stalled = !closing && (!context.channel.isWritable || (decoder.bufferedBytes > 0 && !waitingForDisk))
        if !stalled {
            stallTimer?.cancel()
            stallTimer = nil
            return
        }
        guard stallTimer == nil else { return }
        let loopBound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        let seconds = config.frameTimeoutSeconds
        stallTimer = context.eventLoop.scheduleTask(in: .milliseconds(Int64(seconds * 1000))) {
            let (handler, context) = loopBound.value
            handler.stallTimer = nil
            let unwritable = !context.channel.isWritable
            let partial = handler.decoder.bufferedBytes > 0 && handler.inFlight < handler.config.maxInFlightPerConnection
            guard unwritable || partial else { return }
            let why = unwritable ? "the peer has not read the daemon's answers" : "a frame stayed incomplete"
            handler.logger.info("closing connection of \(handler.producer ?? "unknown producer"): \(why) for \(seconds) s")
            handler.fail(context, WireError(.timeout, "\(why) for \(seconds) s"))
        }
    }

    private func handle(_ frame: WireFrame, _ context: ChannelHandlerContext) throws(WireError) {
        switch frame {
        case .hello(let producerId, _):
            producer = producerId
            helloTimer?.cancel()
            send(.welcome(server: "grid-eventd 1", maxFrame: UInt32(config.maxFrame)), context)
        case .batch(let producerId, let first, let events):
            guard producer != nil else { throw WireError(.helloRequired, "send hello before batches") }
            // Even an empty batch goes through the writer: every batch is answered once, in order.
            inFlight += 1
            if inFlight >= config.maxInFlightPerConnection { updateReading(context) }
            let loopBound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
            let eventLoop = context.eventLoop
            // The duplicate check and the frame's preparation run on the writer thread: nothing here waits on the
            // store. The writer completes this connection's jobs in the order they were submitted.
            let job = BatchWriter.Job(producer: producerId, firstSequence: first, events: events, receivedAt: monotonicNanos()) { result in
                eventLoop.execute {
                    let (handler, context) = loopBound.value
                    handler.completed(producerId, result, context)
                }
            }
            writer.submit(job)
        case .ping(let nonce):
            send(.pong(nonce: nonce), context)
            if !context.channel.isWritable { updateReading(context) }
        case .pong:
            break
        case .welcome, .ack, .error:
            throw WireError(.malformed, "unexpected frame type \(frame.typeCode) from a producer")
        }
    }

    private func completed(_ producerId: String, _ result: Result<BatchWriter.Done, StoreError>, _ context: ChannelHandlerContext) {
        inFlight -= 1
        guard context.channel.isActive else { return }
        defer { updateReading(context) }
        switch result {
        case .success(let done):
            send(.ack(producerId: producerId, durableThrough: done.through), context)
        case .failure(let error) where error.code == .invalidArgument || error.code == .batchTooLarge:
            // The batch holds an event the store cannot take (the writer refused it alone): as for any invalid
            // frame, an error frame, then the connection is closed.
            logger.info("closing connection of \(producer ?? "unknown producer"): \(error)")
            fail(context, WireError(.invalidEvent, error.description))
        case .failure(let error):
            send(.error(code: .storeUnavailable, message: error.description, supportedVersions: []), context)
        }
    }

    private func send(_ frame: WireFrame, _ context: ChannelHandlerContext) {
        let bytes = WireCodec.encode(frame)
        var buffer = context.channel.allocator.buffer(capacity: bytes.count)
        buffer.writeBytes(bytes)
        context.writeAndFlush(wrapOutboundOut(buffer), promise: nil)
    }

    /// Sends the error frame, then closes.
    private func fail(_ context: ChannelHandlerContext, _ error: WireError) {
        guard !closing else { return }
        closing = true
        let bytes = WireCodec.encode(error.frame)
        var buffer = context.channel.allocator.buffer(capacity: bytes.count)
        buffer.writeBytes(bytes)
        let loopBound = NIOLoopBound(context, eventLoop: context.eventLoop)
        context.writeAndFlush(wrapOutboundOut(buffer)).whenComplete { _ in
            loopBound.value.close(promise: nil)
        }
        // A peer that reads nothing never lets the error frame out: close anyway after a second.
        _ = context.eventLoop.scheduleTask(in: .seconds(1)) {
            let context = loopBound.value
            if context.channel.isActive { context.close(promise: nil) }
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        logger.debug("connection error: \(error)")
        context.close(promise: nil)
    }
}

/// The open producer connections, bounded; closed together at shutdown.
final class ConnectionRegistry: @unchecked Sendable {
    private let lock = ConditionLock()
    private var channels: [ObjectIdentifier: Channel] = [:]
    private let limit: Int

    init(limit: Int) { self.limit = limit }

    func add(_ channel: Channel) -> Bool {
        lock.withLock {
            guard channels.count < limit else { return false }
            channels[ObjectIdentifier(channel)] = channel
            return true
        }
    }

    func remove(_ channel: Channel) {
        _ = lock.withLock { channels.removeValue(forKey: ObjectIdentifier(channel)) }
    }

    var count: Int { lock.withLock { channels.count } }

    var all: [Channel] { lock.withLock { Array(channels.values) } }
}

/// `struct ucred` (pid, uid, gid) as SO_PEERCRED returns it; declared here because Glibc's overlay hides it
/// behind _GNU_SOURCE. Same layout: three 32-bit fields.
struct PeerCredentials: Sendable {
    var pid: Int32 = 0
    var uid: UInt32 = 0
    var gid: UInt32 = 0
}
