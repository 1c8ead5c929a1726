import Logging
import NIOCore
import NIOPosix
import NIOSSL

extension NATSConnection {
    func startConnecting() {
        let task = Task { [weak self] in
            guard let self else { return }
            await self.connectLoop()
        }
        lock.withLock { connectTask = task }
    }

    /// The reconnect loop: one connection at a time; when it ends, the next server (round robin over the
    /// configured and announced servers) after a backoff. The first attempt after a working connection dropped is
    /// immediate; each failed attempt in a row doubles the delay up to `reconnectMaxDelay`, jittered. A refused
    /// credential waits `authErrorRetryDelay`. Unreachable servers are logged once per outage, then at debug.
    private func connectLoop() async {
        var failures = 0
        var loggedOutage = false
        while !Task.isCancelled {
            let server: NATSServerAddress? = lock.withLock {
                guard state != .closed, !servers.isEmpty else { return nil }
                let s = servers[serverCursor % servers.count]
                serverCursor += 1
                return s
            }
            guard let server else { return }
            do {
                let ch = try await connectOnce(server)
                failures = 0
                if loggedOutage {
                    logger.info("NATS: connected to \(server) again")
                } else {
                    logger.info("NATS: connected to \(server)")
                }
                loggedOutage = false
                eventHandler?(.connected(server))
                let pinger = startPinging(ch)
                try? await ch.closeFuture.get()
                pinger.cancel()
                let closedByUs = lock.withLock { state == .closed }
                if closedByUs { return }
                let reason = lock.withLock { lastError?.description } ?? "connection closed"
                logger.warning("NATS: lost connection to \(server): \(reason); reconnecting")
                didDisconnect(ch, reason: reason)
                continue
            } catch {
                let e = (error as? NATSError) ?? .notConnected("\(error)")
                if lock.withLock({ state == .closed }) { return }
                failures += 1
                let delay: TimeAmount
                if case .authorizationViolation = e {
                    delay = options.authErrorRetryDelay
                    logger.error("NATS: \(server): \(e); retrying in \(seconds(delay)) s")
                } else {
                    delay = backoff(failures)
                    if !loggedOutage {
                        logger.warning("NATS: cannot connect to \(server): \(e); will keep retrying")
                        loggedOutage = true
                    } else {
                        logger.debug("NATS: cannot connect to \(server): \(e); retry in \(seconds(delay)) s")
                    }
                }
                lock.withLock {
                    lastError = e
                    statistics.connectFailures += 1
                    if state != .closed && state != .connecting { state = .reconnecting }
                }
                eventHandler?(.connectFailed(server, error: e, willRetryIn: delay))
                if let max = options.maxReconnectAttempts, failures >= max {
                    logger.error("NATS: giving up after \(failures) failed attempts")
                    Task { await self.close() }
                    return
                }
                try? await Task.sleep(nanoseconds: UInt64(max(0, delay.nanoseconds)))
            }
        }
    }

    /// Delay after `failures` failed attempts in a row: doubling from the initial delay, capped, jittered.
    func backoff(_ failures: Int) -> TimeAmount {
        let base = Double(options.reconnectInitialDelay.nanoseconds) * pow2(min(failures - 1, 30))
        let capped = min(base, Double(options.reconnectMaxDelay.nanoseconds))
        let j = options.reconnectJitter
        let factor = j > 0 ? Double.random(in: (1 - j)...(1 + j)) : 1
        return .nanoseconds(Int64(capped * factor))
    }

    private func pow2(_ n: Int) -> Double { n <= 0 ? 1 : Double(1 << n) }

    private func seconds(_ t: TimeAmount) -> String {
        let s = Double(t.nanoseconds) / 1e9
        return s < 10 ? String(Double(Int(s * 100)) / 100) : String(Int(s))
    }

