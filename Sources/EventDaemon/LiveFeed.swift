import EventStore
import GridEvents

/// What a live-stream subscriber receives: events, and a keepalive every `keepaliveSeconds` so a handler
/// notices a client that went away (its write fails) even when no events arrive.
public enum FeedItem: Sendable {
    case event(GridEvent)
    case keepalive
}

/// Fans newly acknowledged events out to live-stream subscribers. Each subscriber has a bounded buffer
/// (1,000 events): a subscriber that reads slower than events arrive loses the oldest, never slows ingest.
public final class LiveFeed: @unchecked Sendable {
    private let lock = ConditionLock()
    private var subscribers: [Int: AsyncStream<FeedItem>.Continuation] = [:]
    private var nextId = 0
    private var ticker: Task<Void, Never>?
    public let keepaliveSeconds: Double
    public static let bufferPerSubscriber = 1000
    public static let maxSubscribers = 64

    public init(keepaliveSeconds: Double = 15) {
        self.keepaliveSeconds = keepaliveSeconds
    }

    deinit { ticker?.cancel() }

    /// A stream of events published from now on; nil when too many subscribers are connected.
    public func subscribe() -> AsyncStream<FeedItem>? {
        lock.withLock { () -> AsyncStream<FeedItem>? in
            guard subscribers.count < Self.maxSubscribers else { return nil }
            if ticker == nil {
                let interval = keepaliveSeconds
                ticker = Task { [weak self] in
                    while !Task.isCancelled {
                        try? await Task.sleep(nanoseconds: UInt64(interval * 1e9))
                        guard let self else { return }
                        let targets = self.lock.withLock { Array(self.subscribers.values) }
                        for c in targets { c.yield(.keepalive) }
                    }
                }
            }
            let id = nextId
            nextId += 1
            let (stream, continuation) = AsyncStream<FeedItem>.makeStream(bufferingPolicy: .bufferingNewest(Self.bufferPerSubscriber))
            continuation.onTermination = { [weak self] _ in
                self?.lock.withLock { _ = self?.subscribers.removeValue(forKey: id) }
            }
            subscribers[id] = continuation
            return stream
        }
    }

    public func publish(_ events: [GridEvent]) {
        guard !events.isEmpty else { return }
        let targets = lock.withLock { Array(subscribers.values) }
        for c in targets {
            for e in events { c.yield(.event(e)) }
        }
    }

    public var subscriberCount: Int { lock.withLock { subscribers.count } }

    /// Ends every stream (at shutdown).
    public func finishAll() {
        let targets = lock.withLock { () -> [AsyncStream<FeedItem>.Continuation] in
            ticker?.cancel()
            ticker = nil
            return Array(subscribers.values)
        }
        for c in targets { c.finish() }
    }
}
