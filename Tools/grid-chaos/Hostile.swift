import EventStore
import EventWire
import Foundation
import GridEvents

/// Hostile clients against a daemon serving a well-behaved producer: connections that never say hello, half-sent
/// frames, a flood of tiny frames from a peer that never reads the answers. The daemon must close each of them
/// within its per-connection timeouts, keep its memory and file descriptors bounded, and never stall the
/// well-behaved producer.
struct Hostile: Scenario {
    let name = "hostile"
    let frameTimeout = 2.0

    func run(_ ctx: ChaosContext) throws -> ScenarioResult {
        var result = ScenarioResult(name: name)
        let dir = try ctx.directory(name)
        let cluster = Cluster(ctx, dir: dir, daemonArguments: ["--frame-timeout", "\(frameTimeout)"])
        try cluster.daemon.start()
        try cluster.startEmitters(1, rate: 2000, prefix: "good")
        cluster.watch(1.0)
        let baseFds = cluster.daemon.fdCount()
        let baseRSS = cluster.daemon.sample()
        var maxFds = baseFds

        func attack(_ label: String, clients: [RawClient], during: Double, within: Double, _ action: (RawClient) -> Void = { _ in }) {
            let ackedBefore = cluster.acked
            let end = Date().addingTimeInterval(during)
            repeat {
                for c in clients { action(c) }
                cluster.daemon.sample()
                maxFds = max(maxFds, cluster.daemon.fdCount())
                usleep(2000)
            } while Date() < end
            let closed = cluster.wait(within) { clients.allSatisfy { $0.closedByPeer() } }
            maxFds = max(maxFds, cluster.daemon.fdCount())
            let open = clients.filter { !$0.closedByPeer() }.count
            result.check(closed, "\(label): \(open) of \(clients.count) connection(s) still open after \(within) s")
            // Its progress file is rewritten every 200 ms: give it a moment to show the acks.
            let served = cluster.wait(5) { cluster.acked > ackedBefore }
            result.check(served, "\(label): the well-behaved producer got no acks meanwhile")
            for c in clients { c.close() }
        }

        // 300 connections that never say hello: past 256 refused at once, the rest closed after the hello timeout.
        let silent = (0..<300).compactMap { _ in RawClient(cluster.daemon.socket) }
        attack("never hello", clients: silent, during: 0.5, within: 8)
        // Hello, then half a frame, then nothing.
        let half = (0..<50).compactMap { _ in RawClient(cluster.daemon.socket) }
        for c in half {
            _ = c.send(WireCodec.encode(.hello(producerId: "half-open", client: "grid-chaos")))
            _ = c.send(Array(WireCodec.encode(.ping(nonce: 1)).prefix(10)))
        }
        attack("half-open", clients: half, during: 0.1, within: frameTimeout + 3)
        // A flood of tiny frames (pings) from peers that never read the pongs.
        let flood = (0..<20).compactMap { _ in RawClient(cluster.daemon.socket) }
        for c in flood { _ = c.send(WireCodec.encode(.hello(producerId: "flood", client: "grid-chaos"))) }
        let pings = [UInt8]((0..<256).flatMap { WireCodec.encode(.ping(nonce: UInt64($0))) })
        var sent = 0
        attack("tiny-frame flood, never reading", clients: flood, during: 3, within: frameTimeout + 4) { c in sent += c.send(pings) }
        // Garbage: closed at once.
        let garbage = (0..<20).compactMap { _ in RawClient(cluster.daemon.socket) }
        for c in garbage { _ = c.send([UInt8](repeating: 0x41, count: 64)) }
        attack("garbage", clients: garbage, during: 0.1, within: 3)

        cluster.watch(1.0)
        let endFds = cluster.daemon.fdCount()
        let growth = cluster.daemon.maxRSS - baseRSS
        result.check(endFds <= baseFds + 2, "file descriptors did not return to baseline (\(baseFds) -> \(endFds))")
        // 256 connections at most, plus connections past the limit that are accepted only to be refused and closed.
        result.check(maxFds <= baseFds + 256 + 64, "file descriptors peaked at \(maxFds) (baseline \(baseFds), limit 256 connections)")
        result.check(growth < 128 << 20, "resident memory grew by \(growth >> 20) MiB under attack")
        result.check(cluster.daemon.isRunning, "grid-eventd died under attack")
        result.notes.append("fds \(baseFds) -> peak \(maxFds) -> \(endFds); RSS growth \(growth >> 20) MiB; the flood pushed \(sent >> 10) KiB of pings before the daemon stopped reading")
        try cluster.finishAndVerify(&result)
        result.rounds = 4
        return result
    }
}

/// A raw, non-blocking client socket for hostile behaviour.
final class RawClient {
    private var fd: Int32
    private var sawClose = false

    init?(_ path: String) {
        fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { return nil }
        guard UnixSocket.connect(fd, path: path) else {
            Glibc.close(fd)
            return nil
        }
        _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
    }

    /// Sends what the socket takes without blocking; returns the bytes sent.
    func send(_ bytes: [UInt8]) -> Int {
        guard fd >= 0 else { return 0 }
        let n = bytes.withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
        if n < 0, errno == EPIPE || errno == ECONNRESET { sawClose = true }
        return max(0, n)
    }

    /// True once the daemon has closed its end. Reads nothing: a peer that never reads stays one.
    func closedByPeer() -> Bool {
        guard fd >= 0, !sawClose else { return true }
        var p = pollfd(fd: fd, events: Int16(0x2000) /* POLLRDHUP */, revents: 0)
        guard poll(&p, 1, 0) >= 0 else { return false }
        if Int32(p.revents) & (0x2000 | Int32(POLLHUP) | Int32(POLLERR)) != 0 { sawClose = true }
        return sawClose
    }

    func close() {
        if fd >= 0 { Glibc.close(fd) }
        fd = -1
    }

    deinit { close() }
}
