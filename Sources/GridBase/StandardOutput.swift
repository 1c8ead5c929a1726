#if canImport(Glibc)
import Glibc
#endif

/// Standard output written directly, for tools whose output may go to a pipe whose reader leaves early
/// (`grid-cli follow | head`, `segdump --records | head`): with SIGPIPE ignored, such a write fails with EPIPE and
/// the tool ends quietly with status 0, instead of being killed by the signal (status 141).
public enum StandardOutput {
    /// Ignores SIGPIPE for the whole process (writes to a closed pipe then fail with EPIPE). Call it first thing.
    public static func ignoreSIGPIPE() { signal(SIGPIPE, SIG_IGN) }

    /// Writes all of `bytes` to standard output (retrying after EINTR and short writes). Ends the process when
    /// nobody reads any more: status 0 on EPIPE (the reader went away), 1 on another failure.
    public static func write(_ bytes: UnsafeRawBufferPointer) {
        var off = 0
        while off < bytes.count {
            let n = Glibc.write(1, bytes.baseAddress! + off, bytes.count - off)
            if n < 0 {
                if errno == EINTR { continue }
                exit(errno == EPIPE ? 0 : 1)
            }
            off += n
        }
    }
}
