import ArgumentParser
import Foundation
import GridEvents

struct Follow: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Print events as they arrive (like journalctl -f), resuming after a dropped connection or a restart.",
        discussion: """
            Reads the daemon's live stream (/api/events/stream, server-sent events). Every event carries its place
            in the store's arrival order (the SSE id); when the connection drops or grid-eventd restarts, follow
            reconnects with Last-Event-ID and the daemon sends what was stored after that place: nothing is lost and
            nothing is printed twice. --since first prints the stored events from that time, then follows.

            Output: -o table (one row per event), -o jsonl (the flat form emit reads), -o json (the API form, one
            event per line). Ends with exit status 0 on Ctrl-C, when the reader of its output goes away (| head),
            or after --count events.
            """)

    @OptionGroup var api: StoreURLOption
    @OptionGroup var output: OutputOption

    @Option(name: .customLong("type"), help: "Event type(s), comma-separated.")
    var types: String?

    @Option(help: "Only events that mention this entity.")
    var entity: String?

    @Option(help: "First print the stored events from this time: RFC 3339, 15m/2h/7d ago, today, yesterday or HH:MM (UTC).")
    var since: String?

    @Option(help: "Stop after this many events.")
    var count: Int?

    @Option(name: .customLong("resume-from"), help: "Start after this stream position (an SSE id printed by the daemon, <sequence>:<skip>).")
    var resumeFrom: String?

    @Option(name: .customLong("idle-timeout"), help: "Reconnect when nothing (not even a keepalive) arrives for this many seconds.")
    var idleTimeout = 45.0

    func validate() throws {
        guard idleTimeout > 0, idleTimeout < 86_400 else {
            throw ValidationError("--idle-timeout must be more than 0 and less than 86400 seconds")
        }
        // Sent as the Last-Event-ID header: only the daemon's own form, so nothing can break the request.
        if let resumeFrom {
            let parts = resumeFrom.split(separator: ":", omittingEmptySubsequences: false)
            guard parts.count == 2, parts.allSatisfy({ !$0.isEmpty && $0.allSatisfy { $0.isASCII && $0.isNumber } }) else {
                throw ValidationError("--resume-from must be <sequence>:<skip>, two whole numbers (an SSE id the daemon sent)")
            }
        }
    }

    func run() throws {
        Stdout.ignoreSIGPIPE()
        signal(SIGINT) { _ in _exit(0) }
        signal(SIGTERM) { _ in _exit(0) }
        // A parent may have started this process with these signals blocked (the mask is inherited).
        var stopSignals = sigset_t()
        sigemptyset(&stopSignals)
        sigaddset(&stopSignals, SIGINT)
        sigaddset(&stopSignals, SIGTERM)
        pthread_sigmask(SIG_UNBLOCK, &stopSignals, nil)
        let format = output.format(default: .table)
        var query: [URLQueryItem] = []
        if let types { query.append(URLQueryItem(name: "type", value: types)) }
        if let entity { query.append(URLQueryItem(name: "entity", value: entity)) }
        if let s = try TimeFlag.resolve(since, flag: "since", now: TimeFlag.now) { query.append(URLQueryItem(name: "since", value: s)) }
        let path = "/api/events/stream" + (query.isEmpty ? "" : queryString(query))
        let client = api.client
        var lastId = resumeFrom
        var printed = 0
        var failures = 0
        if let count, count <= 0 { return }
        while true {
            do {
                let stream = try SSEConnection(base: client.base, path: path, token: client.token, lastEventId: lastId, idleTimeout: idleTimeout)
                failures = 0
                try stream.read { message in
                    if let data = message.data {
                        if let value = try? JSONValue.parse(Array(data.utf8)) {
                            switch format {
                            case .table: Stdout.write(eventRow(value) + "\n")
                            case .json: Stdout.write(data + "\n")
                            case .jsonl: Stdout.write((flatLine(value) ?? data) + "\n")
                            }
                        }
                        printed += 1
                    }
                    if let id = message.id { lastId = id }
                    if message.data == nil { Stdout.exitIfReaderGone() }
                    if let count, printed >= count { Foundation.exit(0) }
                }
                // The daemon ended the stream (it is shutting down): reconnect.
            } catch let error as SSEError where error.fatal {
                warn("grid-cli follow: \(error.message)")
                throw ExitCode(1)
            } catch let error as SSEError {
                failures += 1
                if failures == 1 || failures % 30 == 0 { warn("grid-cli follow: \(error.message); reconnecting") }
            }
            // Back off up to 2 s (the stream's retry:), quickly at first.
            usleep(UInt32(min(2_000_000, 100_000 * (1 << min(failures, 5)))))
        }
    }
}

