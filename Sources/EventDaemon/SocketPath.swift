import EventWire
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

    /// Binds the socket at `path` (already `prepare`d) with mode 0660, without changing the process's umask
    /// (it is process-wide: a file or directory another thread created meanwhile would lose permission bits):
    /// `bind` runs on a path inside a new directory only the owner can enter, the socket gets its mode there and
    /// is then renamed into place, so it is never reachable with other permissions. A path too long for the
    /// detour is bound in place and given its mode right after.
    static func bindPrivately<T>(_ path: String, _ bind: (String) throws -> T) throws -> T {
        let dir = path + ".\(getpid()).bind"
        let inner = dir + "/s"
        guard inner.utf8.count < 108 else {
            let bound = try bind(path)
            chmod(path, 0o660)
            return bound
        }
        unlink(inner)
        rmdir(dir)  // left by a crash between mkdir and rename
        guard mkdir(dir, 0o700) == 0 else {
            throw Refused(description: "cannot create \(dir) to bind the socket in: \(String(cString: strerror(errno)))")
        }
        defer {
            unlink(inner)
            rmdir(dir)
        }
        let bound = try bind(inner)
        guard chmod(inner, 0o660) == 0, rename(inner, path) == 0 else {
            throw Refused(description: "cannot move the socket into place at \(path): \(String(cString: strerror(errno)))")
        }
        return bound
    }

    /// True when something accepts connections on the socket.
    static func isLive(_ path: String) -> Bool { UnixSocket.isListening(path) }
}
