// Over 400 lines: one connection's state machine (connect, handshake, reconnect over the server list, ping,
// subscriptions, flow control) shares its lock and NIO channel; split, each part would reach into the others' state.
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix

/// Where a connection stands.
public enum NATSConnectionState: Sendable, Equatable {
    case connecting
    case connected
    case reconnecting
    case closed
}

/// Something that happened to a connection, for logs and stats.
public enum NATSConnectionEvent: Sendable {
    case connected(NATSServerAddress)
    case disconnected(NATSServerAddress, reason: String)
    /// A connect attempt failed; `willRetryIn` is the backoff before the next one.
    case connectFailed(NATSServerAddress, error: NATSError, willRetryIn: TimeAmount)
    case serverError(String)
    case closed
}

/// A NATS client connection on SwiftNIO: publish (PUB/HPUB), subscribe, request/reply, keepalive pings, and
/// reconnection across the configured servers and those the cluster announces, with capped, jittered backoff.
/// Subscriptions are re-established after a reconnect; publishes made while disconnected wait in the outbound
/// buffer (bounded by `maxOutboundBytes`) and go out on reconnect. Requests waiting when the connection drops fail
/// with `NATSError.connectionLost` (a reply could never arrive on the new connection).
///
/// Thread-safe: every method may be called from any thread or task.
public final class NATSConnection: @unchecked Sendable {
    public let options: NATSOptions
    let logger: Logger
    let group: EventLoopGroup
    private let ownsGroup: Bool
    let lock = NIOLock()

    // Guarded by `lock`.
    var state: NATSConnectionState = .connecting
    var channel: Channel?
    var currentServer: NATSServerAddress?
    var info: NATSServerInfo?
    var servers: [NATSServerAddress]
    var serverCursor = 0
    private var outbound: [UInt8] = []
    private var writesInFlight = 0
    private var flushScheduled = false
    private var subscriptions: [UInt64: Subscriber] = [:]
    private var nextSid: UInt64 = 1
    var pongWaiters: [EventLoopPromise<Void>?] = []
    var pingsOutstanding = 0
    var lastError: NATSError?
    var eventHandler: (@Sendable (NATSConnectionEvent) -> Void)?
    var connectTask: Task<Void, Never>?
    var connectedWaiters: [CheckedContinuation<Void, Error>] = []
    var statistics = NATSStatistics()
    private var closing = false
    // Request/reply multiplexing.
    let inboxPrefix: String
    var muxSid: UInt64?
    var replyHandlers: [String: ReplyHandler] = [:]
    var nextReplyToken: UInt64 = 1

    enum Subscriber {
        case queue(NATSSubscription)
        case handler(subject: String, queue: String?, (NATSMessage) -> Void)

        var subject: String {
            switch self {
            case .queue(let s): return s.subject
            case .handler(let subject, _, _): return subject
            }
        }
        var queueGroup: String? {
            switch self {
            case .queue(let s): return s.queue
            case .handler(_, let q, _): return q
            }
        }
    }

    /// Creates a connection and starts connecting in the background (it never throws for an unreachable server:
    /// it keeps retrying). Use `connect(_:)` to wait for the first connection instead.
    public init(options: NATSOptions, onEvent: (@Sendable (NATSConnectionEvent) -> Void)? = nil) {
        self.options = options
        self.logger = options.logger
        if let g = options.eventLoopGroup {
            group = g
            ownsGroup = false
        } else {
            group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
            ownsGroup = true
        }
        servers = options.servers
        inboxPrefix = "_INBOX." + NATSConnection.randomToken(22)
        eventHandler = onEvent
        startConnecting()
    }

    /// Connects to the first server that answers, trying each configured server once.
    /// - Throws: the last attempt's error (`authorizationViolation`, `notConnected`, `tls`...) when none did;
    ///   the connection is then closed.
    public static func connect(_ options: NATSOptions, onEvent: (@Sendable (NATSConnectionEvent) -> Void)? = nil)
        async throws -> NATSConnection
    {
        let c = NATSConnection(options: options, onEvent: onEvent)
        do {
            try await c.waitUntilConnected(attempts: max(1, options.servers.count))
            return c
        } catch {
            await c.close()
            throw error
        }
    }