struct SSEError: Error {
    var message: String
    /// Not worth retrying (a refused token, a bad parameter).
    var fatal = false
}

/// One server-sent-events message: its `id:` (the stream position after it) and its `data:` (nil for a message that
/// only moves the position, like a keepalive's).
struct SSEMessage {
    var id: String?
    var data: String?
}

/// A plain HTTP/1.1 GET of an event stream over TCP, read as it arrives (chunked or not), without buffering it.
/// What it does hold (a header line, an unfinished line or message, an error body) may not pass `limit`: a server
/// that sends more is refused with a fatal error.
final class SSEConnection {
    /// 16 MiB, as ControlClient's answer limit.
    static let limit = 16 << 20
    private let fd: Int32
    private var buffer: [UInt8] = []
    private var chunked = false
    private var chunkLeft = 0
    private var eof = false

    init(base: String, path: String, token: String?, lastEventId: String?, idleTimeout: Double) throws {
        guard let url = URLComponents(string: base), url.scheme == "http", let host = url.host, !host.isEmpty else {
            throw SSEError(message: "follow needs an http:// --url (got \(base))", fatal: true)
        }
        let port = url.port ?? 80
        let prefix = url.percentEncodedPath.hasSuffix("/") ? String(url.percentEncodedPath.dropLast()) : url.percentEncodedPath
        var hints = addrinfo()
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var res: UnsafeMutablePointer<addrinfo>?
        let h = host.hasPrefix("[") ? String(host.dropFirst().dropLast()) : host
        guard getaddrinfo(h, String(port), &hints, &res) == 0, let first = res else {
            throw SSEError(message: "cannot resolve \(host)")
        }
        defer { freeaddrinfo(res) }
        var connected: Int32 = -1
        var ai: UnsafeMutablePointer<addrinfo>? = first
        while let a = ai {
            let s = socket(a.pointee.ai_family, a.pointee.ai_socktype, a.pointee.ai_protocol)
            if s >= 0 {
                if connect(s, a.pointee.ai_addr, a.pointee.ai_addrlen) == 0 {
                    connected = s
                    break
                }
                close(s)
            }
            ai = a.pointee.ai_next
        }
        guard connected >= 0 else { throw SSEError(message: "cannot connect to \(host):\(port): \(String(cString: strerror(errno)))") }
        fd = connected
        var tv = timeval(tv_sec: Int(idleTimeout), tv_usec: Int((idleTimeout - Double(Int(idleTimeout))) * 1e6))
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        var request = "GET \(prefix)\(path) HTTP/1.1\r\nHost: \(host):\(port)\r\nAccept: text/event-stream\r\nConnection: close\r\n"
        if let token { request += "Authorization: Bearer \(token)\r\n" }
        if let lastEventId { request += "Last-Event-ID: \(lastEventId)\r\n" }
        request += "\r\n"
        let bytes = Array(request.utf8)
        var off = 0
        while off < bytes.count {
            let n = bytes.withUnsafeBytes { send(fd, $0.baseAddress! + off, $0.count - off, Int32(MSG_NOSIGNAL)) }
            if n <= 0 {
                close(fd)
                throw SSEError(message: "lost the connection while sending the request")
            }
            off += n
        }
        do {
            try readHead()
        } catch {
            close(fd)
            throw error
        }
    }

    deinit { close(fd) }

