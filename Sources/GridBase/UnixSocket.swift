#if canImport(Glibc)
import Glibc
#endif

/// Connecting to a Unix stream socket by path, shared by the emitter, the daemon's stale-socket check, the
/// agent's node probe and the tests.
public enum UnixSocket {
    /// Longest path a `sockaddr_un` holds (107 bytes plus the terminator).
    public static let maxPathLength = 107

    /// Connects `fd` to the socket at `path`; false (with errno set) when it cannot.
    public static func connect(_ fd: Int32, path: String) -> Bool {
        let bytes = Array(path.utf8)
        guard bytes.count <= maxPathLength else {
            errno = ENAMETOOLONG
            return false
        }
        var addr = sockaddr_un()
        addr.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &addr.sun_path) { raw in
            raw.copyBytes(from: bytes)
            raw[bytes.count] = 0
        }
        return withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) == 0
            }
        }
    }

    /// True when something accepts connections on the socket at `path`.
    public static func isListening(_ path: String) -> Bool {
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        return connect(fd, path: path)
    }
}
