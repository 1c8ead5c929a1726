#if canImport(Glibc)
import Glibc
#endif

/// How a store is opened.
public struct StoreOptions: Sendable {
    /// When an append returns: see `Durability`. Default `.batch` (group commit).
    public var durability: Durability = .batch
    /// Size of each segment file, preallocated when created. Default 64 MiB; 64 KiB to 1 GiB.
    public var segmentCapacity: Int = 64 << 20
    /// Open without the lock, without recovery writes, refusing appends (for inspection of a live store).
    public var readOnly = false
    /// Receives one-line notices (recovery summary, truncation, skipped damage). Executables route it to a log.
    public var onNotice: (@Sendable (String) -> Void)?
    /// The clock, in microseconds since the epoch (segment creation times).
    public var clock: @Sendable () -> Int64 = { GridClock.nowMicros() }
    /// How sealed segments are compacted: `.fast` (default), `.high` or `.none`.
    public var compression: Compression = .fast
    /// Delete whole sealed segments whose newest event is older than this many microseconds (nil: keep).
    public var retainMicros: Int64?
    /// Delete whole sealed segments, oldest first, while the store takes more than this many bytes on disk
    /// (nil: no limit). The active segment is never deleted.
    public var maxBytes: Int?
    /// Replication's retention floor: the highest frame sequence shipped (nil: nothing to protect). Retention by
    /// age keeps a segment holding frames above it; `maxBytes` still deletes it and reports `onReplicationLoss`.
    public var replicationFloor: (@Sendable () -> UInt64?)?
    /// Called after retention deleted frames replication had not shipped (see `replicationFloor`).
    public var onReplicationLoss: (@Sendable (ReplicationLoss) -> Void)?
    /// Whether a background thread writes index files, compacts and applies retention. When false the owner
    /// calls `runMaintenance()` (tests and tools do, for determinism).
    public var backgroundMaintenance = true
    /// How often the background thread looks at retention by age even when nothing was sealed, in seconds.
    public var maintenanceInterval: Double = 30
    /// Target uncompressed size of a compacted segment's blocks, 4 KiB to 64 KiB: a cold read decompresses one
    /// whole block, so smaller blocks make random reads of old events cheaper and compress a little worse. On 1M
    /// realistic events: 64 KiB blocks take 30.2 bytes per event and a cold id lookup 44 µs; 16 KiB, 34.8 and 15 µs.
    public var compactionBlockBytes = 16 << 10
    /// Bytes of decompressed blocks kept for reads of compacted segments.
    public var blockCacheBytes = 32 << 20
    /// How to find the words of an event for the word index (nil: no word index; text searches then read every
    /// candidate event). See `TextIndexing`.
    public var text: TextIndexing?
    /// Faults to inject into system calls (tests only).
    @_spi(Testing) public var faults: FaultInjector?

    public init(durability: Durability = .batch, segmentCapacity: Int = 64 << 20, readOnly: Bool = false) {
        self.durability = durability
        self.segmentCapacity = segmentCapacity
        self.readOnly = readOnly
    }

    /// Transition: the wall clock moved to GridBase's `GridClock.nowMicros()`; this name stays for code written
    /// against it until every caller uses the base.
    public static func nowMicros() -> Int64 { GridClock.nowMicros() }

    static let minSegmentCapacity = 64 << 10
    static let maxSegmentCapacity = 1 << 30
    /// The range of `compactionBlockBytes` (`open` refuses a value outside it).
    static let minCompactionBlockBytes = 4 << 10
    static let maxCompactionBlockBytes = CompactedFormat.targetBlockSize
}

/// What opening a store found and did.
public struct RecoveryReport: Sendable {
    public var segments = 0
    public var frames = 0
    public var concepts = 0
    public var adjacency = 0
    /// Concept records found twice (a batch resent after a lost ack); the first copy is served.
    public var duplicates = 0
    /// Torn tails cut off the last segment.
    public var truncated: [Damage] = []
    /// Damaged regions reported and skipped; the frames around them are served.
    public var skipped: [Damage] = []
    /// Segments whose header could not be read; none of their data is served.
    public var unreadableSegments: [Damage] = []
    /// Index files or a manifest that were missing or damaged and rebuilt.
    public var notices: [String] = []
    public var elapsedSeconds = 0.0

    /// One line for the log.
    public var summary: String {
        var s = "recovered \(segments) segment(s), \(frames) frame(s), \(concepts) event(s), \(adjacency) adjacency entries"
        s += " in \(String(format3(elapsedSeconds)))s"
        if duplicates > 0 { s += "; \(duplicates) duplicate event(s) ignored" }
        for t in truncated { s += "; truncated torn tail at \(t.description)" }
        if !skipped.isEmpty { s += "; skipped \(skipped.count) damaged region(s): " + skipped.map(\.description).joined(separator: "; ") }
        for n in notices { s += "; " + n }
        if !unreadableSegments.isEmpty {
            s += "; unreadable segment(s): " + unreadableSegments.map(\.description).joined(separator: "; ")
        }
        return s
    }
}

func format3(_ x: Double) -> String {
    let scaled = (x * 1000).rounded()
    let whole = Int(scaled) / 1000
    let frac = Int(scaled) % 1000
    let f = String(frac)
    return "\(whole)." + String(repeating: "0", count: 3 - f.count) + f
}
