/// The store's time buckets: every event links to the node of the minute that holds it (adjacency entry
/// event -> `time-<minute>`, edge type 999). The catalogue uses this convention, traversal uses it to reach
/// events close in time, and compaction relies on it to leave these entries out of compacted blocks and
/// derive them again on read.
public enum TimeBucket {
    /// The edge type of the adjacency entry event -> time bucket.
    public static let edgeType: UInt16 = 999
    /// Width of a bucket: one minute.
    public static let micros: Int64 = 60_000_000

    /// The id of the bucket that holds `timestamp` (floor division, also for times before 1970).
    public static func id(_ timestamp: Int64) -> String {
        "time-" + String(minute(timestamp))
    }

    static func minute(_ timestamp: Int64) -> Int64 {
        timestamp >= 0 ? timestamp / micros : (timestamp + 1) / micros - 1
    }
}
