import EventReplication
import EventStore
import Foundation
import GridEvents
import Logging
import NATSClient
import NIOConcurrencyHelpers

/// Replication settings of grid-eventd: flags `--replicate`, `--aggregate`, `--host-id`, `--stream`,
/// `--subject-prefix`, `--replicas`, `--consumer`, `--nats-ca`, and the config-file keys `replicate`, `aggregate`,
/// `host_id`, `stream`, `subject_prefix`, `replicas`, `consumer`, `nats_ca`.
public struct ReplicationSettings: Sendable {
    /// NATS URLs to replicate this store to (host side).
    public var replicate: String?
    /// NATS URLs to aggregate every host's events from (cluster view).
    public var aggregate: String?
    public var hostId: String?
    public var stream: String?
    public var subjectPrefix: String?
    public var replicas: Int?
    public var consumer: String?
    public var natsCA: String?

    public init() {}

    public var isEnabled: Bool { replicate != nil || aggregate != nil }

    /// The configuration for `urls`, or an error message naming the bad value.
    public func config(urls: String) -> Result<ReplicationConfig, SettingsProblem> {
        let servers: [NATSServerAddress]
        do {
            servers = try NATSServerAddress.parseList(urls)
        } catch {
            return .failure(SettingsProblem(description: "\(error)"))
        }
        var c = ReplicationConfig(servers: servers, hostId: hostId ?? Self.defaultHostId())
        if let stream { c.stream = stream }
        if let subjectPrefix { c.subjectPrefix = subjectPrefix }
        c.replicas = replicas
        c.consumerName = consumer
        c.tlsCAFile = natsCA
        if let p = c.problem { return .failure(SettingsProblem(description: p)) }
        return .success(c)
    }

    /// The hostname, made a valid host id (other bytes become `-`).
    public static func defaultHostId() -> String {
        var buf = [CChar](repeating: 0, count: 256)
        gethostname(&buf, buf.count)
        let name = String(cString: buf).split(separator: ".").first.map(String.init) ?? "host"
        let mapped = name.utf8.map { b -> UInt8 in
            (b >= 0x30 && b <= 0x39) || (b >= 0x41 && b <= 0x5A) || (b >= 0x61 && b <= 0x7A) || b == 0x2D || b == 0x5F ? b : 0x2D
        }
        let s = String(decoding: mapped.prefix(64), as: UTF8.self)
        return s.isEmpty ? "host" : s
    }

    /// Applies one config-file key; false when the key is not a replication key.
    mutating func apply(_ e: ConfigFile.Entry) throws -> Bool {
        switch e.key {
        case "replicate": replicate = try e.string()
        case "aggregate": aggregate = try e.string()
        case "host_id": hostId = try e.string()
        case "stream": stream = try e.string()
        case "subject_prefix": subjectPrefix = try e.string()
        case "replicas": replicas = try e.int()
        case "consumer": consumer = try e.string()
        case "nats_ca": natsCA = try e.string()
        default: return false
        }
        return true
    }
}

/// Why replication settings cannot be used.
public struct SettingsProblem: Error, Sendable, CustomStringConvertible {
    public var description: String
}

/// The replicator and aggregator a daemon runs, and what `/api/stats` shows of them.
final class DaemonReplication: @unchecked Sendable {
    let replicator: Replicator?
    let aggregator: Aggregator?
    /// Set before the store opens: the replicator (when any) answers retention's floor through it.
    let floor: FloorBox

    final class FloorBox: @unchecked Sendable {
        private let lock = NIOLock()
        private var replicator: Replicator?
        private var pendingLosses: [ReplicationLoss] = []
        func set(_ r: Replicator) {
            let losses: [ReplicationLoss] = lock.withLock {
                replicator = r
                defer { pendingLosses = [] }
                return pendingLosses
            }
            for l in losses { r.report(loss: l) }
        }
        var value: UInt64? { lock.withLock { replicator?.cursor } }
        func report(_ loss: ReplicationLoss) {
            let r: Replicator? = lock.withLock {
                if replicator == nil { pendingLosses.append(loss) }
                return replicator
            }
            r?.report(loss: loss)
        }
    }

    init(replicator: Replicator?, aggregator: Aggregator?, floor: FloorBox) {
        self.replicator = replicator
        self.aggregator = aggregator
        self.floor = floor
    }

    func start() {
        replicator?.start()
        aggregator?.start()
    }

    /// Stops both, saving the replicator's cursor; returns after `seconds` at most (default 10) even when one of
    /// them has not finished stopping.
    func stop(within seconds: Double = 10) async {
        let r = replicator
        let a = aggregator
        var timer: Task<Void, Never>?
        await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
            let once = ResumeOnce(c)
            Task {
                await a?.stop()
                await r?.stop()
                once.resume()
            }
            timer = Task {
                try? await Task.sleep(nanoseconds: UInt64(seconds * 1e9))
                once.resume()
            }
        }
        timer?.cancel()
    }

    /// Resumes a continuation the first time `resume()` is called.
    private final class ResumeOnce: @unchecked Sendable {
        private let lock = NIOLock()
        private var continuation: CheckedContinuation<Void, Never>?
        init(_ c: CheckedContinuation<Void, Never>) { continuation = c }
        func resume() {
            lock.withLock { () -> CheckedContinuation<Void, Never>? in
                defer { continuation = nil }
                return continuation
            }?.resume()
        }
    }

    /// The `replication` and `aggregation` members of `/api/stats` (JSON), or nil when neither runs.
    func stats() -> (replication: RawJSON?, aggregation: RawJSON?) {
        // The one encoder of the HTTP answers (the aggregator's `hosts` is written with its keys sorted).
        func json(_ value: some Encodable) -> RawJSON? { (try? JSONStreamEncoder().encode(value)).map(RawJSON.init) }
        return (replicator.flatMap { json($0.stats) }, aggregator.flatMap { json($0.stats) })
    }
}

/// The aggregator's sink: the daemon's single writer (group commit with the producers, the live feed).
struct WriterSink: ReplicaSink {
    let writer: BatchWriter

    func storeReplicated(_ batch: [(event: GridEvent, records: [Record])]) async throws {
        // The duplicate check and the preparation run on the writer thread; this task only waits.
        let w = writer
        try await withCheckedThrowingContinuation { (c: CheckedContinuation<Void, Error>) in
            w.submit(BatchWriter.Job(replicated: batch, receivedAt: monotonicNanos()) { result in
                c.resume(with: result.map { _ in }.mapError { $0 as any Error })
            })
        }
    }
}
