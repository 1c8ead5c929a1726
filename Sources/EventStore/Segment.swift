#if canImport(Glibc)
import Glibc
#endif

/// One segment file: its descriptor, its read-only mapping and what is known about its frames.
/// Owned by `EventStore`; every access happens under the store's lock.
final class Segment {
    struct FrameEntry {
        var offset: UInt32
        var minTimestamp: Int64
        var maxTimestamp: Int64
    }

    let id: UInt64
    let path: String
    let fd: Int32
    let mappedLength: Int
    let base: UnsafeRawPointer
    let created: Int64
    let capacity: UInt64
    /// End of valid data: the next frame goes here.
    var end: Int
    var sealed: Bool
    /// Valid batch frames in offset order: the sparse time index of this segment.
    var frames: [FrameEntry] = []
    var minTimestamp = Int64.max
    var maxTimestamp = Int64.min
    var recordCount = 0
    var conceptCount = 0

    init(
        id: UInt64, path: String, fd: Int32, base: UnsafeRawPointer, mappedLength: Int, created: Int64,
        capacity: UInt64, end: Int, sealed: Bool
    ) {
        self.id = id
        self.path = path
        self.fd = fd
        self.base = base
        self.mappedLength = mappedLength
        self.created = created
        self.capacity = capacity
        self.end = end
        self.sealed = sealed
    }

    /// The mapped bytes `[0, mappedLength)`.
    var bytes: UnsafeRawBufferPointer { UnsafeRawBufferPointer(start: base, count: mappedLength) }

    var hasTimeRange: Bool { minTimestamp <= maxTimestamp }

    func noteFrame(offset: Int, info: FrameInfo) {
        frames.append(FrameEntry(offset: UInt32(offset), minTimestamp: info.minTimestamp, maxTimestamp: info.maxTimestamp))
        minTimestamp = min(minTimestamp, info.minTimestamp)
        maxTimestamp = max(maxTimestamp, info.maxTimestamp)
        recordCount += info.recordCount
        conceptCount += info.concepts
    }

    /// The frame that contains byte `offset` (binary search over the frame list).
    func frame(containing offset: Int) -> FrameEntry? {
        var lo = 0
        var hi = frames.count
        while lo < hi {
            let mid = (lo + hi) / 2
            if Int(frames[mid].offset) <= offset { lo = mid + 1 } else { hi = mid }
        }
        return lo == 0 ? nil : frames[lo - 1]
    }

    func close(_ sys: SystemCalls) {
        sys.unmap(base, length: mappedLength)
        sys.close(fd)
    }
}