    deinit {
        if ownsGroup { group.shutdownGracefully { _ in } }
    }

    /// Current state.
    public var connectionState: NATSConnectionState { lock.withLock { state } }
    /// The server's INFO of the current (or last) connection.
    public var serverInfo: NATSServerInfo? { lock.withLock { info } }
    /// The server connected to now.
    public var connectedServer: NATSServerAddress? { lock.withLock { state == .connected ? currentServer : nil } }
    /// The most recent connection error (nil once connected again).
    public var lastConnectionError: NATSError? { lock.withLock { lastError } }
    /// Every server known: the configured ones and those announced by the cluster.
    public var knownServers: [NATSServerAddress] { lock.withLock { servers } }
    /// Counters.
    public var stats: NATSStatistics { lock.withLock { statistics } }

    /// Waits until connected. With `attempts`, gives up after that many failed connect attempts since the call.
    /// - Throws: the last connect error; `NATSError.closed` when closed meanwhile.
    public func waitUntilConnected(attempts: Int? = nil) async throws {
        let startFailures = lock.withLock { statistics.connectFailures }
        while true {
            let (s, failures, err) = lock.withLock { (state, statistics.connectFailures, lastError) }
            if s == .connected { return }
            if s == .closed { throw err ?? NATSError.closed }
            if let attempts, failures - startFailures >= attempts {
                throw err ?? NATSError.notConnected("no server answered")
            }
            try await Task.sleep(for: .milliseconds(10))
        }
    }

    // MARK: Publishing

    /// Publishes a message (PUB, or HPUB with headers). Returns once the bytes are queued; they go out in order.
    /// - Throws: `payloadTooLarge`, `outboundBufferFull`, `closed`, or a protocol error for a bad subject/header.
    public func publish(
        _ subject: String, payload: some Collection<UInt8> = [UInt8](), headers: NATSHeaders? = nil,
        replyTo: String? = nil
    ) throws {
        let size = payload.count + (headers?.encoded().count ?? 0)
        var bytes: [UInt8] = []
        bytes.reserveCapacity(size + subject.utf8.count + 64)
        do throws(NATSProtocolError) {
            try NATSClientOp.publish(subject: subject, replyTo: replyTo, headers: headers, payload: payload, into: &bytes)
        } catch {
            throw NATSError.protocolViolation(error)
        }
        try lock.withLock {
            let limit = info?.maxPayload ?? (1 << 20)
            if size > limit { throw NATSError.payloadTooLarge(size: size, limit: limit) }
            try enqueueLocked(bytes)
            statistics.messagesOut += 1
            statistics.bytesOut += size
        }
    }

    /// Waits until the server has processed everything sent so far (PING, then its PONG).
    /// - Throws: `timeout`, `connectionLost`, `notConnected`, `closed`.
    public func flush(timeout: TimeAmount? = nil) async throws {
        let loop = group.next()
        let promise = loop.makePromise(of: Void.self)
        try lock.withLock {
            guard state == .connected else {
                throw state == .closed ? NATSError.closed : NATSError.notConnected("flush while disconnected")
            }
            try enqueueLocked(NATSClientOp.ping, force: true)
            pongWaiters.append(promise)
        }
        let t = timeout ?? options.requestTimeout
        let timer = loop.scheduleTask(in: t) { promise.fail(NATSError.timeout("flush")) }
        defer { timer.cancel() }
        try await promise.futureResult.get()
    }

    // MARK: Subscribing

    /// Subscribes to `subject` (wildcards allowed), optionally in a queue group.
    /// - Throws: `invalidSubject` (as `protocolViolation`), `closed`.
    public func subscribe(_ subject: String, queue: String? = nil) throws -> NATSSubscription {
        try lock.withLock {
            guard state != .closed else { throw NATSError.closed }
            let sid = nextSid
            nextSid += 1
            let bytes = try Self.subscribeBytes(subject, queue, sid)
            let s = NATSSubscription(
                subject: subject, queue: queue, sid: sid, maxPendingBytes: options.maxPendingBytesPerSubscription,
                connection: self)
            subscriptions[sid] = .queue(s)
            try enqueueLocked(bytes, force: true)
            return s
        }
    }

