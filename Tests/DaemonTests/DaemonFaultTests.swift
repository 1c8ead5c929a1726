import EventEmitter
import EventStore
import EventWire
import Foundation
import GridEvents
import Testing

/// The daemon under store faults and stalled peers: fails closed on fdatasync errors, splits batches larger than a
/// segment, and closes connections that stall mid-frame or never read their answers.
@Suite("grid-eventd under faults", .serialized, .timeLimit(.minutes(3)))
struct DaemonFaultTests {
    /// A blocking client connection with a receive timeout.
    final class Client {
        let fd: Int32
        var decoder = WireDecoder()

        init(_ socket: String, timeout: Int = 5) throws {
            fd = Foundation.socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
            guard connectUnix(fd, socket) else { throw HarnessError("cannot connect to \(socket)") }
            var tv = timeval(tv_sec: timeout, tv_usec: 0)
            setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        }

        deinit { close(fd) }

        @discardableResult
        func send(_ bytes: [UInt8]) -> Int {
            bytes.withUnsafeBytes { Foundation.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
        }

        /// The next frame; nil on close or timeout.
        func next() -> WireFrame? {
            var buffer = [UInt8](repeating: 0, count: 4096)
            while true {
                if let f = try? decoder.next() { return f }
                let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
                if n <= 0 { return nil }
                decoder.append(buffer[0..<n])
            }
        }
    }

    func events(_ tag: String, from: Int, count: Int) -> [GridEvent] {
        (from..<(from + count)).map { i in
            let kind = GridEventKind.nodeCrashed(nodeId: "node-\(i % 7)", agentId: "agent-001", exitCode: nil, signal: 9)
            return GridEvent(id: GridEvent.makeId(typeName: kind.typeName, producerTag: tag, sequence: UInt64(i)),
                             timestamp: 1_764_374_400_000_000 + Int64(i), kind: kind)
        }
    }

    @Test func fdatasyncFailureFailsClosedAndNothingMoreIsAcknowledged() throws {
        let dir = TempDir("fsyncfail")
        let daemon = DaemonProcess(dataDir: dir.file("data"), socket: dir.file("s.sock"))
        // Opening a fresh store makes four syncs (the parent of the new data directory, the data directory before
        // recovery, the first segment, the directory again); two batches are synced, the seventh sync fails.
        daemon.environment["GRID_EVENTD_FAULTS"] = "fdatasync:EIO:after=6"
        try daemon.start()
        let c = try Client(daemon.socket)
        c.send(WireCodec.encode(.hello(producerId: "ff", client: "test")))
        guard case .welcome? = c.next() else { Issue.record("no welcome"); return }
        var acked: [Int] = []
        var errors: [String] = []
        for b in 0..<6 {
            let batch = events("00000000f5f5", from: b * 10 + 1, count: 10)
            c.send(WireCodec.encode(.batch(producerId: "ff", firstSequence: UInt64(b * 10 + 1), events: batch)))
            switch c.next() {
            case .ack(_, let through)?:
                #expect(errors.isEmpty, "an ack after the store failed")
                acked.append(Int(through))
            case .error(let code, let message, _)?:
                #expect(code == .storeUnavailable)
                errors.append(message)
            default:
                Issue.record("no answer to batch \(b)")
            }
        }
        #expect(!acked.isEmpty)
        #expect(errors.count >= 2)
        #expect(errors.first?.contains("fdatasync failed") == true, "\(errors)")
        #expect(errors.last?.contains("failed closed") == true, "\(errors)")
        #expect(daemon.log().contains("store failed closed"))
        #expect(daemon.log().components(separatedBy: "store failed closed").count == 2, "said once, not per batch")
        #expect(daemon.stop() == 0)
        // Every acknowledged event is there after the operator's restart.
        try withStore(daemon.dataDir) { store in
            for seq in 1...(acked.max() ?? 0) {
                #expect(store.contains(id: GridEvent.makeId(typeName: "node_crashed", producerTag: "00000000f5f5", sequence: UInt64(seq))))
            }
        }
    }

