import Foundation
import NIOConcurrencyHelpers
import NIOCore

/// The JetStream API over a `NATSConnection`: streams, durable pull consumers, publish with PubAck and
/// deduplication, pulls, and acks. Every call is a request on `$JS.API.*` bounded by `timeout`.
public struct JetStream: Sendable {
    public let connection: NATSConnection
    public let apiPrefix: String
    public let timeout: TimeAmount

    public init(_ connection: NATSConnection, apiPrefix: String = "$JS.API", timeout: TimeAmount? = nil) {
        self.connection = connection
        self.apiPrefix = apiPrefix
        self.timeout = timeout ?? connection.options.requestTimeout
    }

    // MARK: Streams

    /// The stream's configuration and state, nil when there is no such stream.
    public func streamInfo(_ name: String) async throws -> StreamInfo? {
        do {
            return try await call("STREAM.INFO.\(name)", body: [UInt8](), as: StreamInfo.self)
        } catch NATSError.jetStream(let code, let errCode, _) where code == 404 || errCode == 10059 {
            return nil
        }
    }

    /// Creates a stream. - Throws: `NATSError.jetStream` (for example 10058 when it exists with another config).
    public func createStream(_ config: StreamConfig) async throws -> StreamInfo {
        try await call("STREAM.CREATE.\(config.name)", body: try encode(config), as: StreamInfo.self)
    }

    /// Changes a stream's configuration (what the server allows to change).
    public func updateStream(_ config: StreamConfig) async throws -> StreamInfo {
        try await call("STREAM.UPDATE.\(config.name)", body: try encode(config), as: StreamInfo.self)
    }

    /// Deletes a stream and its messages.
    public func deleteStream(_ name: String) async throws {
        _ = try await call("STREAM.DELETE.\(name)", body: [UInt8](), as: APIErrorEnvelope.self)
    }

    /// Creates the stream when absent; when present, checks it agrees with `config` and throws
    /// `NATSError.streamConfigConflict` naming the first setting that does not: every subject asked for must be
    /// covered, `storage`, `retention` and `num_replicas` must be equal, `duplicate_window` at least the one asked.
    public func ensureStream(_ config: StreamConfig) async throws -> StreamInfo {
        if let existing = try await streamInfo(config.name) {
            try Self.checkCompatible(existing: existing.config, wanted: config)
            return existing
        }
        do {
            return try await createStream(config)
        } catch NATSError.jetStream(_, let errCode, _) where errCode == 10058 {
            // Created by someone else meanwhile.
            guard let existing = try await streamInfo(config.name) else { throw NATSError.badResponse("stream vanished") }
            try Self.checkCompatible(existing: existing.config, wanted: config)
            return existing
        }
    }

    /// The conflict check of `ensureStream`.
    public static func checkCompatible(existing e: StreamConfig, wanted w: StreamConfig) throws(NATSError) {
        func conflict(_ setting: String, _ have: String, _ want: String) -> NATSError {
            .streamConfigConflict(stream: w.name, setting: setting, existing: have, wanted: want)
        }
        if let ws = w.subjects {
            let have = e.subjects ?? []
            for s in ws where !have.contains(where: { NATSSubject.matches(s, pattern: $0) || $0 == s }) {
                throw conflict("subjects", have.joined(separator: ","), ws.joined(separator: ","))
            }
        }
        if let s = w.storage, let h = e.storage, s != h { throw conflict("storage", h, s) }
        if let r = w.retention, let h = e.retention, r != h { throw conflict("retention", h, r) }
        if let n = w.numReplicas, let h = e.numReplicas, n != h { throw conflict("num_replicas", String(h), String(n)) }
        if let d = w.duplicateWindow, let h = e.duplicateWindow, h < d {
            throw conflict("duplicate_window", "\(h / 1_000_000_000) s", "at least \(d / 1_000_000_000) s")
        }
        if let d = w.discard, let h = e.discard, d != h { throw conflict("discard", h, d) }
    }

