/// One server to connect to, parsed from `nats://[user:pass@|token@]host[:port]` (also `tls://`, a bare `host:port`,
/// and `[v6]:port`). The default port is 4222.
public struct NATSServerAddress: Hashable, Sendable, CustomStringConvertible {
    public var host: String
    public var port: Int
    /// `tls://` asks for TLS whatever the server announces.
    public var tls: Bool
    public var user: String?
    public var password: String?
    public var token: String?

    public init(host: String, port: Int = 4222, tls: Bool = false) {
        self.host = host
        self.port = port
        self.tls = tls
    }

    /// Parses one URL.
    /// - Throws: `NATSError.invalidURL` naming what is wrong.
    public init(parsing text: String) throws(NATSError) {
        var s = Substring(text.trimmingASCIIWhitespace())
        guard !s.isEmpty else { throw .invalidURL(text, reason: "empty") }
        tls = false
        if let r = s.range(of: "://") {
            let scheme = s[s.startIndex..<r.lowerBound].lowercased()
            switch scheme {
            case "nats": tls = false
            case "tls": tls = true
            default: throw .invalidURL(text, reason: "scheme must be nats:// or tls://, not \(scheme)://")
            }
            s = s[r.upperBound...]
        }
        if let slash = s.firstIndex(of: "/") {
            guard s[slash...].allSatisfy({ $0 == "/" }) else { throw .invalidURL(text, reason: "a path is not allowed") }
            s = s[s.startIndex..<slash]
        }
        if let at = s.lastIndex(of: "@") {
            let cred = s[s.startIndex..<at]
            s = s[s.index(after: at)...]
            if let colon = cred.firstIndex(of: ":") {
                user = percentDecoded(cred[cred.startIndex..<colon])
                password = percentDecoded(cred[cred.index(after: colon)...])
            } else {
                token = percentDecoded(cred)
            }
        }
        var hostPart = s
        var portPart: Substring?
        if s.hasPrefix("[") {
            guard let close = s.firstIndex(of: "]") else { throw .invalidURL(text, reason: "unclosed [ in IPv6 address") }
            hostPart = s[s.index(after: s.startIndex)..<close]
            let after = s[s.index(after: close)...]
            if !after.isEmpty {
                guard after.hasPrefix(":") else { throw .invalidURL(text, reason: "junk after ]") }
                portPart = after.dropFirst()
            }
        } else if let colon = s.firstIndex(of: ":") {
            hostPart = s[s.startIndex..<colon]
            portPart = s[s.index(after: colon)...]
        }
        guard !hostPart.isEmpty else { throw .invalidURL(text, reason: "no host") }
        guard hostPart.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "." || $0 == "-" || $0 == ":" || $0 == "_") })
        else { throw .invalidURL(text, reason: "host \"\(hostPart)\" holds characters a host name cannot") }
        host = String(hostPart)
        if let portPart {
            guard let p = Int(portPart), (1...65535).contains(p) else {
                throw .invalidURL(text, reason: "port must be 1-65535, not \"\(portPart)\"")
            }
            port = p
        } else {
            port = 4222
        }
    }

    /// Parses a comma-separated list (`--replicate URL[,URL...]`).
    public static func parseList(_ text: String) throws(NATSError) -> [NATSServerAddress] {
        let parts = text.split(separator: ",").map { String($0) }.filter { !$0.trimmingASCIIWhitespace().isEmpty }
        guard !parts.isEmpty else { throw .invalidURL(text, reason: "no server given") }
        var out: [NATSServerAddress] = []
        for p in parts { out.append(try NATSServerAddress(parsing: p)) }
        return out
    }

    /// `nats://host:port` without credentials (safe to log).
    public var description: String {
        let h = host.contains(":") ? "[\(host)]" : host
        return "\(tls ? "tls" : "nats")://\(h):\(port)"
    }

    /// `host:port`.
    public var endpoint: String { "\(host):\(port)" }
}

private func percentDecoded(_ s: Substring) -> String {
    var bytes: [UInt8] = []
    var it = Array(s.utf8)[...]
    while let b = it.popFirst() {
        if b == UInt8(ascii: "%"), it.count >= 2, let v = UInt8(String(decoding: it.prefix(2), as: UTF8.self), radix: 16) {
            bytes.append(v)
            it = it.dropFirst(2)
        } else {
            bytes.append(b)
        }
    }
    return String(decoding: bytes, as: UTF8.self)
}

extension String {
    func trimmingASCIIWhitespace() -> String {
        let u = Array(utf8)
        var a = 0
        var b = u.count
        while a < b, u[a] == 0x20 || u[a] == 0x09 || u[a] == 0x0A || u[a] == 0x0D { a += 1 }
        while b > a, u[b - 1] == 0x20 || u[b - 1] == 0x09 || u[b - 1] == 0x0A || u[b - 1] == 0x0D { b -= 1 }
        return String(decoding: u[a..<b], as: UTF8.self)
    }
}