    @Test func batchLargerThanASegmentIsSplitIntoFrames() throws {
        let dir = TempDir("split")
        let daemon = DaemonProcess(dataDir: dir.file("data"), socket: dir.file("s.sock"), extra: ["--segment-size", "131072"])
        try daemon.start()
        let r = try Child("emit-load", [
            "--storage", daemon.socket, "--count", "20000", "--producer", "big", "--spool-dir", dir.file("spool"), "--flush-timeout", "60",
        ]).wait()
        #expect(r.status == 0, "\(r.stderr.suffix(1000))")
        #expect(summary(r.stdout)["acked"] as? Int == 20000)
        #expect(daemon.stop() == 0)
        try withStore(daemon.dataDir) { store in #expect(store.stats.events == 20000) }
        let verify = try Child("segdump", [daemon.dataDir, "--verify"]).wait()
        #expect(verify.status == 0, "\(verify.stdout.suffix(1000))")
    }

    @Test func aBusyProducerIsNeverTakenForAStalledOne() throws {
        // Under load most reads end inside a frame; only a frame that makes no progress may time out.
        let dir = TempDir("busy")
        let daemon = DaemonProcess(dataDir: dir.file("data"), socket: dir.file("s.sock"), extra: ["--frame-timeout", "0.3"])
        try daemon.start()
        let r = try Child("emit-load", [
            "--storage", daemon.socket, "--count", "80000", "--producer", "busy", "--spool-dir", dir.file("spool"),
        ]).wait()
        #expect(r.status == 0, "\(r.stderr.suffix(1000))")
        #expect(summary(r.stdout)["acked"] as? Int == 80000)
        #expect(summary(r.stdout)["reconnects"] as? Int == 0, "\(r.stderr.suffix(1000))")
        #expect(!daemon.log().contains("stayed incomplete"))
        #expect(daemon.stop() == 0)
    }

    @Test func stalledPeersAreClosedAfterTheFrameTimeout() throws {
        let dir = TempDir("stall")
        let daemon = DaemonProcess(dataDir: dir.file("data"), socket: dir.file("s.sock"), extra: ["--frame-timeout", "0.5"])
        try daemon.start()
        // Hello, then half a frame, then nothing.
        let half = try Client(daemon.socket)
        half.send(WireCodec.encode(.hello(producerId: "half", client: "test")))
        half.send(Array(WireCodec.encode(.ping(nonce: 1)).prefix(10)))
        let start = Date()
        guard case .welcome? = half.next() else { Issue.record("no welcome"); return }
        guard case .error(let code, let message, _)? = half.next() else { Issue.record("no error frame"); return }
        #expect(code == .timeout)
        #expect(message.contains("incomplete"))
        #expect(half.next() == nil, "closed")
        #expect(Date().timeIntervalSince(start) < 3)

        // A flood of pings from a peer that never reads the pongs: the daemon stops reading, then closes.
        let flood = try Client(daemon.socket)
        _ = fcntl(flood.fd, F_SETFL, fcntl(flood.fd, F_GETFL) | O_NONBLOCK)
        flood.send(WireCodec.encode(.hello(producerId: "flood", client: "test")))
        let pings = [UInt8]((0..<512).flatMap { WireCodec.encode(.ping(nonce: UInt64($0))) })
        var closed = false
        let deadline = Date().addingTimeInterval(10)
        var sent = 0
        while Date() < deadline, !closed {
            let n = flood.send(pings)
            if n > 0 { sent += n }
            if n < 0, errno == EPIPE || errno == ECONNRESET { closed = true }
            var p = pollfd(fd: flood.fd, events: Int16(0x2000), revents: 0)  // POLLRDHUP: the daemon closed
            if poll(&p, 1, 0) > 0, Int32(p.revents) & (0x2000 | Int32(POLLHUP)) != 0 { closed = true }
            usleep(1000)
        }
        #expect(closed, "the daemon kept a peer that never reads (sent \(sent) bytes)")
        #expect(daemon.log().contains("has not read the daemon's answers"))
        // Others are still served.
        let ok = try Child("emit-load", ["--storage", daemon.socket, "--count", "100", "--producer", "ok", "--spool-dir", dir.file("spool")]).wait()
        #expect(ok.status == 0)
        #expect(daemon.stop() == 0)
    }
}

@Suite("grid-eventd HTTP binding", .serialized, .timeLimit(.minutes(1)))
struct DaemonBindingTests {
    @Test func refusesToBindBeyondLoopbackWithoutAToken() throws {
        let dir = TempDir("bind")
        let daemon = DaemonProcess(dataDir: dir.file("data"), socket: dir.file("s.sock"), extra: ["--http", "0.0.0.0:0"])
        #expect(try daemon.startExpectingRefusal() == 1)
        #expect(daemon.log().contains("binds beyond loopback"))
        let short = DaemonProcess(dataDir: dir.file("data"), socket: dir.file("s.sock"), extra: ["--http", "0.0.0.0:0", "--token", "short"])
        #expect(try short.startExpectingRefusal() == 1)
    }
}

@Suite("Names and peers at the edge", .serialized, .timeLimit(.minutes(2)))
struct EdgeValidationTests {
    @Test func producerNameCannotReachOutsideTheSpoolDirectory() throws {
        let dir = TempDir("name")
        var options = EmitterOptions(producerName: "../../escape me")
        options.spoolDirectory = dir.file("spool")
        let notices = NoticeLog()
        options.notice = { notices.add($0) }
        let emitter = EventEmitter(storage: dir.file("absent.sock"), options: options)
        #expect(emitter.options.producerName == "_._.._escape_me")
        #expect(!emitter.producerId.contains("/"))
        _ = emitter.emit(.nodeCrashed(nodeId: "node-1", agentId: "agent-001", exitCode: 1, signal: nil))
        emitter.close(timeout: 1)
        let files = try FileManager.default.contentsOfDirectory(atPath: dir.file("spool"))
        #expect(files.contains { $0.hasSuffix(".spool") }, "\(files)")
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir.path).sorted() == ["spool"])
        #expect(notices.all.contains { $0.contains("is not 1-64") })
        #expect(EmitterOptions.safeProducerName("grid-agent.001_x") == "grid-agent.001_x")
        #expect(EmitterOptions.safeProducerName("") == "emitter")
        #expect(EmitterOptions.safeProducerName(String(repeating: "a", count: 100)).count == 64)
    }

