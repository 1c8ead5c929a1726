import EventStore
import EventWire
import Foundation
import GridEvents
import Testing

/// Bad clients get an error frame and are disconnected; everyone else carries on and the store is untouched.
@Suite("grid-eventd against bad input", .serialized, .timeLimit(.minutes(3)))
struct ProtocolAbuseTests {
    /// Connects, sends `bytes`, and returns every frame the daemon answers with until it closes (or 5 s pass).
    func exchange(_ socket: String, _ bytes: [UInt8]) -> (frames: [WireFrame], closed: Bool) {
        let fd = Foundation.socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        guard connectUnix(fd, socket) else { return ([], false) }
        // Longer than the daemon's 5 s hello timeout, so a silent connection sees the daemon's timeout frame
        // rather than its own receive timeout.
        var tv = timeval(tv_sec: 10, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        _ = bytes.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
        var decoder = WireDecoder()
        var frames: [WireFrame] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n <= 0 { return (frames, n == 0) }
            decoder.append(buffer[0..<n])
            while let f = try? decoder.next() { frames.append(f) }
        }
    }

    func errorCode(_ frames: [WireFrame]) -> WireErrorCode? {
        for f in frames { if case .error(let code, _, _) = f { return code } }
        return nil
    }

    @Test func garbageOversizedWrongVersionAndNoHelloAreRefused() throws {
        let dir = TempDir("abuse")
        let daemon = DaemonProcess(dataDir: dir.file("data"), socket: dir.file("s.sock"))
        try daemon.start()
        // A well-behaved producer runs throughout.
        let good = try Child("emit-load", [
            "--storage", daemon.socket, "--count", "20000", "--rate", "10000", "--producer", "good", "--spool-dir", dir.file("spool"),
        ])

        let garbage = exchange(daemon.socket, Array("GET / HTTP/1.1\r\nHost: x\r\n\r\n".utf8))
        #expect(errorCode(garbage.frames) == .malformed)
        #expect(garbage.closed)

        // A header announcing a 1 GiB body: refused from the header alone, before any allocation.
        var huge = WireCodec.frame(type: 3, body: [])
        huge[4] = 0; huge[5] = 0; huge[6] = 0; huge[7] = 0x40
        let oversized = exchange(daemon.socket, huge)
        #expect(errorCode(oversized.frames) == .tooLarge)
        #expect(oversized.closed)

        let wrongVersion = exchange(daemon.socket, WireCodec.encode(.hello(producerId: "v9", client: "x"), version: 9))
        #expect(errorCode(wrongVersion.frames) == .unsupportedVersion)
        if case .error(_, let message, let versions)? = wrongVersion.frames.first {
            #expect(versions == [1])
            #expect(message.contains("speaks 1"))
        }

        let event = SampleGrid.oneOfEach()[0]
        let noHello = exchange(daemon.socket, WireCodec.encode(.batch(producerId: "x", firstSequence: 1, events: [event])))
        #expect(errorCode(noHello.frames) == .helloRequired)

        var corrupt = WireCodec.encode(.hello(producerId: "c", client: "c"))
        corrupt[corrupt.count - 1] ^= 0xFF
        #expect(errorCode(exchange(daemon.socket, corrupt).frames) == .checksum)

        // A batch whose event is invalid (bad entity id) inside a well-formed frame.
        var hello = WireCodec.encode(.hello(producerId: "bad-events", client: "t"))
        let bad = GridEvent(id: "event-stop_requested-x-1", timestamp: 1, kind: .stopRequested(nodeId: "has space", agentId: "a"))
        hello += WireCodec.encode(.batch(producerId: "bad-events", firstSequence: 1, events: [bad]))
        let invalid = exchange(daemon.socket, hello)
        #expect(errorCode(invalid.frames) == .invalidEvent)

        // A correct client gets welcome and an ack.
        var ok = WireCodec.encode(.hello(producerId: "manual", client: "t"))
        ok += WireCodec.encode(.batch(producerId: "manual", firstSequence: 1, events: [event]))
        ok += WireCodec.encode(.ping(nonce: 7))
        let fd = Foundation.socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        #expect(connectUnix(fd, daemon.socket))
        _ = ok.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
        var decoder = WireDecoder()
        var got: [WireFrame] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        // Longer than the daemon's 5 s hello timeout, so a silent connection sees the daemon's timeout frame
        // rather than its own receive timeout.
        var tv = timeval(tv_sec: 10, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        while got.count < 3 {
            let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n <= 0 { break }
            decoder.append(buffer[0..<n])
            while let f = try? decoder.next() { got.append(f) }
        }
        close(fd)
        #expect(got.count == 3)
        if got.count == 3 {
            if case .welcome = got[0] {} else { Issue.record("expected welcome, got \(got[0])") }
            #expect(got.contains(.ack(producerId: "manual", durableThrough: 1)))
            #expect(got.contains(.pong(nonce: 7)))
        }

        let r = good.wait()
        #expect(r.status == 0)
        #expect(summary(r.stdout)["acked"] as? Int == 20000)
        #expect(daemon.stop() == 0)
        try withStore(daemon.dataDir) { store in
            #expect(store.stats.events == 20001)
            #expect(store.contains(id: event.id))
            #expect(!store.contains(id: bad.id))
            #expect(store.recovery.skipped.isEmpty)
        }
    }

    @Test func helloTimeoutClosesSilentConnections() throws {
        let dir = TempDir("silent")
        let daemon = DaemonProcess(dataDir: dir.file("data"), socket: dir.file("s.sock"))
        try daemon.start()
        let start = Date()
        let silent = exchange(daemon.socket, [])
        #expect(errorCode(silent.frames) == .timeout)
        #expect(Date().timeIntervalSince(start) < 7)
        daemon.stop()
    }

    @Test func peerWithAnotherUidIsRefused() throws {
        guard getuid() == 0, FileManager.default.isExecutableFile(atPath: "/usr/bin/setpriv") else {
            // Needs root to run a client as another uid.
            return
        }
        let dir = TempDir("uid", mode: 0o755)
        let sockDir = TempDir("uidsock", mode: 0o777)
        let spool = TempDir("uidspool", mode: 0o777)
        let daemon = DaemonProcess(dataDir: dir.file("data"), socket: sockDir.file("s.sock"))
        try daemon.start()
        // The socket is 0660 root:root; open it up so the connection reaches the credential check.
        #expect((try FileManager.default.attributesOfItem(atPath: daemon.socket)[.posixPermissions] as? Int) == 0o660)
        // Bound in a private directory and renamed into place: nothing of the detour is left.
        #expect(try FileManager.default.contentsOfDirectory(atPath: sockDir.path) == ["s.sock"])
        chmod(daemon.socket, 0o666)
        let stranger = try Child("emit-load", [
            "--storage", daemon.socket, "--count", "10", "--producer", "stranger", "--spool-dir", spool.path, "--flush-timeout", "2",
        ], prefix: ["/usr/bin/setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]).wait()
        #expect(stranger.status != 0)
        #expect(stranger.stderr.contains("not allowed"), "\(stranger.stderr)")
        // The daemon's own uid is served.
        let friend = try Child("emit-load", ["--storage", daemon.socket, "--count", "10", "--producer", "friend", "--spool-dir", spool.path]).wait()
        #expect(friend.status == 0)
        #expect(daemon.log().contains("refused connection: peer uid 65534"))
        daemon.stop()
        try withStore(daemon.dataDir) { store in #expect(store.stats.events == 10) }
    }

    @Test func staleAndForeignSocketPaths() throws {
        let dir = TempDir("stale")
        // A regular file where the socket should go is refused.
        let path = dir.file("s.sock")
        FileManager.default.createFile(atPath: path, contents: Data("x".utf8))
        let refused = DaemonProcess(dataDir: dir.file("data"), socket: path)
        #expect(try refused.startExpectingRefusal() == 1)
        #expect(refused.log().contains("is not a socket"))
        try FileManager.default.removeItem(atPath: path)

        // A socket left by a crashed daemon is removed and replaced.
        let daemon = DaemonProcess(dataDir: dir.file("data"), socket: path)
        try daemon.start()
        daemon.kill()
        #expect(FileManager.default.fileExists(atPath: path))
        try daemon.start()
        // A second daemon on the same socket (another data dir) is refused: the socket is live.
        let second = DaemonProcess(dataDir: dir.file("data2"), socket: path)
        #expect(try second.startExpectingRefusal() == 1)
        #expect(second.log().contains("in use by a running daemon"))
        // And on the same data directory: the lock names the holder.
        let third = DaemonProcess(dataDir: dir.file("data"), socket: dir.file("other.sock"))
        #expect(try third.startExpectingRefusal() == 1)
        #expect(third.log().contains("is locked by pid"))
        #expect(daemon.stop() == 0)
        #expect(!FileManager.default.fileExists(atPath: path), "a clean stop removes the socket")
    }
}
