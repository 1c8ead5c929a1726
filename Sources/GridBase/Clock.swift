#if canImport(Glibc)
import Glibc
#endif

/// The two clocks of the project: the monotonic one for intervals and deadlines, the wall clock for event times.
public enum GridClock {
    /// CLOCK_MONOTONIC in nanoseconds: never goes back, meaningless across processes.
    @inline(__always)
    public static func monotonicNanos() -> UInt64 {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
    }

    /// CLOCK_REALTIME in microseconds since the epoch, the unit of every event timestamp.
    @inline(__always)
    public static func nowMicros() -> Int64 {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        return Int64(ts.tv_sec) * 1_000_000 + Int64(ts.tv_nsec) / 1000
    }
}

/// `GridClock.monotonicNanos()`, under the name every module has used.
@inline(__always)
public func monotonicNanos() -> UInt64 { GridClock.monotonicNanos() }