    /// Subscribes with a handler called on the event loop for each message (for internal use: keep it short).
    func subscribeHandler(_ subject: String, _ handler: @escaping (NATSMessage) -> Void) throws -> UInt64 {
        try lock.withLock {
            try subscribeHandlerLocked(subject, handler)
        }
    }

    func subscribeHandlerLocked(_ subject: String, _ handler: @escaping (NATSMessage) -> Void) throws -> UInt64 {
        guard state != .closed else { throw NATSError.closed }
        let sid = nextSid
        nextSid += 1
        let bytes = try Self.subscribeBytes(subject, nil, sid)
        subscriptions[sid] = .handler(subject: subject, queue: nil, handler)
        try enqueueLocked(bytes, force: true)
        return sid
    }

    static func subscribeBytes(_ subject: String, _ queue: String?, _ sid: UInt64) throws(NATSError) -> [UInt8] {
        do throws(NATSProtocolError) {
            return try NATSClientOp.subscribe(subject: subject, queue: queue, sid: sid)
        } catch {
            throw .protocolViolation(error)
        }
    }

    func unsubscribe(sid: UInt64) {
        lock.withLock {
            guard subscriptions.removeValue(forKey: sid) != nil, state != .closed else { return }
            try? enqueueLocked(NATSClientOp.unsubscribe(sid: sid), force: true)
        }
    }

    // MARK: Closing

    /// Closes the connection: stops reconnecting, flushes nothing more, ends every subscription, fails every
    /// waiting request and flush with `closed`. Idempotent.
    public func close() async {
        let (ch, task, subs, waiters, pongs): (Channel?, Task<Void, Never>?, [Subscriber], [CheckedContinuation<Void, Error>], [EventLoopPromise<Void>?]) = lock.withLock {
            if state == .closed { return (nil, nil, [], [], []) }
            state = .closed
            closing = true
            defer {
                subscriptions = [:]
                connectedWaiters = []
                pongWaiters = []
                outbound = []
            }
            return (channel, connectTask, Array(subscriptions.values), connectedWaiters, pongWaiters)
        }
        let first = lock.withLock { () -> Bool in
            defer { closing = false }
            return closing
        }
        guard first else { return }
        task?.cancel()
        for s in subs { if case .queue(let q) = s { q.finish() } }
        for w in waiters { w.resume(throwing: NATSError.closed) }
        for p in pongs { p?.fail(NATSError.closed) }
        if let ch { try? await ch.close() }
        await task?.value
        eventHandler?(.closed)
        failAllRepliesClosed()
        if ownsGroup { try? await group.shutdownGracefully() }
    }

    // MARK: Outbound buffer

    /// Queues bytes for the socket; a flush runs on the event loop. `force` skips the bound (control traffic:
    /// SUB, UNSUB, PING must never be refused).
    func enqueueLocked(_ bytes: [UInt8], force: Bool = false) throws(NATSError) {
        if state == .closed { throw NATSError.closed }
        if !force && outbound.count + writesInFlight + bytes.count > options.maxOutboundBytes {
            statistics.outboundRefusals += 1
            throw NATSError.outboundBufferFull(limit: options.maxOutboundBytes)
        }
        outbound += bytes
        scheduleFlushLocked()
    }

    func scheduleFlushLocked() {
        guard state == .connected, let ch = channel, !flushScheduled, !outbound.isEmpty else { return }
        flushScheduled = true
        ch.eventLoop.execute { self.flushOutbound(ch) }
    }

    private func flushOutbound(_ ch: Channel) {
        let bytes: [UInt8] = lock.withLock {
            flushScheduled = false
            guard channel === ch, state == .connected else { return [] }
            defer { outbound = [] }
            writesInFlight += outbound.count
            return outbound
        }
        guard !bytes.isEmpty else { return }
        let n = bytes.count
        let buffer = ch.allocator.buffer(bytes: bytes)
        ch.writeAndFlush(buffer).whenComplete { _ in
            self.lock.withLock { self.writesInFlight = max(0, self.writesInFlight - n) }
        }
    }

