#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// systemd's readiness protocol (`Type=notify`), without libsystemd: when `NOTIFY_SOCKET` is set, the daemons send
/// `READY=1` once they serve (grid-eventd: its socket and HTTP API listen) and `STOPPING=1` once their services
/// have stopped, just before they exit. One datagram per message to the socket named by the variable (a path, or `@name` for the abstract
/// namespace); without the variable nothing is sent. Errors are returned, never fatal.
public enum SystemdNotify {
    /// Sends `state` (newline-separated `KEY=value` lines) to `$NOTIFY_SOCKET`. Returns false when the variable is
    /// unset or the datagram could not be sent.
    @discardableResult
    public static func send(_ state: String, environment: [String: String]? = nil) -> Bool {
        let value: String?
        if let environment { value = environment["NOTIFY_SOCKET"] } else { value = getenv("NOTIFY_SOCKET").map { String(cString: $0) } }
        guard let path = value, !path.isEmpty else { return false }
        var bytes = Array(path.utf8)
        guard bytes.first == UInt8(ascii: "/") || bytes.first == UInt8(ascii: "@") else { return false }
        if bytes[0] == UInt8(ascii: "@") { bytes[0] = 0 }
        var addr = sockaddr_un()
        addr.sun_family = sa_family_t(AF_UNIX)
        let capacity = MemoryLayout.size(ofValue: addr.sun_path)
        guard bytes.count < capacity else { return false }
        withUnsafeMutableBytes(of: &addr.sun_path) { raw in
            for (i, b) in bytes.enumerated() { raw[i] = b }
        }
        let fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        let length = socklen_t(MemoryLayout<sa_family_t>.size + bytes.count + (bytes[0] == 0 ? 0 : 1))
        let message = Array(state.utf8)
        let sent = withUnsafePointer(to: &addr) { a in
            a.withMemoryRebound(to: sockaddr.self, capacity: 1) { sa in
                message.withUnsafeBytes { sendto(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL), sa, length) }
            }
        }
        return sent == message.count
    }

    /// `READY=1` with a status line and this process's id.
    @discardableResult
    public static func ready(status: String) -> Bool {
        send("READY=1\nSTATUS=\(status)\nMAINPID=\(getpid())")
    }

    /// `STOPPING=1`.
    @discardableResult
    public static func stopping() -> Bool {
        send("STOPPING=1")
    }
}
