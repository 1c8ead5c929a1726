import NIOConcurrencyHelpers

/// A message as delivered to a subscriber.
public typealias NATSMessage = NATSInboundMessage

/// A subscription: an `AsyncSequence` of the messages on its subject, bounded in bytes. When the consumer falls
/// behind by more than `NATSOptions.maxPendingBytesPerSubscription`, new messages are dropped and counted, and the
/// next `next()` throws `NATSError.slowConsumer` once (with the count); delivery then goes on. Survives reconnects
/// (the client subscribes again). Ends when unsubscribed or the connection is closed.
public final class NATSSubscription: AsyncSequence, @unchecked Sendable {
    public typealias Element = NATSMessage

    public let subject: String
    public let queue: String?
    let sid: UInt64
    private let maxPendingBytes: Int
    private weak var connection: NATSConnection?
    private let lock = NIOLock()
    private var buffer: [NATSMessage] = []
    private var head = 0
    private var pendingBytes = 0
    private var droppedSinceReport = 0
    private var droppedTotal = 0
    private var finished = false
    private var waiter: CheckedContinuation<Void, Never>?

    init(subject: String, queue: String?, sid: UInt64, maxPendingBytes: Int, connection: NATSConnection) {
        self.subject = subject
        self.queue = queue
        self.sid = sid
        self.maxPendingBytes = maxPendingBytes
        self.connection = connection
    }

    /// Messages dropped because the consumer fell behind, since the subscription began.
    public var dropped: Int { lock.withLock { droppedTotal } }
    /// Bytes of messages received and not yet consumed.
    public var pending: Int { lock.withLock { pendingBytes } }

    /// Stops delivery (UNSUB) and ends the sequence.
    public func unsubscribe() {
        connection?.unsubscribe(sid: sid)
        finish()
    }

    func deliver(_ m: NATSMessage) {
        let size = m.payload.count + m.subject.utf8.count
        let w: CheckedContinuation<Void, Never>? = lock.withLock {
            if finished { return nil }
            if pendingBytes + size > maxPendingBytes {
                droppedSinceReport += 1
                droppedTotal += 1
            } else {
                buffer.append(m)
                pendingBytes += size
            }
            defer { waiter = nil }
            return waiter
        }
        w?.resume()
    }

    func finish() {
        let w: CheckedContinuation<Void, Never>? = lock.withLock {
            finished = true
            defer { waiter = nil }
            return waiter
        }
        w?.resume()
    }

    private enum Step { case message(NATSMessage), dropped(Int), end, wait }

    /// The next message, nil once the subscription ended.
    /// - Throws: `NATSError.slowConsumer` once after messages were dropped.
    public func next() async throws -> NATSMessage? {
        while true {
            if Task.isCancelled { throw CancellationError() }
            let step: Step = lock.withLock {
                if droppedSinceReport > 0 {
                    defer { droppedSinceReport = 0 }
                    return .dropped(droppedSinceReport)
                }
                if head < buffer.count {
                    let m = buffer[head]
                    head += 1
                    pendingBytes -= m.payload.count + m.subject.utf8.count
                    if head > 1024 && head * 2 > buffer.count {
                        buffer.removeFirst(head)
                        head = 0
                    }
                    return .message(m)
                }
                return finished ? .end : .wait
            }
            switch step {
            case .message(let m): return m
            case .dropped(let n): throw NATSError.slowConsumer(subject: subject, dropped: n)
            case .end: return nil
            case .wait:
                try Task.checkCancellation()
                await withTaskCancellationHandler {
                    await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
                        let resumeNow: Bool = lock.withLock {
                            if head < buffer.count || finished || droppedSinceReport > 0 || Task.isCancelled { return true }
                            waiter = c
                            return false
                        }
                        if resumeNow { c.resume() }
                    }
                } onCancel: {
                    let w: CheckedContinuation<Void, Never>? = lock.withLock {
                        defer { waiter = nil }
                        return waiter
                    }
                    w?.resume()
                }
            }
        }
    }

    /// The next message, or nil when none arrives within `timeout` or the subscription ended.
    public func next(timeout: Duration) async throws -> NATSMessage? {
        try await withThrowingTaskGroup(of: NATSMessage?.self) { group in
            group.addTask { try await self.next() }
            group.addTask {
                try? await Task.sleep(for: timeout)
                return nil
            }
            let first = try await group.next() ?? nil
            group.cancelAll()
            if first != nil { return first }
            // The message task may have taken a message just as the timer fired: never lose it.
            while let r = try? await group.next() {
                if let m = r { return m }
            }
            return nil
        }
    }

    public struct AsyncIterator: AsyncIteratorProtocol {
        let subscription: NATSSubscription
        public mutating func next() async throws -> NATSMessage? { try await subscription.next() }
    }

    public func makeAsyncIterator() -> AsyncIterator { AsyncIterator(subscription: self) }
}
