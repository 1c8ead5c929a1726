#if canImport(Glibc)
import Glibc
#endif

/// Advisory whole-file locks (flock(2)): the store's data-directory lock and the emitter's spool lock.
public enum FileLock {
    public enum Outcome: Equatable, Sendable {
        case locked
        /// Another open file description holds the lock.
        case busy
        /// flock failed otherwise; the errno value.
        case failed(Int32)
    }

    /// Takes an exclusive lock on `fd` without waiting, retrying on EINTR.
    public static func tryExclusive(_ fd: Int32) -> Outcome {
        while grid_flock(fd, LOCK_EX | LOCK_NB) != 0 {
            let err = errno
            if err == EINTR { continue }
            return err == EWOULDBLOCK ? .busy : .failed(err)
        }
        return .locked
    }
}

/// flock(2), declared directly because the Glibc overlay's `flock` also names `struct flock`.
@_silgen_name("flock") private func grid_flock(_ fd: Int32, _ operation: Int32) -> Int32