    /// Called by the handshake once the server answered PONG: resubscribe, then send what waited.
    func didConnect(_ ch: Channel, server: NATSServerAddress, info: NATSServerInfo) -> Bool {
        let (ok, waiters): (Bool, [CheckedContinuation<Void, Error>]) = lock.withLock {
            guard state != .closed else { return (false, []) }
            var prefix: [UInt8] = []
            for (sid, s) in subscriptions.sorted(by: { $0.key < $1.key }) {
                if let b = try? NATSClientOp.subscribe(subject: s.subject, queue: s.queueGroup, sid: sid) { prefix += b }
            }
            outbound = prefix + outbound
            writesInFlight = 0
            channel = ch
            currentServer = server
            self.info = info
            lastError = nil
            state = .connected
            pingsOutstanding = 0
            statistics.connects += 1
            learnServersLocked(info)
            scheduleFlushLocked()
            defer { connectedWaiters = [] }
            return (true, connectedWaiters)
        }
        for w in waiters { w.resume() }
        return ok
    }

    /// Adds the cluster's announced client URLs to the servers tried on reconnect.
    func learnServersLocked(_ info: NATSServerInfo) {
        guard let urls = info.connectURLs else { return }
        let template = currentServer ?? options.servers.first
        for u in urls {
            guard var a = try? NATSServerAddress(parsing: u) else { continue }
            if let t = template {
                a.tls = t.tls
                a.user = t.user
                a.password = t.password
                a.token = t.token
            }
            if !servers.contains(where: { $0.host == a.host && $0.port == a.port }) {
                servers.append(a)
                logger.debug("NATS: learned server \(a)")
            }
        }
    }

    /// Called when the channel is gone: fail what waited for an answer on it.
    func didDisconnect(_ ch: Channel, reason: String) {
        let (wasCurrent, pongs, server): (Bool, [EventLoopPromise<Void>?], NATSServerAddress?) = lock.withLock {
            guard channel === ch else { return (false, [], nil) }
            channel = nil
            if state != .closed { state = .reconnecting }
            writesInFlight = 0
            statistics.disconnects += 1
            defer { pongWaiters = [] }
            return (true, pongWaiters, currentServer)
        }
        guard wasCurrent else { return }
        for p in pongs { p?.fail(NATSError.connectionLost) }
        failAllRepliesLost()
        if let server { eventHandler?(.disconnected(server, reason: reason)) }
    }

    // MARK: Inbound

    func handle(_ op: NATSServerOp, from ch: Channel) {
        switch op {
        case .ping:
            ch.writeAndFlush(ch.allocator.buffer(bytes: NATSClientOp.pong), promise: nil)
        case .pong:
            let waiter: EventLoopPromise<Void>?? = lock.withLock {
                pingsOutstanding = 0
                return pongWaiters.isEmpty ? nil : pongWaiters.removeFirst()
            }
            if let w = waiter { w?.succeed(()) }
        case .ok:
            break
        case .info(let json):
            if let i = try? NATSServerInfo.decode(json) {
                lock.withLock {
                    info = i
                    learnServersLocked(i)
                }
            }
        case .err(let text):
            logger.warning("NATS server error: \(text)")
            eventHandler?(.serverError(text))
            lock.withLock { statistics.serverErrors += 1 }
        case .msg(let m):
            let sub: Subscriber? = lock.withLock {
                statistics.messagesIn += 1
                statistics.bytesIn += m.payload.count
                return subscriptions[m.sid]
            }
            switch sub {
            case .queue(let s): s.deliver(m)
            case .handler(_, _, let h): h(m)
            case nil: break
            }
        }
    }

    static func randomToken(_ n: Int) -> String {
        let alphabet = Array("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz".utf8)
        var g = SystemRandomNumberGenerator()
        return String(decoding: (0..<n).map { _ in alphabet[Int(g.next() % UInt64(alphabet.count))] }, as: UTF8.self)
    }
}

/// Counters of one connection since it was created.
public struct NATSStatistics: Sendable, Equatable {
    public var connects = 0
    public var disconnects = 0
    public var connectFailures = 0
    public var messagesIn = 0
    public var bytesIn = 0
    public var messagesOut = 0
    public var bytesOut = 0
    public var serverErrors = 0
    public var outboundRefusals = 0
}