    @Test func secondUidNeedsSocketPermissionAndAnAllowance() throws {
        guard getuid() == 0, FileManager.default.isExecutableFile(atPath: "/usr/bin/setpriv") else { return }
        let dir = TempDir("uid2", mode: 0o755)
        let sockDir = TempDir("uid2sock", mode: 0o777)
        let spool = TempDir("uid2spool", mode: 0o777)
        let nobody = ["/usr/bin/setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]
        // The socket is 0660: another uid cannot even connect.
        let daemon = DaemonProcess(dataDir: dir.file("data"), socket: sockDir.file("s.sock"), extra: ["--allow-uid", "65534"])
        try daemon.start()
        let blocked = try Child("emit-load", [
            "--storage", daemon.socket, "--count", "5", "--producer", "blocked", "--spool-dir", spool.path, "--flush-timeout", "1",
        ], prefix: nobody).wait()
        #expect(blocked.status != 0)
        #expect(blocked.stderr.contains("Permission denied"), "\(blocked.stderr)")
        // With access to the socket and --allow-uid, it is served.
        chmod(daemon.socket, 0o666)
        let allowed = try Child("emit-load", [
            "--storage", daemon.socket, "--count", "10", "--producer", "allowed", "--spool-dir", spool.path, "--flush-timeout", "10",
        ], prefix: nobody).wait()
        #expect(allowed.status == 0, "\(allowed.stderr)")
        #expect(daemon.stop() == 0)
        try withStore(daemon.dataDir) { store in #expect(store.stats.events == 10) }
    }
}

final class NoticeLog: @unchecked Sendable {
    private let lock = NSLock()
    private var messages: [String] = []
    func add(_ m: String) { lock.lock(); messages.append(m); lock.unlock() }
    var all: [String] { lock.lock(); defer { lock.unlock() }; return messages }
}