    /// Keepalive: PING every `pingInterval`; with `maxPingsOutstanding` unanswered, the connection is stale.
    private func startPinging(_ ch: Channel) -> RepeatedTask {
        ch.eventLoop.scheduleRepeatedTask(initialDelay: options.pingInterval, delay: options.pingInterval) { [weak self] _ in
            guard let self else { return }
            let stale: Bool = self.lock.withLock {
                guard self.channel === ch else { return false }
                if self.pingsOutstanding >= self.options.maxPingsOutstanding { return true }
                self.pingsOutstanding += 1
                self.pongWaiters.append(nil)
                try? self.enqueueLocked(NATSClientOp.ping, force: true)
                return false
            }
            if stale {
                self.logger.warning("NATS: \(self.options.maxPingsOutstanding) pings unanswered; closing the connection")
                self.lock.withLock { self.lastError = .staleConnection }
                ch.close(promise: nil)
            }
        }
    }

    /// One TCP connection through the handshake (INFO, optional TLS, CONNECT, PING, then PONG or -ERR).
    private func connectOnce(_ server: NATSServerAddress) async throws -> Channel {
        let loop = group.next()
        let handshake = loop.makePromise(of: NATSServerInfo.self)
        let sslContext: NIOSSLContext?
        let wantsTLS = server.tls || options.tls != nil
        sslContext = wantsTLS ? try makeSSLContext() : nil
        let settings = HandshakeSettings(
            server: server, options: options, sslContext: sslContext, requireTLS: wantsTLS)
        let handler = NATSChannelHandler(connection: self, settings: settings, handshake: handshake)
        let bootstrap = ClientBootstrap(group: loop)
            .connectTimeout(options.connectTimeout)
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .channelInitializer { ch in
                ch.eventLoop.makeCompletedFuture { try ch.pipeline.syncOperations.addHandler(handler) }
            }
        let ch: Channel
        do {
            ch = try await bootstrap.connect(host: server.host, port: server.port).get()
        } catch {
            handshake.fail(error)
            throw NATSError.notConnected("\(server): \(error)")
        }
        let timer = loop.scheduleTask(in: options.connectTimeout) {
            handshake.fail(NATSError.notConnected("\(server): handshake did not finish in time"))
            ch.close(promise: nil)
        }
        do {
            let info = try await handshake.futureResult.get()
            timer.cancel()
            guard didConnect(ch, server: server, info: info) else {
                try? await ch.close()
                throw NATSError.closed
            }
            lock.withLock { self.info = info }
            return ch
        } catch {
            timer.cancel()
            try? await ch.close()
            if let e = error as? NATSError { throw e }
            if error is NIOSSLError || error is BoringSSLError || error is NIOSSLExtraError {
                throw NATSError.tls("\(server): \(error)")
            }
            throw NATSError.notConnected("\(server): \(error)")
        }
    }

    private func makeSSLContext() throws -> NIOSSLContext {
        var c = TLSConfiguration.makeClientConfiguration()
        if let tls = options.tls {
            if let roots = tls.trustRootsPEMFile { c.trustRoots = .file(roots) }
            if let cert = tls.certificatePEMFile, let key = tls.privateKeyPEMFile {
                do {
                    c.certificateChain = try NIOSSLCertificate.fromPEMFile(cert).map { .certificate($0) }
                    c.privateKey = .privateKey(try NIOSSLPrivateKey(file: key, format: .pem))
                } catch {
                    throw NATSError.tls("cannot read client certificate \(cert): \(error)")
                }
            }
            if tls.insecureSkipVerify { c.certificateVerification = .none }
        }
        do {
            return try NIOSSLContext(configuration: c)
        } catch {
            throw NATSError.tls("cannot set up TLS: \(error)")
        }
    }
}

struct HandshakeSettings: @unchecked Sendable {
    let server: NATSServerAddress
    let options: NATSOptions
    let sslContext: NIOSSLContext?
    let requireTLS: Bool
}

