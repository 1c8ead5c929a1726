import Logging
import NIOCore

/// How a `NATSConnection` connects, authenticates, keeps alive, reconnects and bounds its buffers.
public struct NATSOptions: Sendable {
    /// Servers to try in order; servers the cluster announces (INFO `connect_urls`) are added as they come.
    public var servers: [NATSServerAddress]
    /// Client name shown by the server (`/connz`).
    public var name: String?
    /// Token authentication (`auth_token`); a token in a URL wins for that server.
    public var token: String?
    /// User and password authentication; credentials in a URL win for that server.
    public var user: String?
    public var password: String?
    /// TLS settings; nil means plain TCP unless the URL is `tls://` or the server requires TLS (then the
    /// system's trust roots are used).
    public var tls: NATSTLSOptions?
    /// TCP connect plus handshake (INFO, TLS, CONNECT, PONG) must finish within this long.
    public var connectTimeout: TimeAmount = .seconds(2)
    /// Keepalive: a PING this often; after `maxPingsOutstanding` unanswered ones the connection is dead.
    public var pingInterval: TimeAmount = .seconds(20)
    public var maxPingsOutstanding = 2
    /// Reconnect backoff: the first retry after `reconnectInitialDelay`, doubling per failed attempt up to
    /// `reconnectMaxDelay`, each delay jittered by +-`reconnectJitter` (a fraction).
    public var reconnectInitialDelay: TimeAmount = .milliseconds(100)
    public var reconnectMaxDelay: TimeAmount = .seconds(2)
    public var reconnectJitter = 0.2
    /// After the server refused the credentials, wait this long before trying again (no tight loop on a bad
    /// password).
    public var authErrorRetryDelay: TimeAmount = .seconds(5)
    /// Stop reconnecting after this many failed attempts in a row (nil: never stop).
    public var maxReconnectAttempts: Int?
    /// Longest control line accepted from the server.
    public var maxControlLine = 4096
    /// Bytes of undelivered messages one subscription may hold before new ones are dropped (slow consumer).
    public var maxPendingBytesPerSubscription = 64 << 20
    /// Bytes queued for the socket (including what waits while reconnecting) before publishes are refused.
    public var maxOutboundBytes = 32 << 20
    /// Default timeout of `request` and JetStream API calls.
    public var requestTimeout: TimeAmount = .seconds(5)
    /// The event loop group to use; nil creates a one-thread group owned (and shut down) by the connection.
    public var eventLoopGroup: EventLoopGroup?
    public var logger = Logger(label: "nats")

    public init(servers: [NATSServerAddress]) {
        self.servers = servers
    }

    /// Options for a comma-separated list of URLs.
    /// - Throws: `NATSError.invalidURL`.
    public init(urls: String) throws(NATSError) {
        self.servers = try NATSServerAddress.parseList(urls)
    }
}

/// TLS settings (swift-nio-ssl).
public struct NATSTLSOptions: Sendable {
    /// PEM file of the certificate authorities to trust; nil uses the system's.
    public var trustRootsPEMFile: String?
    /// Client certificate and key (PEM) for servers that verify clients.
    public var certificatePEMFile: String?
    public var privateKeyPEMFile: String?
    /// Skip certificate verification entirely (tests and emergencies only).
    public var insecureSkipVerify = false

    public init(trustRootsPEMFile: String? = nil) {
        self.trustRootsPEMFile = trustRootsPEMFile
    }
}
