import NIOCore
import NIOHTTP1

/// First in a connection's pipeline: admits it under the gate's caps, or answers 503 and closes it at once (and
/// reads nothing from it). An admitted connection is counted until it closes.
final class ConnectionCapHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer
    typealias OutboundOut = ByteBuffer

    static let refusal = "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\nContent-Length: 82\r\nRetry-After: 1\r\nConnection: close\r\n\r\n"
        + #"{"error":{"code":"too_many_connections","message":"too many connections; retry"}}"# + "\n"

    let gate: HTTPConnectionGate
    private var refused = false
    private var counted = false

    init(gate: HTTPConnectionGate) { self.gate = gate }

    func handlerAdded(context: ChannelHandlerContext) {
        if context.channel.isActive { admit(context) }
    }

    func channelActive(context: ChannelHandlerContext) {
        if !counted, !refused { admit(context) }
        context.fireChannelActive()
    }

    private func admit(_ context: ChannelHandlerContext) {
        let peer = context.channel.remoteAddress?.ipAddress ?? "unknown"
        guard gate.admit(peer) else {
            refused = true
            let body = context.channel.allocator.buffer(string: Self.refusal)
            context.writeAndFlush(wrapOutboundOut(body)).whenComplete { _ in context.close(promise: nil) }
            return
        }
        counted = true
        let gate = self.gate
        context.channel.closeFuture.whenComplete { _ in gate.release(peer) }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if refused { return }
        context.fireChannelRead(data)
    }
}

/// Right after the request decoder: closes a connection whose request head is not complete `headerTimeout` after
/// its first byte arrived (408 first), and one with no request in flight (or a request body that stopped coming)
/// for `idleTimeout`. A response being written is never timed: the live stream lasts as long as it is read.
///
/// The decoder passes on a read that did not complete a head as a read-complete with no request part before it:
/// that is how the first bytes of a head are seen.
final class RequestTimeoutHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias InboundOut = HTTPServerRequestPart
    typealias OutboundIn = HTTPServerResponsePart
    typealias OutboundOut = HTTPServerResponsePart

    let gate: HTTPConnectionGate
    /// Requests whose head was read and whose response has not ended.
    private var inFlight = 0
    /// A request's head was read and its end not yet.
    private var readingBody = false
    /// Bytes of a head arrived and the head is not complete.
    private var headStarted = false
    /// A request part was read since the last read-complete.
    private var partsThisRead = false
    private var timer: Scheduled<Void>?

    init(gate: HTTPConnectionGate) { self.gate = gate }

    enum Deadline { case header, idle }

    private func arm(_ context: ChannelHandlerContext, _ kind: Deadline) {
        timer?.cancel()
        let seconds = kind == .header ? gate.limits.headerTimeout : gate.limits.idleTimeout
        let loop = context.eventLoop.assumeIsolatedUnsafeUnchecked()
        timer = loop.scheduleTask(in: .nanoseconds(Int64(seconds * 1e9))) { [self] in
            self.timer = nil
            self.fire(context, kind)
        }
    }

    private func disarm() {
        timer?.cancel()
        timer = nil
    }

    private func fire(_ context: ChannelHandlerContext, _ kind: Deadline) {
        // A response is being written and the request was read whole: never cut.
        if inFlight > 0, !readingBody { return }
        gate.timedOut(header: kind == .header)
        if kind == .header, inFlight == 0 {
            var head = HTTPResponseHead(version: .http1_1, status: .requestTimeout)
            head.headers.add(name: "Connection", value: "close")
            head.headers.add(name: "Content-Length", value: "0")
            context.write(wrapOutboundOut(.head(head)), promise: nil)
            context.writeAndFlush(wrapOutboundOut(.end(nil))).whenComplete { _ in context.close(promise: nil) }
        } else {
            context.close(promise: nil)
        }
    }

    func handlerAdded(context: ChannelHandlerContext) {
        if context.channel.isActive { arm(context, .idle) }
    }

    func channelActive(context: ChannelHandlerContext) {
        if timer == nil { arm(context, .idle) }
        context.fireChannelActive()
    }

    func handlerRemoved(context: ChannelHandlerContext) { disarm() }

    func channelInactive(context: ChannelHandlerContext) {
        disarm()
        context.fireChannelInactive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        partsThisRead = true
        switch unwrapInboundIn(data) {
        case .head:
            headStarted = false
            inFlight += 1
            readingBody = true
            arm(context, .idle)
        case .body:
            if readingBody { arm(context, .idle) }
        case .end:
            readingBody = false
            // The response is being made: untimed until it ends.
            disarm()
        }
        context.fireChannelRead(data)
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        if !partsThisRead, !readingBody, !headStarted {
            // Bytes of the next request's head, not enough for the decoder yet.
            headStarted = true
            if inFlight == 0 { arm(context, .header) }
        }
        partsThisRead = false
        context.fireChannelReadComplete()
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        if case .end = unwrapOutboundIn(data) {
            inFlight = max(0, inFlight - 1)
            if inFlight == 0 { arm(context, headStarted ? .header : .idle) }
        }
        context.write(data, promise: promise)
    }
}