/// Reads server bytes through `NATSParser`, runs the handshake, then hands every operation to the connection.
final class NATSChannelHandler: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private enum Phase { case awaitingInfo, awaitingPong(NATSServerInfo), ready }
    private var phase = Phase.awaitingInfo
    private var parser: NATSParser
    private let connection: NATSConnection
    private let settings: HandshakeSettings
    private let handshake: EventLoopPromise<NATSServerInfo>

    init(connection: NATSConnection, settings: HandshakeSettings, handshake: EventLoopPromise<NATSServerInfo>) {
        self.connection = connection
        self.settings = settings
        self.handshake = handshake
        parser = NATSParser(maxControlLine: settings.options.maxControlLine, maxPayload: 1 << 20)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let buffer = unwrapInboundIn(data)
        buffer.withUnsafeReadableBytes { parser.append($0) }
        do {
            while let op = try parser.next() {
                try process(op, context: context)
            }
        } catch let e as NATSProtocolError {
            fail(.protocolViolation(e), context: context)
        } catch let e as NATSError {
            fail(e, context: context)
        } catch {
            fail(.tls("\(error)"), context: context)
        }
    }

    private func fail(_ e: NATSError, context: ChannelHandlerContext) {
        // The connect loop logs handshake failures (once per outage); only a broken established connection here.
        if case .ready = phase { connection.logger.warning("NATS: \(settings.server): \(e)") }
        connection.lock.withLock { connection.lastError = e }
        handshake.fail(e)
        context.close(promise: nil)
    }

    private func process(_ op: NATSServerOp, context: ChannelHandlerContext) throws {
        switch phase {
        case .awaitingInfo:
            guard case .info(let json) = op else {
                throw NATSError.badResponse("server did not start with INFO")
            }
            let info = try NATSServerInfo.decode(json)
            parser.maxPayload = max(1024, info.maxPayload ?? (1 << 20))
            let useTLS = settings.requireTLS || (info.tlsRequired ?? false)
            if useTLS {
                let ctx: NIOSSLContext
                if let c = settings.sslContext {
                    ctx = c
                } else {
                    ctx = try NIOSSLContext(configuration: .makeClientConfiguration())
                }
                let host = settings.server.host
                let isIP = host.contains(":") || host.allSatisfy { $0.isNumber || $0 == "." }
                let tlsHandler = try NIOSSLClientHandler(context: ctx, serverHostname: isIP ? nil : host)
                try context.pipeline.syncOperations.addHandler(tlsHandler, position: .first)
            }
            let o = settings.options
            let s = settings.server
            let request = ConnectRequest(
                tlsRequired: useTLS, name: o.name,
                authToken: s.token ?? (s.user == nil ? o.token : nil),
                user: s.user ?? (s.token == nil ? o.user : nil),
                pass: s.password ?? (s.token == nil && s.user == nil ? o.password : nil))
            var out = NATSClientOp.connect(json: request.json())
            out += NATSClientOp.ping
            context.writeAndFlush(wrapOutboundOut(context.channel.allocator.buffer(bytes: out)), promise: nil)
            phase = .awaitingPong(info)
        case .awaitingPong(let info):
            switch op {
            case .pong:
                phase = .ready
                handshake.succeed(info)
            case .err(let text):
                let lower = text.lowercased()
                if lower.contains("authorization") || lower.contains("authentication") || lower.contains("user")
                    && lower.contains("credentials")
                {
                    throw NATSError.authorizationViolation(text)
                }
                throw NATSError.serverError(text)
            case .ping:
                context.writeAndFlush(wrapOutboundOut(context.channel.allocator.buffer(bytes: NATSClientOp.pong)), promise: nil)
            case .info(let json):
                if let i = try? NATSServerInfo.decode(json) { phase = .awaitingPong(i) }
            case .ok, .msg:
                break
            }
        case .ready:
            if case .err(let text) = op {
                let lower = text.lowercased()
                if lower.contains("authorization") || lower.contains("stale connection") || lower.contains("slow consumer") {
                    connection.lock.withLock { connection.lastError = .serverError(text) }
                }
            }
            connection.handle(op, from: context.channel)
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        handshake.fail(NATSError.notConnected("\(settings.server) closed the connection"))
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        let e: NATSError
        if error is NIOSSLError || error is BoringSSLError || error is NIOSSLExtraError {
            e = .tls("\(error)")
        } else {
            e = .notConnected("\(settings.server): \(error)")
        }
        connection.lock.withLock { connection.lastError = e }
        handshake.fail(e)
        context.close(promise: nil)
    }
}
