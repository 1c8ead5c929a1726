import NATSClient

/// Replication settings (`grid-eventd --replicate` / `--aggregate`, and the config file's keys of the same names).
public struct ReplicationConfig: Sendable {
    /// The NATS servers (at least one).
    public var servers: [NATSServerAddress]
    /// This host's id: the last token of its subject and the `host-<id>` entity on aggregators.
    public var hostId: String
    /// JetStream stream name (default `GRID_EVENTS`).
    public var stream = "GRID_EVENTS"
    /// Subject prefix; a host publishes to `<prefix>.<host id>`, the stream holds `<prefix>.>`.
    public var subjectPrefix = "grid.events"
    /// Stream replicas; nil means min(3, servers in the cluster as announced).
    public var replicas: Int?
    /// Duplicate window in seconds (at least 120).
    public var duplicateWindowSeconds = 120
    /// Publishes awaiting their PubAck at once (the window).
    public var maxInFlight = 64
    /// Largest message; frames larger are split in parts (the server's max_payload is the hard bound).
    public var maxMessageBytes = 512 << 10
    /// The aggregator's durable consumer name (default `aggregator-<host id>`).
    public var consumerName: String?
    /// Messages the aggregator may hold unacknowledged (the consumer's max_ack_pending).
    public var maxAckPending = 1024
    /// Pull batch size of the aggregator.
    public var pullBatch = 256
    /// TLS trust roots for `tls://` servers.
    public var tlsCAFile: String?

    public init(servers: [NATSServerAddress], hostId: String) {
        self.servers = servers
        self.hostId = hostId
    }

    public var subject: String { "\(subjectPrefix).\(hostId)" }
    public var streamSubjects: String { "\(subjectPrefix).>" }
    public var durableName: String { consumerName ?? "aggregator-\(hostId)" }

    /// What is wrong with these settings, or nil.
    public var problem: String? {
        if servers.isEmpty { return "no NATS server given" }
        if !Self.isToken(hostId) { return "host id \"\(hostId)\" must be 1-64 of A-Z a-z 0-9 - _" }
        if !Self.isToken(stream) { return "stream name \"\(stream)\" must be 1-64 of A-Z a-z 0-9 - _" }
        if !Self.isToken(durableName) { return "consumer name \"\(durableName)\" must be 1-64 of A-Z a-z 0-9 - _" }
        do { try NATSSubject.validate(subjectPrefix + ".x", wildcards: false) } catch {
            return "subject prefix \"\(subjectPrefix)\": \(error)"
        }
        if let r = replicas, !(1...5).contains(r) { return "replicas must be 1-5, not \(r)" }
        if duplicateWindowSeconds < 120 { return "duplicate window must be at least 120 s" }
        if !(1...4096).contains(maxInFlight) { return "in-flight window must be 1-4096" }
        return nil
    }

    static func isToken(_ s: String) -> Bool {
        !s.isEmpty && s.utf8.count <= 64
            && s.utf8.allSatisfy { ($0 >= 0x30 && $0 <= 0x39) || ($0 >= 0x41 && $0 <= 0x5A) || ($0 >= 0x61 && $0 <= 0x7A) || $0 == 0x2D || $0 == 0x5F }
    }

    func natsOptions(name: String, logger: Logger) -> NATSOptions {
        var o = NATSOptions(servers: servers)
        o.name = name
        o.logger = logger
        o.pingInterval = .seconds(5)
        o.maxPingsOutstanding = 3
        o.reconnectMaxDelay = .seconds(2)
        o.requestTimeout = .seconds(5)
        if let ca = tlsCAFile { o.tls = NATSTLSOptions(trustRootsPEMFile: ca) }
        return o
    }
}

import Logging