    // MARK: Consumers

    /// Creates (or confirms, when it exists with the same configuration) a durable consumer.
    /// Uses `$JS.API.CONSUMER.DURABLE.CREATE.<stream>.<durable>`, which servers from 2.2 on understand.
    public func createConsumer(stream: String, config: ConsumerConfig) async throws -> ConsumerInfo {
        guard let durable = config.durableName else { throw NATSError.badResponse("a durable name is required") }
        let body = try encode(CreateConsumerRequest(streamName: stream, config: config))
        return try await call("CONSUMER.DURABLE.CREATE.\(stream).\(durable)", body: body, as: ConsumerInfo.self)
    }

    /// A consumer's state, nil when absent.
    public func consumerInfo(stream: String, consumer: String) async throws -> ConsumerInfo? {
        do {
            return try await call("CONSUMER.INFO.\(stream).\(consumer)", body: [UInt8](), as: ConsumerInfo.self)
        } catch NATSError.jetStream(let code, let errCode, _) where code == 404 || errCode == 10014 {
            return nil
        }
    }

    public func deleteConsumer(stream: String, consumer: String) async throws {
        _ = try await call("CONSUMER.DELETE.\(stream).\(consumer)", body: [UInt8](), as: APIErrorEnvelope.self)
    }

    // MARK: Publishing

    /// Publishes to a stream's subject and waits for the PubAck. With `messageId` the server ignores a second
    /// message with the same id within the stream's duplicate window (the answer then says `duplicate`).
    /// - Throws: `noResponders` (no stream holds the subject, or JetStream is down), `timeout`, `jetStream`.
    public func publish(
        _ subject: String, payload: some Collection<UInt8>, messageId: String? = nil, headers: NATSHeaders? = nil,
        timeout: TimeAmount? = nil
    ) async throws -> PubAck {
        try await startPublish(subject, payload: payload, messageId: messageId, headers: headers, timeout: timeout).get()
    }

    /// Publishes now (queued in call order) and returns the future PubAck, for a window of publishes in flight.
    /// - Throws: the connection's publish errors; the future fails as `publish` would throw.
    public func startPublish(
        _ subject: String, payload: some Collection<UInt8>, messageId: String? = nil, headers: NATSHeaders? = nil,
        timeout: TimeAmount? = nil
    ) throws -> EventLoopFuture<PubAck> {
        var h = headers ?? NATSHeaders()
        if let messageId { h["Nats-Msg-Id"] = messageId }
        return try connection.startRequest(
            subject, payload: payload, headers: h.isEmpty ? nil : h, timeout: timeout ?? self.timeout
        ).flatMapThrowing { reply in try Self.decode(reply.payload, as: PubAck.self) }
    }

    // MARK: Pulling

    /// Pulls up to `batch` messages from a durable pull consumer (`$JS.API.CONSUMER.MSG.NEXT.<stream>.<consumer>`).
    /// Returns when `batch` messages arrived, or the server says there are no more (404 with `noWait`, 408 when
    /// `expires` passed), or `expires` plus a second passed here. An empty result is normal.
    /// - Throws: `pullTerminated` (409: consumer deleted, leader changed, limits) when nothing arrived,
    ///   `noResponders`, `connectionLost`, `closed`.
    public func fetch(
        stream: String, consumer: String, batch: Int, expires: Duration? = .seconds(1), noWait: Bool = false,
        maxBytes: Int? = nil
    ) async throws -> [JetStreamMessage] {
        precondition(batch > 0)
        let conn = connection
        let loop = conn.group.next()
        let promise = loop.makePromise(of: [JetStreamMessage].self)
        let collector = FetchCollector(batch: batch, promise: promise)
        // Pulled messages arrive with their original subject, so they are routed by subscription, not by the
        // inbox token: one short-lived subscription per pull (its SUB and UNSUB need no round trip). The token
        // only carries the connection-lost notice.
        let token = try conn.registerReply(ReplyHandler(onMessage: { _ in false }, onFailure: { collector.fail($0) }))
        let inbox = conn.inboxPrefix + "P." + token
        let sid = try conn.subscribeHandler(inbox) { m in _ = collector.take(m, connection: conn) }
        let expiresNanos = expires.map { Int64($0.components.seconds) * 1_000_000_000 + $0.components.attoseconds / 1_000_000_000 }
        let clientDeadline: TimeAmount =
            expiresNanos.map { .nanoseconds($0) + .seconds(1) } ?? (noWait ? timeout : .seconds(30))
        let timer = loop.scheduleTask(in: clientDeadline) { collector.finish() }
        defer {
            timer.cancel()
            conn.removeReply(token)
            conn.unsubscribe(sid: sid)
        }
        let request = PullRequest(batch: batch, expires: expiresNanos, noWait: noWait ? true : nil, maxBytes: maxBytes)
        do {
            try conn.publish(
                "\(apiPrefix).CONSUMER.MSG.NEXT.\(stream).\(consumer)", payload: try encode(request),
                replyTo: inbox)
        } catch {
            collector.fail(error)
        }
        return try await promise.futureResult.get()
    }

