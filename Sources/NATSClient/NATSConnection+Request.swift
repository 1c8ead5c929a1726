import NIOCore

/// A pending reply: called for each message on its inbox token (returns true when no more are expected) and
/// when the connection drops or closes.
struct ReplyHandler: Sendable {
    let onMessage: @Sendable (NATSMessage) -> Bool
    let onFailure: @Sendable (NATSError) -> Void
}

extension NATSConnection {
    /// Sends a request and waits for the first reply. Replies come through one wildcard inbox subscription
    /// (`_INBOX.<random>.*`) shared by every request, so a request costs one PUB and no SUB.
    /// - Throws: `timeout`, `noResponders` (status 503), `connectionLost`, `closed`, and `publish`'s errors.
    public func request(
        _ subject: String, payload: some Collection<UInt8> = [UInt8](), headers: NATSHeaders? = nil,
        timeout: TimeAmount? = nil
    ) async throws -> NATSMessage {
        try await startRequest(subject, payload: payload, headers: headers, timeout: timeout).get()
    }

    /// Sends a request now (its PUB is queued before this returns, so requests started one after the other go out
    /// in that order) and returns the future reply. For pipelining: start many, then await them.
    /// - Throws: `publish`'s errors; the future fails with `timeout`, `noResponders`, `connectionLost`, `closed`.
    public func startRequest(
        _ subject: String, payload: some Collection<UInt8> = [UInt8](), headers: NATSHeaders? = nil,
        timeout: TimeAmount? = nil
    ) throws -> EventLoopFuture<NATSMessage> {
        let loop = group.next()
        let promise = loop.makePromise(of: NATSMessage.self)
        let token = try registerReply(
            ReplyHandler(
                onMessage: { message in
                    if message.headers?.status == 503 {
                        promise.fail(NATSError.noResponders(subject))
                    } else {
                        promise.succeed(message)
                    }
                    return true
                },
                onFailure: { promise.fail($0) }))
        let timer = loop.scheduleTask(in: timeout ?? options.requestTimeout) {
            promise.fail(NATSError.timeout(subject))
        }
        promise.futureResult.whenComplete { _ in
            timer.cancel()
            self.removeReply(token)
        }
        do {
            try publish(subject, payload: payload, headers: headers, replyTo: replySubject(token))
        } catch {
            promise.fail(error)
            throw error
        }
        return promise.futureResult
    }

    func replySubject(_ token: String) -> String { inboxPrefix + "." + token }

    /// Registers a reply handler under a fresh token (subscribing the shared inbox on first use).
    func registerReply(_ handler: ReplyHandler) throws -> String {
        try lock.withLock {
            if muxSid == nil {
                muxSid = try subscribeHandlerLocked(inboxPrefix + ".*") { [weak self] m in self?.routeReply(m) }
            }
            let token = String(nextReplyToken, radix: 36)
            nextReplyToken += 1
            replyHandlers[token] = handler
            return token
        }
    }

    func removeReply(_ token: String) {
        lock.withLock { _ = replyHandlers.removeValue(forKey: token) }
    }

    private func routeReply(_ m: NATSMessage) {
        guard let dot = m.subject.lastIndex(of: ".") else { return }
        let token = String(m.subject[m.subject.index(after: dot)...])
        let h: ReplyHandler? = lock.withLock { replyHandlers[token] }
        if let h, h.onMessage(m) { removeReply(token) }
    }

    func failAllRepliesLost() { failAllReplies(NATSError.connectionLost) }
    func failAllRepliesClosed() { failAllReplies(NATSError.closed) }

    private func failAllReplies(_ error: NATSError) {
        let handlers: [ReplyHandler] = lock.withLock {
            defer { replyHandlers = [:] }
            return Array(replyHandlers.values)
        }
        for h in handlers { h.onFailure(error) }
    }
}
