import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A small RFC 6455 WebSocket client over a blocking TCP socket, enough to speak the Chrome DevTools protocol to a
/// local headless Chromium (Foundation's URLSessionWebSocketTask is not dependable on Linux). Client frames are
/// masked with a fresh random key; server frames are read whole (continuations joined), pings answered with pongs.
/// The handshake checks the 101 status and `Sec-WebSocket-Accept` (SHA-1 of the key and the RFC's GUID).
final class WebSocketClient {
    struct Failure: Error, CustomStringConvertible { var description: String }

    private let fd: Int32
    private var inbox: [UInt8] = []
    private var closed = false

    /// Connects to `ws://127.0.0.1:port/path` and completes the opening handshake within `timeout` seconds.
    init(port: Int, path: String, timeout: Double = 20) throws {
        fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw Failure(description: "socket: errno \(errno)") }
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = in_port_t(UInt16(port).bigEndian)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        let rc = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard rc == 0 else {
            close(fd)
            throw Failure(description: "connect to 127.0.0.1:\(port): errno \(errno)")
        }
        var one: Int32 = 1
        setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
        let key = Data((0..<16).map { _ in UInt8.random(in: 0...255) }).base64EncodedString()
        try writeAll(Array(("GET \(path) HTTP/1.1\r\nHost: 127.0.0.1:\(port)\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            + "Sec-WebSocket-Key: \(key)\r\nSec-WebSocket-Version: 13\r\n\r\n").utf8))
        let deadline = Date().addingTimeInterval(timeout)
        var end: Int?
        while end == nil {
            try fill(deadline: deadline)
            end = inbox.indices.dropLast(3).first { inbox[$0] == 13 && inbox[$0 + 1] == 10 && inbox[$0 + 2] == 13 && inbox[$0 + 3] == 10 }
        }
        let head = String(decoding: inbox[..<end!], as: UTF8.self)
        inbox.removeFirst(end! + 4)
        let lines = head.components(separatedBy: "\r\n")
        guard lines.first?.contains(" 101 ") == true else { throw Failure(description: "handshake refused: \(lines.first ?? "")") }
        let expected = Data(SHA1.digest(Array((key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11").utf8))).base64EncodedString()
        let accept = lines.first { $0.lowercased().hasPrefix("sec-websocket-accept:") }?
            .split(separator: ":", maxSplits: 1).last?.trimmingCharacters(in: .whitespaces)
        guard accept == expected else { throw Failure(description: "bad Sec-WebSocket-Accept \(accept ?? "none"), expected \(expected)") }
    }

    deinit { close(fd) }

    /// Sends one text message (a single masked frame).
    func send(text: String) throws {
        try sendFrame(opcode: 1, payload: Array(text.utf8))
    }

    /// The next text message, or throws when `deadline` passes first or the peer closes.
    func receive(deadline: Date) throws -> String {
        var message: [UInt8] = []
        while true {
            let (fin, opcode, payload) = try readFrame(deadline: deadline)
            switch opcode {
            case 0, 1, 2:
                message += payload
                if fin { return String(decoding: message, as: UTF8.self) }
            case 8:
                closed = true
                throw Failure(description: "the browser closed the DevTools connection")
            case 9:
                try sendFrame(opcode: 10, payload: payload)
            default:
                continue  // pong or reserved: nothing to do
            }
        }
    }

    private func sendFrame(opcode: UInt8, payload: [UInt8]) throws {
        var frame: [UInt8] = [0x80 | opcode]
        let n = payload.count
        if n < 126 {
            frame.append(0x80 | UInt8(n))
        } else if n <= 0xFFFF {
            frame += [0x80 | 126, UInt8(n >> 8), UInt8(n & 0xFF)]
        } else {
            frame.append(0x80 | 127)
            for shift in stride(from: 56, through: 0, by: -8) { frame.append(UInt8((UInt64(n) >> UInt64(shift)) & 0xFF)) }
        }
        let mask = (0..<4).map { _ in UInt8.random(in: 0...255) }
        frame += mask
        frame.reserveCapacity(frame.count + n)
        for (i, b) in payload.enumerated() { frame.append(b ^ mask[i & 3]) }
        try writeAll(frame)
    }

    private func readFrame(deadline: Date) throws -> (Bool, UInt8, [UInt8]) {
        try need(2, deadline: deadline)
        let fin = inbox[0] & 0x80 != 0
        let opcode = inbox[0] & 0x0F
        let masked = inbox[1] & 0x80 != 0
        var length = Int(inbox[1] & 0x7F)
        var offset = 2
        if length == 126 {
            try need(4, deadline: deadline)
            length = Int(inbox[2]) << 8 | Int(inbox[3])
            offset = 4
        } else if length == 127 {
            try need(10, deadline: deadline)
            length = (2..<10).reduce(0) { $0 << 8 | Int(inbox[$1]) }
            offset = 10
        }
        let maskKey: [UInt8]
        if masked {
            try need(offset + 4, deadline: deadline)
            maskKey = Array(inbox[offset..<(offset + 4)])
            offset += 4
        } else {
            maskKey = []
        }
        try need(offset + length, deadline: deadline)
        var payload = Array(inbox[offset..<(offset + length)])
        if masked { for i in payload.indices { payload[i] ^= maskKey[i & 3] } }
        inbox.removeFirst(offset + length)
        return (fin, opcode, payload)
    }

    private func need(_ n: Int, deadline: Date) throws {
        while inbox.count < n { try fill(deadline: deadline) }
    }

    /// Reads what is available, waiting at most until `deadline`.
    private func fill(deadline: Date) throws {
        if closed { throw Failure(description: "connection closed") }
        let wait = deadline.timeIntervalSinceNow
        guard wait > 0 else { throw Failure(description: "timed out waiting for the browser") }
        var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        let r = poll(&p, 1, Int32(min(wait, 3600) * 1000) + 1)
        if r < 0, errno == EINTR { return }
        guard r > 0 else { throw Failure(description: "timed out waiting for the browser") }
        var chunk = [UInt8](repeating: 0, count: 256 << 10)
        let got = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
        if got < 0, errno == EINTR { return }
        guard got > 0 else {
            closed = true
            throw Failure(description: "the browser closed the connection")
        }
        inbox += chunk[..<got]
    }

    private func writeAll(_ bytes: [UInt8]) throws {
        var sent = 0
        while sent < bytes.count {
            let n = bytes[sent...].withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if n < 0, errno == EINTR { continue }
            guard n > 0 else { throw Failure(description: "send: errno \(errno)") }
            sent += n
        }
    }
}

/// SHA-1 (FIPS 180-4), only to check the WebSocket handshake's `Sec-WebSocket-Accept`.
enum SHA1 {
    static func digest(_ message: [UInt8]) -> [UInt8] {
        var h: [UInt32] = [0x6745_2301, 0xEFCD_AB89, 0x98BA_DCFE, 0x1032_5476, 0xC3D2_E1F0]
        var m = message
        let bitLength = UInt64(message.count) * 8
        m.append(0x80)
        while m.count % 64 != 56 { m.append(0) }
        for shift in stride(from: 56, through: 0, by: -8) { m.append(UInt8((bitLength >> UInt64(shift)) & 0xFF)) }
        var w = [UInt32](repeating: 0, count: 80)
        for chunk in stride(from: 0, to: m.count, by: 64) {
            for i in 0..<16 {
                w[i] = (0..<4).reduce(UInt32(0)) { $0 << 8 | UInt32(m[chunk + i * 4 + $1]) }
            }
            for i in 16..<80 {
                let x = w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16]
                w[i] = x << 1 | x >> 31
            }
            var (a, b, c, d, e) = (h[0], h[1], h[2], h[3], h[4])
            for i in 0..<80 {
                let (f, k): (UInt32, UInt32)
                switch i {
                case 0..<20: (f, k) = ((b & c) | (~b & d), 0x5A82_7999)
                case 20..<40: (f, k) = (b ^ c ^ d, 0x6ED9_EBA1)
                case 40..<60: (f, k) = ((b & c) | (b & d) | (c & d), 0x8F1B_BCDC)
                default: (f, k) = (b ^ c ^ d, 0xCA62_C1D6)
                }
                let t = (a << 5 | a >> 27) &+ f &+ e &+ k &+ w[i]
                (e, d, c, b, a) = (d, c, b << 30 | b >> 2, a, t)
            }
            h[0] &+= a; h[1] &+= b; h[2] &+= c; h[3] &+= d; h[4] &+= e
        }
        return h.flatMap { v in (0..<4).map { UInt8((v >> UInt32(24 - $0 * 8)) & 0xFF) } }
    }
}
