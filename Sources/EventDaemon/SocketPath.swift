import EventWire
import GridBase
#if canImport(Glibc)
import Glibc
#endif

/// Checks the socket path before binding: a live daemon's socket or a file that is not a socket is refused;
/// a stale socket left by a crashed daemon of the same user is removed.
enum SocketPath {
    struct Refused: Error, CustomStringConvertible {
        var description: String
    }

    static func prepare(_ path: String) throws {
        guard path.utf8.count < 108 else {
            throw Refused(description: "socket path \(path) is \(path.utf8.count) bytes; Unix sockets allow at most 107; pass a shorter --socket")
        }
        var st = stat()
        guard lstat(path, &st) == 0 else { return }  // nothing there
        guard (st.st_mode & S_IFMT) == S_IFSOCK else {
            throw Refused(description: "\(path) exists and is not a socket; refusing to replace it (remove it or pass another --socket)")
        }
        guard st.st_uid == getuid() else {
            throw Refused(description: "socket \(path) belongs to uid \(st.st_uid), not this user (\(getuid())); refusing to take it over")
        }
        if isLive(path) {
            throw Refused(description: "socket \(path) is in use by a running daemon; stop it or pass another --socket")
        }
        // Ours and nobody listens: left behind by a crash.
        unlink(path)
    }

    /// True when something accepts connections on the socket.
    static func isLive(_ path: String) -> Bool { UnixSocket.isListening(path) }
}