    // MARK: Plumbing

    func call<T: Decodable>(_ api: String, body: [UInt8], as: T.Type) async throws -> T {
        let reply = try await connection.request("\(apiPrefix).\(api)", payload: body, timeout: timeout)
        return try Self.decode(reply.payload, as: T.self)
    }

    static func decode<T: Decodable>(_ bytes: [UInt8], as: T.Type) throws -> T {
        let data = Data(bytes)
        let decoder = JSONDecoder()
        if let envelope = try? decoder.decode(APIErrorEnvelope.self, from: data), let e = envelope.error {
            throw NATSError.jetStream(code: e.code, errorCode: e.errCode ?? 0, description: e.description ?? "")
        }
        do {
            return try decoder.decode(T.self, from: data)
        } catch {
            throw NATSError.badResponse("\(T.self) does not decode: \(error); got \(String(decoding: bytes.prefix(300), as: UTF8.self))")
        }
    }

    func encode<T: Encodable>(_ value: T) throws -> [UInt8] {
        let e = JSONEncoder()
        e.outputFormatting = [.sortedKeys]
        return Array(try e.encode(value))
    }
}

/// Gathers one pull's messages; resolves its promise once.
private final class FetchCollector: @unchecked Sendable {
    private let lock = NIOLock()
    private var messages: [JetStreamMessage] = []
    private var done = false
    private let batch: Int
    private let promise: EventLoopPromise<[JetStreamMessage]>

    init(batch: Int, promise: EventLoopPromise<[JetStreamMessage]>) {
        self.batch = batch
        self.promise = promise
    }

    /// Returns true when the pull is over.
    func take(_ m: NATSMessage, connection: NATSConnection) -> Bool {
        if let status = m.headers?.status {
            switch status {
            case 100: return false  // idle heartbeat
            case 404, 408: finish()
            case 409:
                let why = m.headers?.statusDescription ?? "409"
                lock.lock()
                let empty = messages.isEmpty
                lock.unlock()
                if empty { fail(NATSError.pullTerminated(why)) } else { finish() }
            case 503: fail(NATSError.noResponders("pull"))
            default: fail(NATSError.badResponse("pull status \(status) \(m.headers?.statusDescription ?? "")"))
            }
            return true
        }
        let full: Bool = lock.withLock {
            guard !done else { return true }
            messages.append(JetStreamMessage(message: m, connection: connection))
            return messages.count >= batch
        }
        if full { finish() }
        return full
    }

    func finish() {
        let out: [JetStreamMessage]? = lock.withLock {
            guard !done else { return nil }
            done = true
            return messages
        }
        if let out { promise.succeed(out) }
    }

    func fail(_ e: Error) {
        let first: Bool = lock.withLock {
            guard !done else { return false }
            done = true
            return true
        }
        if first { promise.fail(e) }
    }
}
