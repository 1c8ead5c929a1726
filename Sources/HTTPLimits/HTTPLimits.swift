import Glibc
import HummingbirdCore
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1

/// Limits an HTTP port puts on its clients, so that slow or idle connections cannot hold its file descriptors:
/// grid-eventd's API and grid-master's control API (README, "HTTP limits").
public struct HTTPLimits: Sendable {
    /// Seconds a request's head (request line and headers) may take to arrive, from its first byte; a slower one
    /// is answered 408 and closed.
    public var headerTimeout: Double = 10
    /// Seconds a connection may stay open with no request in flight (kept alive between requests, or opened and
    /// silent), and a request body may pause between two reads, before it is closed. A response being written (the
    /// live stream) is never cut by either timeout.
    public var idleTimeout: Double = 60
    /// Open connections from one peer address; one more is answered 503 and closed at once.
    public var maxConnectionsPerPeer: Int = 64
    /// Open connections in all; one more is answered 503 and closed at once.
    public var maxConnections: Int = HTTPLimits.defaultMaxConnections

    public init() {}

    /// Half the process's open-file limit (the rest is for the store's files and the producer socket), between 64
    /// and 4,096.
    public static var defaultMaxConnections: Int {
        var limit = rlimit()
        guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0 else { return 1024 }
        let soft = Int(clamping: min(limit.rlim_cur, 1 << 20))
        return min(4096, max(64, soft / 2))
    }

    /// What is wrong with these limits, as a sentence naming the flag, or nil.
    public var problem: String? {
        if !(headerTimeout > 0 && headerTimeout <= 3600) {
            return "--http-header-timeout (http_header_timeout) must be more than 0 and at most 3600 seconds, not \(headerTimeout)"
        }
        if !(idleTimeout > 0 && idleTimeout <= 86_400) {
            return "--http-idle-timeout (http_idle_timeout) must be more than 0 and at most 86400 seconds, not \(idleTimeout)"
        }
        if maxConnectionsPerPeer < 1 {
            return "--http-max-connections-per-peer (http_max_connections_per_peer) must be at least 1, not \(maxConnectionsPerPeer)"
        }
        if maxConnections < 1 { return "--http-max-connections (http_max_connections) must be at least 1, not \(maxConnections)" }
        return nil
    }
}

/// The connections an HTTP port has open, by peer address, and what its limits closed (shared by every
/// connection of one server; thread-safe).
public final class HTTPConnectionGate: Sendable {
    public let limits: HTTPLimits
    let logger: Logger

    struct State {
        var open = 0
        var byPeer: [String: Int] = [:]
        var refused = 0
        var headerTimeouts = 0
        var idleTimeouts = 0
        var lastRefusalLog = 0.0
    }

    private let state = NIOLockedValueBox(State())

    public init(limits: HTTPLimits, logger: Logger) {
        self.limits = limits
        self.logger = logger
    }

    /// Counts so far: connections open now, refused by the caps, closed by the header and idle timeouts.
    public var counts: (open: Int, refused: Int, headerTimeouts: Int, idleTimeouts: Int) {
        state.withLockedValue { ($0.open, $0.refused, $0.headerTimeouts, $0.idleTimeouts) }
    }

    /// Admits a connection from `peer`, or refuses it (caps reached).
    func admit(_ peer: String) -> Bool {
        let (admitted, log) = state.withLockedValue { s -> (Bool, String?) in
            let fromPeer = s.byPeer[peer, default: 0]
            if s.open < limits.maxConnections, fromPeer < limits.maxConnectionsPerPeer {
                s.open += 1
                s.byPeer[peer] = fromPeer + 1
                return (true, nil)
            }
            s.refused += 1
            let now = monotonicSeconds()
            guard now - s.lastRefusalLog >= 10 else { return (false, nil) }
            s.lastRefusalLog = now
            let why = s.open >= limits.maxConnections ? "\(s.open) connections open (--max-connections \(limits.maxConnections))"
                : "\(fromPeer) connections open from \(peer) (--max-connections-per-peer \(limits.maxConnectionsPerPeer))"
            return (false, "refusing HTTP connections: \(why); \(s.refused) refused so far")
        }
        if let log { logger.warning("\(log)") }
        return admitted
    }

    func release(_ peer: String) {
        state.withLockedValue { s in
            s.open -= 1
            let left = s.byPeer[peer, default: 1] - 1
            if left > 0 { s.byPeer[peer] = left } else { s.byPeer.removeValue(forKey: peer) }
        }
    }

    func timedOut(header: Bool) {
        state.withLockedValue { s in
            if header { s.headerTimeouts += 1 } else { s.idleTimeouts += 1 }
        }
    }
}

func monotonicSeconds() -> Double { Double(NIODeadline.now().uptimeNanoseconds) / 1e9 }

extension HTTPServerBuilder {
    /// HTTP/1.1 with `gate`'s limits: Hummingbird's own `http1()` with two handlers of ours added to every
    /// connection (`ConnectionCapHandler` first, `RequestTimeoutHandler` right after the request decoder).
    public static func http1(gate: HTTPConnectionGate) -> HTTPServerBuilder {
        HTTPServerBuilder { responder in
            LimitedHTTP1Channel(inner: HTTP1Channel(responder: responder), gate: gate)
        }
    }
}

/// `HTTP1Channel` with the limits' handlers in its pipeline.
struct LimitedHTTP1Channel: ServerChildChannel {
    typealias Value = HTTP1Channel.Value
    let inner: HTTP1Channel
    let gate: HTTPConnectionGate

    func setup(channel: any Channel, logger: Logger) -> EventLoopFuture<Value> {
        inner.setup(channel: channel, logger: logger).flatMapThrowing { value in
            let ops = channel.pipeline.syncOperations
            try ops.addHandler(ConnectionCapHandler(gate: gate), position: .first)
            let decoder = try ops.handler(type: ByteToMessageHandler<HTTPRequestDecoder>.self)
            try ops.addHandler(RequestTimeoutHandler(gate: gate), position: .after(decoder))
            return value
        }
    }

    func handle(value: Value, logger: Logger) async {
        await inner.handle(value: value, logger: logger)
    }
}
