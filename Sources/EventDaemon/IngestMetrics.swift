import GridBase
#if canImport(Glibc)
import Glibc
#endif

/// Ingest counters and receive-to-ack latencies (the last 4096), for /api/stats and `storage_metrics`.
final class IngestMetrics: @unchecked Sendable {
    private let lock = ConditionLock()
    private var totalEvents = 0
    private var latencies = [UInt64](repeating: 0, count: 4096)
    private var latencyCount = 0
    private var windowStart = monotonicNanos()
    private var windowEvents = 0
    private var lastRate = 0.0

    func record(events: Int, receivedAt: UInt64) {
        let now = monotonicNanos()
        lock.withLock {
            totalEvents += events
            windowEvents += events
            latencies[latencyCount % latencies.count] = now - receivedAt
            latencyCount += 1
        }
    }

    /// Events per second since the previous call (or since start).
    func takeRate() -> Double {
        lock.withLock {
            let now = monotonicNanos()
            let seconds = Double(now - windowStart) / 1e9
            lastRate = seconds > 0 ? Double(windowEvents) / seconds : 0
            windowStart = now
            windowEvents = 0
            return lastRate
        }
    }

    var ingestedEvents: Int { lock.withLock { totalEvents } }

    /// Events per second over the current window (without resetting it).
    var currentRate: Double {
        lock.withLock {
            let seconds = Double(monotonicNanos() - windowStart) / 1e9
            return seconds > 0.5 ? Double(windowEvents) / seconds : lastRate
        }
    }

    /// p99 of receive-to-ack time, microseconds.
    var ackP99Micros: Int {
        lock.withLock {
            let n = min(latencyCount, latencies.count)
            guard n > 0 else { return 0 }
            let sorted = latencies[0..<n].sorted()
            return Int(sorted[min(n - 1, n * 99 / 100)] / 1000)
        }
    }
}

/// Resident memory of this process, bytes (from /proc/self/statm).
func residentBytes() -> Int {
    guard let f = fopen("/proc/self/statm", "r") else { return 0 }
    defer { fclose(f) }
    var size = 0
    var resident = 0
    guard fscanf_statm(f, &size, &resident) else { return 0 }
    return resident * Int(sysconf(Int32(_SC_PAGESIZE)))
}

private func fscanf_statm(_ f: UnsafeMutablePointer<FILE>, _ size: inout Int, _ resident: inout Int) -> Bool {
    var buffer = [CChar](repeating: 0, count: 256)
    guard fgets(&buffer, 256, f) != nil else { return false }
    let fields = String(cString: buffer).split(separator: " ")
    guard fields.count >= 2, let s = Int(fields[0]), let r = Int(fields[1]) else { return false }
    size = s
    resident = r
    return true
}

