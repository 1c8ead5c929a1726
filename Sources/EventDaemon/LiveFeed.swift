import EventStore
import GridEvents

/// What a live-stream subscriber receives: events, and a keepalive every `keepaliveSeconds` so a handler
/// notices a client that went away (its write fails) even when no events arrive.
public enum FeedItem: Sendable {
    /// An event and where it stands in the store's arrival order (nil for an event published without one).
    case event(GridEvent, StreamPosition?)
    case keepalive
}

/// One live-stream subscriber: its events, and whether the feed has dropped some of them because it read too
/// slowly (the stream then replays what it missed from the store).
public final class FeedSubscription: @unchecked Sendable {
    public let stream: AsyncStream<FeedItem>
    private let lock = ConditionLock()
    private var dropped = false

    init(stream: AsyncStream<FeedItem>) {
        self.stream = stream
    }

    /// Items in the stream's buffer (yielded, not yet taken or dropped).
    private var queued = 0

    func markDropped() { lock.withLock { dropped = true } }

    /// Yields `item`, marking the subscription dropped *before* a yield that will push the oldest item out: a
    /// reader that takes any item after a lost one then sees the mark (a mark set only after the yield returned
    /// could come after the reader had already taken the item behind the lost one and moved past it).
    func yield(_ item: FeedItem, to c: AsyncStream<FeedItem>.Continuation) {
        lock.withLock {
            queued += 1
            if queued > LiveFeed.bufferPerSubscriber { dropped = true }
        }
        if case .dropped = c.yield(item) { lock.withLock { queued -= 1 } }
    }

    /// The reader took an item off the stream.
    public func took() { lock.withLock { queued = max(0, queued - 1) } }

    /// Whether events were dropped since the last call (and clears it).
    public func takeDropped() -> Bool {
        lock.withLock {
            defer { dropped = false }
            return dropped
        }
    }
}

/// Fans newly acknowledged events out to live-stream subscribers. Each subscriber has a bounded buffer
/// (1,000 events): a subscriber that reads slower than events arrive loses the oldest, never slows ingest; its
/// subscription is marked (`takeDropped()`) so the stream can read what it lost back from the store.
public final class LiveFeed: @unchecked Sendable {
    private let lock = ConditionLock()
    private var subscribers: [Int: (AsyncStream<FeedItem>.Continuation, FeedSubscription)] = [:]
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
    public func subscribe() -> FeedSubscription? {
        lock.withLock { () -> FeedSubscription? in
            guard subscribers.count < Self.maxSubscribers else { return nil }
            if ticker == nil {
                let interval = keepaliveSeconds
                ticker = Task { [weak self] in
                    while !Task.isCancelled {
                        try? await Task.sleep(nanoseconds: UInt64(interval * 1e9))
                        guard let self else { return }
                        let targets = self.lock.withLock { Array(self.subscribers.values) }
                        for (c, subscription) in targets { subscription.yield(.keepalive, to: c) }
                    }
                }
            }
            let id = nextId
            nextId += 1
            let (stream, continuation) = AsyncStream<FeedItem>.makeStream(bufferingPolicy: .bufferingNewest(Self.bufferPerSubscriber))
            continuation.onTermination = { [weak self] _ in
                self?.lock.withLock { _ = self?.subscribers.removeValue(forKey: id) }
            }
            let subscription = FeedSubscription(stream: stream)
            subscribers[id] = (continuation, subscription)
            return subscription
        }
    }

    /// Hands events with their positions in the store's arrival order to every subscriber.
    public func publish(_ events: [(GridEvent, StreamPosition?)]) {
        guard !events.isEmpty else { return }
        let targets = lock.withLock { Array(subscribers.values) }
        for (c, subscription) in targets {
            for (e, p) in events { subscription.yield(.event(e, p), to: c) }
        }
    }

    public var subscriberCount: Int { lock.withLock { subscribers.count } }

    /// Ends every stream (at shutdown).
    public func finishAll() {
        let targets = lock.withLock { () -> [AsyncStream<FeedItem>.Continuation] in
            ticker?.cancel()
            ticker = nil
            return subscribers.values.map(\.0)
        }
        for c in targets { c.finish() }
    }
}