    private func fill() throws {
        var chunk = [UInt8](repeating: 0, count: 64 << 10)
        while true {
            let n = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress!, $0.count, 0) }
            if n > 0 {
                buffer += chunk[0..<n]
                return
            }
            if n == 0 {
                eof = true
                return
            }
            if errno == EINTR { continue }
            if errno == EAGAIN || errno == EWOULDBLOCK { throw SSEError(message: "nothing received for the idle timeout") }
            throw SSEError(message: "connection lost: \(String(cString: strerror(errno)))")
        }
    }

    /// Bytes up to a CRLF (without it); nil at the end of the stream.
    private func rawLine() throws -> [UInt8]? {
        while true {
            if let i = buffer.firstIndex(of: 0x0A) {
                var line = Array(buffer[..<i])
                buffer.removeSubrange(...i)
                if line.last == 0x0D { line.removeLast() }
                return line
            }
            if eof { return nil }
            try Self.check(buffer.count, "a line of the answer's head or chunk sizes")
            try fill()
        }
    }

    /// Throws a fatal error when `size` bytes of `what` pass `limit`.
    private static func check(_ size: Int, _ what: String) throws {
        guard size <= limit else {
            throw SSEError(message: "the server sent \(what) of more than \(limit >> 20) MiB; giving up", fatal: true)
        }
    }

    private func readHead() throws {
        guard let status = try rawLine() else { throw SSEError(message: "the server closed the connection") }
        let parts = String(decoding: status, as: UTF8.self).split(separator: " ")
        let code = parts.count > 1 ? Int(parts[1]) ?? 0 : 0
        var contentLength: Int?
        while let line = try rawLine(), !line.isEmpty {
            let text = String(decoding: line, as: UTF8.self)
            guard let colon = text.firstIndex(of: ":") else { continue }
            let name = text[..<colon].lowercased()
            let value = text[text.index(after: colon)...].trimmingCharacters(in: .whitespaces)
            if name == "transfer-encoding", value.lowercased().contains("chunked") { chunked = true }
            if name == "content-length" { contentLength = Int(value) }
        }
        guard code == 200 else {
            // The error body (JSON with a message), read whole: it is small.
            var body: [UInt8] = []
            while (contentLength.map { body.count < $0 } ?? true), let b = try? bodyBytes(), !b.isEmpty {
                body += b
                try Self.check(body.count, "an error answer (HTTP \(code))")
            }
            let value = try? JSONValue.parse(body)
            let message = value?["error"]?["message"]?.stringValue ?? "HTTP \(code)"
            throw SSEError(message: message, fatal: code >= 400 && code < 500 && code != 408 && code != 429)
        }
    }

    /// The next bytes of the body (de-chunked); empty at its end.
    private func bodyBytes() throws -> [UInt8] {
        if !chunked {
            if buffer.isEmpty, !eof { try fill() }
            let b = buffer
            buffer.removeAll(keepingCapacity: true)
            return b
        }
        while chunkLeft == 0 {
            guard let size = try rawLine() else { return [] }
            if size.isEmpty { continue }  // the CRLF after a chunk
            guard let n = Int(String(decoding: size.prefix { $0 != 0x3B }, as: UTF8.self), radix: 16) else {
                throw SSEError(message: "bad chunked encoding")
            }
            if n == 0 { return [] }
            chunkLeft = n
        }
        if buffer.isEmpty {
            try fill()
            if buffer.isEmpty { return [] }
        }
        let take = min(chunkLeft, buffer.count)
        let b = Array(buffer[..<take])
        buffer.removeSubrange(..<take)
        chunkLeft -= take
        return b
    }

    /// Calls `handle` for every message until the stream ends.
    func read(_ handle: (SSEMessage) throws -> Void) throws {
        var pending: [UInt8] = []
        var message = SSEMessage()
        var data: [String] = []
        var sawField = false
        while true {
            let b = try bodyBytes()
            if b.isEmpty { return }
            pending += b
            var start = 0
            while let nl = pending[start...].firstIndex(of: 0x0A) {
                var line = pending[start..<nl]
                start = nl + 1
                if line.last == 0x0D { line = line.dropLast() }
                if line.isEmpty {
                    if sawField {
                        message.data = data.isEmpty ? nil : data.joined(separator: "\n")
                        try handle(message)
                    }
                    message = SSEMessage()
                    data = []
                    sawField = false
                    continue
                }
                let text = String(decoding: line, as: UTF8.self)
                if text.hasPrefix(":") { continue }
                let colon = text.firstIndex(of: ":") ?? text.endIndex
                let field = text[..<colon]
                var value = colon < text.endIndex ? text[text.index(after: colon)...] : ""
                if value.first == " " { value = value.dropFirst() }
                switch field {
                case "id":
                    message.id = String(value)
                    sawField = true
                case "data":
                    data.append(String(value))
                    sawField = true
                default: break
                }
            }
            pending.removeSubrange(..<start)
            try Self.check(pending.count + data.reduce(0) { $0 + $1.utf8.count }, "an event-stream message")
        }
    }
}
