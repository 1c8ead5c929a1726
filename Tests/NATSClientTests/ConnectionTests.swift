import Foundation
import NATSClient
import NATSTestSupport
import NIOCore
import Testing

/// The core client against real nats-server processes on loopback.
@Suite(.serialized, .enabled(if: NATSServerProcess.isInstalled, Comment(rawValue: natsMissing)))
struct ConnectionTests {
    @Test(.timeLimit(.minutes(1))) func publishSubscribeAndRequest() async throws {
        let server = NATSServerProcess(jetStream: false)
        try server.start()
        let c = try await NATSConnection.connect(try testOptions(server.url))
        let sub = try c.subscribe("greet.*")
        for i in 0..<100 { try c.publish("greet.\(i % 3)", payload: Array("hi \(i)".utf8)) }
        for i in 0..<100 {
            let m = try #require(try await sub.next(timeout: .seconds(5)))
            #expect(m.payload == Array("hi \(i)".utf8))
            #expect(m.subject == "greet.\(i % 3)")
        }
        // Headers round trip.
        try c.publish("greet.h", payload: Array("x".utf8), headers: NATSHeaders([("K", "v")]))
        let h = try #require(try await sub.next(timeout: .seconds(5)))
        #expect(h.headers?["K"] == "v")

        // Request/reply through a responder on a second connection.
        let responder = try await NATSConnection.connect(try testOptions(server.url))
        let service = try responder.subscribe("svc.echo")
        let task = Task {
            while let m = try await service.next() {
                try responder.publish(m.replyTo!, payload: m.payload.reversed())
            }
        }
        try await responder.flush()
        for i in 0..<20 {
            let reply = try await c.request("svc.echo", payload: Array("abc\(i)".utf8), timeout: .seconds(5))
            #expect(reply.payload == Array("abc\(i)".utf8).reversed())
        }
        await #expect(throws: NATSError.noResponders("nobody.home")) {
            _ = try await c.request("nobody.home", timeout: .seconds(5))
        }
        sub.unsubscribe()
        try c.publish("greet.1", payload: [1])
        try await c.flush()
        #expect(try await sub.next() == nil, "an unsubscribed subscription ends")
        task.cancel()
        await responder.close()
        await c.close()
        #expect(c.connectionState == .closed)
        #expect(throws: NATSError.closed) { try c.publish("x", payload: [1]) }
    }

    @Test(.timeLimit(.minutes(1))) func tokenAndUserPasswordAuth() async throws {
        let tokenServer = NATSServerProcess(jetStream: false, extra: ["--auth", "s3cret"])
        try tokenServer.start()
        let ok = try await NATSConnection.connect(try testOptions(tokenServer.url) { $0.token = "s3cret" })
        try await ok.flush()
        await ok.close()
        let inURL = try await NATSConnection.connect(try testOptions("nats://s3cret@127.0.0.1:\(tokenServer.port)"))
        try await inURL.flush()
        await inURL.close()
        await #expect(throws: NATSError.self) {
            _ = try await NATSConnection.connect(try testOptions(tokenServer.url) { $0.token = "wrong" })
        }
        do {
            _ = try await NATSConnection.connect(try testOptions(tokenServer.url) { $0.token = "wrong" })
            Issue.record("a wrong token connected")
        } catch let e as NATSError {
            guard case .authorizationViolation = e else {
                Issue.record("expected authorizationViolation, got \(e)")
                return
            }
        }

        let userServer = NATSServerProcess(jetStream: false, extra: ["--user", "grid", "--pass", "p@ss"])
        try userServer.start()
        let u = try await NATSConnection.connect(try testOptions(userServer.url) {
            $0.user = "grid"
            $0.password = "p@ss"
        })
        try await u.flush()
        await u.close()
        let u2 = try await NATSConnection.connect(try testOptions("nats://grid:p%40ss@127.0.0.1:\(userServer.port)"))
        try await u2.flush()
        await u2.close()

        // Wrong password in the background: the client says why and retries slowly, never in a tight loop.
        let bad = NATSConnection(options: try testOptions(userServer.url) {
            $0.user = "grid"
            $0.password = "nope"
            $0.authErrorRetryDelay = .milliseconds(700)
        })
        try await Task.sleep(for: .seconds(2))
        let failures = bad.stats.connectFailures
        #expect(failures >= 1 && failures <= 4, "retries after an auth error are paced (\(failures) in 2 s)")
        guard case .authorizationViolation = bad.lastConnectionError else {
            Issue.record("lastConnectionError is \(String(describing: bad.lastConnectionError))")
            await bad.close()
            return
        }
        #expect(bad.connectionState != .connected)
        await bad.close()
    }

    @Test(.timeLimit(.minutes(1))) func tls() async throws {
        let dir = makeTempDirectory("nats-tls")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let status = try runCommand("/usr/bin/openssl", [
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=localhost",
            "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost",
            "-keyout", dir + "/key.pem", "-out", dir + "/cert.pem",
        ])
        try #require(status == 0, "openssl could not make a certificate")
        let server = NATSServerProcess(
            jetStream: false, extra: ["--tls", "--tlscert", dir + "/cert.pem", "--tlskey", dir + "/key.pem"])
        try server.start()
        let c = try await NATSConnection.connect(try testOptions(server.url) {
            $0.tls = NATSTLSOptions(trustRootsPEMFile: dir + "/cert.pem")
        })
        let sub = try c.subscribe("secure")
        try c.publish("secure", payload: Array("over tls".utf8))
        #expect(try await sub.next(timeout: .seconds(5))?.payload == Array("over tls".utf8))
        await c.close()
        // Without trusting the self-signed certificate the handshake fails with a TLS error.
        do {
            _ = try await NATSConnection.connect(try testOptions("tls://127.0.0.1:\(server.port)"))
            Issue.record("connected without trusting the certificate")
        } catch let e as NATSError {
            guard case .tls = e else {
                Issue.record("expected a TLS error, got \(e)")
                return
            }
        }
    }

    @Test(.timeLimit(.minutes(1))) func reconnectsAfterSIGKILLAndResubscribes() async throws {
        let server = NATSServerProcess(jetStream: false)
        try server.start()
        let c = try await NATSConnection.connect(try testOptions(server.url))
        let sub = try c.subscribe("after.restart")
        try await c.flush()
        server.kill()
        #expect(await waitFor(5) { c.connectionState == .reconnecting })
        // Publishes made while disconnected wait in the outbound buffer.
        try c.publish("after.restart", payload: Array("queued".utf8))
        try await Task.sleep(for: .milliseconds(300))
        try server.start()
        #expect(await waitFor(10) { c.connectionState == .connected })
        try c.publish("after.restart", payload: Array("fresh".utf8))
        let first = try #require(try await sub.next(timeout: .seconds(5)))
        let second = try #require(try await sub.next(timeout: .seconds(5)))
        #expect([first.payload, second.payload] == [Array("queued".utf8), Array("fresh".utf8)])
        #expect(c.stats.connects == 2)
        await c.close()
    }

    @Test(.timeLimit(.minutes(1))) func reconnectsToAnotherServerOfTheList() async throws {
        let cluster = NATSClusterProcesses(size: 2)
        try cluster.start()
        // Only the first server is configured; the second is learned from INFO's connect_urls.
        let c = try await NATSConnection.connect(try testOptions(cluster.servers[0].url))
        #expect(await waitFor(5) { c.knownServers.count == 2 }, "learned \(c.knownServers)")
        let sub = try c.subscribe("x")
        try await c.flush()
        cluster.servers[0].kill()
        #expect(await waitFor(10) { c.connectedServer?.port == cluster.servers[1].port })
        try c.publish("x", payload: [7])
        #expect(try await sub.next(timeout: .seconds(5))?.payload == [7])
        await c.close()
    }

    @Test(.timeLimit(.minutes(1))) func keepalivePingsDetectADeadServer() async throws {
        let server = NATSServerProcess(jetStream: false)
        try server.start()
        let c = try await NATSConnection.connect(try testOptions(server.url) {
            $0.pingInterval = .milliseconds(200)
            $0.maxPingsOutstanding = 2
        })
        let pid = try #require(server.process?.processIdentifier)
        kill(pid, SIGSTOP)  // alive but silent: only pings can tell
        let noticed = await waitFor(5) { c.connectionState != .connected }
        kill(pid, SIGCONT)
        #expect(noticed, "unanswered pings closed the connection")
        #expect(await waitFor(10) { c.connectionState == .connected }, "and it reconnected once the server woke up")
        #expect(c.stats.disconnects >= 1)
        await c.close()
    }

    @Test(.timeLimit(.minutes(1))) func buffersAreBounded() async throws {
        let dir = makeTempDirectory("nats-limits")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try "max_payload: 4096\n".write(toFile: dir + "/limits.conf", atomically: true, encoding: .utf8)
        let server = NATSServerProcess(jetStream: false, extra: ["-c", dir + "/limits.conf"])
        try server.start()
        let c = try await NATSConnection.connect(try testOptions(server.url) {
            $0.maxPendingBytesPerSubscription = 10_000
            $0.maxOutboundBytes = 256 << 10
        })
        #expect(c.serverInfo?.maxPayload == 4096)
        #expect(throws: NATSError.payloadTooLarge(size: 5000, limit: 4096)) {
            try c.publish("big", payload: [UInt8](repeating: 1, count: 5000))
        }
        // Slow consumer: nothing read while 100 x 1000 bytes arrive; the excess is dropped, counted and reported.
        let sub = try c.subscribe("flood")
        for _ in 0..<100 { try c.publish("flood", payload: [UInt8](repeating: 2, count: 1000)) }
        try await c.flush()
        #expect(sub.dropped > 0)
        await #expect(throws: NATSError.self) { _ = try await sub.next() }
        #expect(try await sub.next(timeout: .seconds(1)) != nil, "delivery goes on after the report")
        // Outbound buffer: while the server is down publishes queue up to the bound, then are refused.
        server.kill()
        #expect(await waitFor(5) { c.connectionState == .reconnecting })
        var refused = false
        for _ in 0..<400 {
            do { try c.publish("queued", payload: [UInt8](repeating: 3, count: 1000)) } catch NATSError.outboundBufferFull {
                refused = true
                break
            }
        }
        #expect(refused)
        await c.close()
    }

    @Test(.timeLimit(.minutes(1))) func unreachableServerConnectFails() async throws {
        let port = freeLoopbackPort()
        await #expect(throws: NATSError.self) {
            _ = try await NATSConnection.connect(try testOptions("nats://127.0.0.1:\(port)"))
        }
        // In the background the connection keeps trying and connects once a server appears.
        let c = NATSConnection(options: try testOptions("nats://127.0.0.1:\(port)"))
        try await Task.sleep(for: .milliseconds(500))
        #expect(c.connectionState != .connected)
        let server = NATSServerProcess(port: port, jetStream: false)
        try server.start()
        #expect(await waitFor(10) { c.connectionState == .connected })
        await c.close()
    }
}
