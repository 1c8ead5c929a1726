import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// Failures to inject into the spool's system calls, and counts of the calls made, so tests reach the failure
/// paths (EIO from fdatasync, ENOSPC from a write) without a broken disk and can check how the spool reads.
@_spi(Testing) public final class SpoolFaults: Sendable {
    private struct State {
        var fdatasyncError: Int32?
        var writeError: Int32?
        var preads = 0
        var pwrites = 0
        var fdatasyncs = 0
    }

    private let state = Mutex(State())

    public init() {}

    /// Every fdatasync of the spool fails with this errno from now on (nil: they succeed again).
    public func failFdatasync(_ errno: Int32?) { state.withLock { $0.fdatasyncError = errno } }
    /// Every write of the spool fails with this errno from now on (nil: they succeed again).
    public func failWrites(_ errno: Int32?) { state.withLock { $0.writeError = errno } }

    /// pread calls made on spool files so far.
    public var preads: Int { state.withLock { $0.preads } }
    public var pwrites: Int { state.withLock { $0.pwrites } }
    public var fdatasyncs: Int { state.withLock { $0.fdatasyncs } }

    func countPread() { state.withLock { $0.preads += 1 } }

    func beforeWrite() -> Int32? {
        state.withLock {
            $0.pwrites += 1
            return $0.writeError
        }
    }

    func beforeFdatasync() -> Int32? {
        state.withLock {
            $0.fdatasyncs += 1
            return $0.fdatasyncError
        }
    }
}

/// The spool's file system calls, each wrapped once: EINTR retried, errno returned, faults injected in tests.
struct SpoolIO: Sendable {
    let faults: SpoolFaults?

    /// Reads up to `count` bytes at `offset`; returns the number read (short at end of file) or -1.
    func pread(_ fd: Int32, _ buffer: UnsafeMutableRawPointer, _ count: Int, _ offset: UInt64) -> Int {
        faults?.countPread()
        while true {
            let n = Glibc.pread(fd, buffer, count, off_t(offset))
            if n < 0, errno == EINTR { continue }
            return n
        }
    }

    /// Writes all of `bytes` at `offset`; returns 0 or the errno of the failure.
    func pwriteAll(_ fd: Int32, _ bytes: UnsafeRawBufferPointer, at offset: UInt64) -> Int32 {
        if let err = faults?.beforeWrite() { return err }
        var done = 0
        while done < bytes.count {
            let n = Glibc.pwrite(fd, bytes.baseAddress! + done, bytes.count - done, off_t(offset) + off_t(done))
            if n < 0 {
                if errno == EINTR { continue }
                return errno
            }
            if n == 0 { return EIO }
            done += n
        }
        return 0
    }

    /// fdatasync; returns 0 or the errno of the failure.
    func fdatasync(_ fd: Int32) -> Int32 {
        if let err = faults?.beforeFdatasync() { return err }
        while true {
            if Glibc.fdatasync(fd) == 0 { return 0 }
            if errno == EINTR { continue }
            return errno
        }
    }
}
