import EventWire
import GridBase
import GridEvents
#if canImport(Glibc)
import Glibc
#endif

/// A blocking Unix-socket connection to grid-eventd, used only by the emitter's worker thread.
final class DaemonConnection {
    struct Failure: Error, CustomStringConvertible {
        var description: String
        /// The daemon refused what was sent as invalid: resending will not help.
        var rejected = false
        /// The daemon could not store the batch (no space, store failed closed): nothing was acknowledged;
        /// back off, spool, and resend later.
        var storeUnavailable = false
    }

    private let fd: Int32
    private var decoder = WireDecoder(maxFrame: 1 << 20)

    /// Connects and says hello; throws with a one-line reason.
    init(path: String, producerId: String, client: String, timeoutSeconds: Double) throws {
        fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw Failure(description: "socket: \(String(cString: strerror(errno)))") }
        var tv = timeval(tv_sec: Int(timeoutSeconds), tv_usec: Int((timeoutSeconds - Double(Int(timeoutSeconds))) * 1e6))
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        guard path.utf8.count <= UnixSocket.maxPathLength else {
            close(fd)
            throw Failure(description: "socket path \(path) is too long")
        }
        let connected = UnixSocket.connect(fd, path: path)
        guard connected else {
            let reason = String(cString: strerror(errno))
            close(fd)
            throw Failure(description: "cannot connect to \(path): \(reason)")
        }
        do {
            try send(WireCodec.encode(.hello(producerId: producerId, client: client)))
            switch try receive(timeout: timeoutSeconds) {
            case nil: throw Failure(description: "no answer to hello within \(timeoutSeconds) s")
            case .welcome: break
            case .error(_, let message, _): throw Failure(description: "daemon refused the connection: \(message)")
            default: throw Failure(description: "unexpected answer to hello")
            }
        } catch {
            close(fd)
            throw error
        }
    }

    deinit { close(fd) }

    /// Sends one batch frame (docs/FORMAT.md, "Socket protocol"): the events of `producer` numbered from
    /// `firstSequence` on, each written into the body by `encode`.
    func sendBatch<Events: Collection>(
        producer: String, firstSequence: UInt64, _ events: Events, encode: (Events.Element, inout [UInt8]) -> Void
    ) throws {
        var body: [UInt8] = []
        body.reserveCapacity(64 + events.count * 128)
        EventEncoder.string(producer, &body)
        EventEncoder.u64(firstSequence, &body)
        EventEncoder.varint(UInt64(events.count), &body)
        for e in events { encode(e, &body) }
        try send(WireCodec.frame(type: DaemonConnection.batchFrameType, body: body))
    }

    /// The batch frame's type code.
    static let batchFrameType: UInt8 = 3

    func send(_ bytes: [UInt8]) throws {
        try bytes.withUnsafeBytes { b in
            var done = 0
            while done < b.count {
                let n = Glibc.send(fd, b.baseAddress! + done, b.count - done, Int32(MSG_NOSIGNAL))
                if n < 0 {
                    if errno == EINTR { continue }
                    throw Failure(description: "send: \(String(cString: strerror(errno)))")
                }
                done += n
            }
        }
    }

    /// The next frame from the daemon, waiting at most `timeout` seconds in slices of `slice`, calling `idle`
    /// between slices (the emitter spills its queue there). Nil on timeout.
    func receive(timeout: Double, slice: Double = 0.005, idle: () -> Void = {}) throws -> WireFrame? {
        let deadline = monotonicNanos() + UInt64(timeout * 1e9)
        var chunk = [UInt8](repeating: 0, count: 64 << 10)
        while true {
            do {
                if let frame = try decoder.next() { return frame }
            } catch {
                throw Failure(description: "bad frame from daemon: \(error)")
            }
            var pfd = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            let rc = poll(&pfd, 1, Int32(slice * 1000))
            if rc < 0 {
                if errno == EINTR { continue }
                throw Failure(description: "poll: \(String(cString: strerror(errno)))")
            }
            if rc == 0 {
                idle()
                if monotonicNanos() >= deadline { return nil }
                continue
            }
            let n = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n < 0 {
                if errno == EINTR || errno == EAGAIN { continue }
                throw Failure(description: String(cString: strerror(errno)))
            }
            if n == 0 { throw Failure(description: "daemon closed the connection") }
            decoder.append(chunk[0..<n])
        }
    }

    /// The next frame, blocking up to the socket timeout.
    func receive() throws -> WireFrame {
        guard let frame = try receive(timeout: 3600) else { throw Failure(description: "timed out waiting for the daemon") }
        return frame
    }

    /// Waits until the daemon acks `producer` through at least `through`; returns the acked sequence.
    /// Throws on an error frame, a closed connection or after `timeout` seconds without progress.
    func awaitAck(producer: String, through: UInt64, timeout: Double, idle: () -> Void = {}) throws -> UInt64 {
        while true {
            guard let frame = try receive(timeout: timeout, idle: idle) else {
                throw Failure(description: "no ack within \(timeout) s")
            }
            switch frame {
            case .ack(let p, let durable) where p == producer:
                if durable >= through { return durable }
            case .ack, .pong:
                continue
            case .ping(let nonce):
                try send(WireCodec.encode(.pong(nonce: nonce)))
            case .error(let code, let message, _):
                throw Failure(
                    description: "daemon: \(message)", rejected: code == .invalidEvent || code == .tooLarge,
                    storeUnavailable: code == .storeUnavailable || code == .shuttingDown)
            default:
                throw Failure(description: "unexpected frame from daemon")
            }
        }
    }

    /// The next ack for `producer` (or nil after `timeout`), for pipelined batches.
    func nextAck(producer: String, timeout: Double, idle: () -> Void = {}) throws -> UInt64? {
        while true {
            guard let frame = try receive(timeout: timeout, idle: idle) else { return nil }
            switch frame {
            case .ack(let p, let durable) where p == producer: return durable
            case .ack, .pong: continue
            case .ping(let nonce): try send(WireCodec.encode(.pong(nonce: nonce)))
            case .error(let code, let message, _):
                throw Failure(
                    description: "daemon: \(message)", rejected: code == .invalidEvent || code == .tooLarge,
                    storeUnavailable: code == .storeUnavailable || code == .shuttingDown)
            default: throw Failure(description: "unexpected frame from daemon")
            }
        }
    }
}
