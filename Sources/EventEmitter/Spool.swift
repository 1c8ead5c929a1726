import EventStore
import GridEvents
#if canImport(Glibc)
import Glibc
#endif

/// One spooled event: who produced it, its sequence number and the event.
struct SpoolRecord {
    var producer: String
    var sequence: UInt64
    var event: GridEvent
    /// Spool offset just past this record (set by `read`).
    var end: UInt64 = 0
}

/// The emitter's on-disk spool: an append-only file of checksummed records, read in order from a persisted read
/// offset. It survives the emitting process's restart (the next process with the same producer name replays
/// it). Format in docs/FORMAT.md ("Emitter spool").
final class Spool {
    static let magic = Array("SGSPOOL1".utf8)
    static let headerSize: UInt64 = 16
    static let recordHeader = 12
    static let maxRecord = 1 << 20

    let path: String
    let positionPath: String
    private let fd: Int32
    private let io: SpoolIO
    let limit: Int
    private(set) var writeOffset: UInt64
    private(set) var readOffset: UInt64
    /// Bytes skipped because they failed their checksum, and where.
    private(set) var corruptions: [(offset: UInt64, bytes: UInt64)] = []

    /// Opens (creating) the spool for `name` in `directory`; nil when it cannot (the reason goes to `notice`).
    init?(directory: String, name: String, limit: Int, faults: SpoolFaults? = nil, notice: (String) -> Void) {
        _ = directory.withCString { mkdir($0, 0o700) }
        var candidate = directory + "/" + name + ".spool"
        var fd = open(candidate, O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        if fd >= 0, spoolFlock(fd, LOCK_EX | LOCK_NB) != 0 {
            // Another live process spools under this name: use a spool of our own.
            close(fd)
            candidate = directory + "/" + name + "-" + String(getpid()) + ".spool"
            fd = open(candidate, O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
            if fd >= 0, spoolFlock(fd, LOCK_EX | LOCK_NB) != 0 {
                close(fd)
                fd = -1
            }
        }
        guard fd >= 0 else {
            notice("cannot open spool \(candidate): \(String(cString: strerror(errno))); events will be held in memory only")
            return nil
        }
        self.fd = fd
        self.io = SpoolIO(faults: faults)
        self.path = candidate
        self.positionPath = candidate + ".pos"
        self.limit = limit
        var st = stat()
        fstat(fd, &st)
        let size = UInt64(st.st_size)
        var header = [UInt8](repeating: 0, count: Int(Spool.headerSize))
        let n = header.withUnsafeMutableBytes { pread(fd, $0.baseAddress, $0.count, 0) }
        if size < Spool.headerSize || n != Int(Spool.headerSize) || Array(header[0..<8]) != Spool.magic {
            if size > 0 { notice("spool \(candidate) has no valid header; starting it afresh") }
            ftruncate(fd, 0)
            var w = BinaryWriter(capacity: 16)
            w.raw(Spool.magic)
            w.u32(1)
            w.u32(0)
            _ = w.bytes.withUnsafeBytes { pwrite(fd, $0.baseAddress, $0.count, 0) }
            writeOffset = Spool.headerSize
            readOffset = Spool.headerSize
            savePosition()
        } else {
            writeOffset = size
            readOffset = Spool.headerSize
            if let saved = Spool.loadPosition(positionPath), saved >= Spool.headerSize, saved <= size { readOffset = saved }
        }
    }

    deinit { close(fd) }

    var pendingBytes: Int { Int(writeOffset - readOffset) }
    var isEmpty: Bool { readOffset >= writeOffset }

    private static func loadPosition(_ path: String) -> UInt64? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var b = [UInt8](repeating: 0, count: 16)
        guard b.withUnsafeMutableBytes({ pread(fd, $0.baseAddress, 16, 0) }) == 16 else { return nil }
        var r = BinaryReader(b[...])
        guard let offset = try? r.u64(), let sum = try? r.u64() else { return nil }
        let check = withUnsafeBytes(of: offset.littleEndian) { Hash.bytes($0) }
        return check == sum ? offset : nil
    }

    private func savePosition() {
        var w = BinaryWriter(capacity: 16)
        w.u64(readOffset)
        w.u64(withUnsafeBytes(of: readOffset.littleEndian) { Hash.bytes($0) })
        let fd = open(positionPath, O_WRONLY | O_CREAT | O_CLOEXEC, 0o600)
        guard fd >= 0 else { return }
        _ = w.bytes.withUnsafeBytes { pwrite(fd, $0.baseAddress, 16, 0) }
        close(fd)
    }

    /// Appends records in order until the size limit; returns how many were written. One fdatasync.
    func append(_ records: [SpoolRecord]) -> Int {
        var w = BinaryWriter(capacity: records.count * 160)
        var written = 0
        for r in records {
            var body = BinaryWriter(capacity: 160)
            body.string(r.producer)
            body.u64(r.sequence)
            BinaryCodec.encode(r.event, into: &body)
            guard Int(writeOffset) + w.bytes.count + Spool.recordHeader + body.bytes.count <= limit else { break }
            w.u32(UInt32(body.bytes.count))
            w.u64(body.bytes.withUnsafeBytes { Hash.bytes($0) })
            w.raw(body.bytes)
            written += 1
        }
        guard written > 0 else { return 0 }
        let ok = w.bytes.withUnsafeBytes { io.pwriteAll(fd, $0, at: writeOffset) } == 0
        guard ok else {
            ftruncate(fd, off_t(writeOffset))  // drop the partial append
            return 0
        }
        _ = io.fdatasync(fd)
        writeOffset += UInt64(w.bytes.count)
        return written
    }

    /// Reads records from the read offset: up to `maxEvents`, about `maxBytes`. Returns them with the offset
    /// just past the last one. Records that fail their checksum are skipped and remembered in `corruptions`.
    func read(maxEvents: Int, maxBytes: Int) -> (records: [SpoolRecord], end: UInt64) {
        var records: [SpoolRecord] = []
        var offset = readOffset
        var bytes = 0
        while offset < writeOffset, records.count < maxEvents, bytes < maxBytes {
            if let (record, size) = recordAt(offset) {
                offset += size
                if var record {
                    record.end = offset
                    records.append(record)
                }
                bytes += Int(size)
            } else {
                let next = nextValid(after: offset)
                corruptions.append((offset, next - offset))
                offset = next
            }
        }
        return (records, offset)
    }

    /// The record at `offset` and its size; nil when the bytes there are not a valid record. A valid record
    /// whose event does not decode yields (nil, size): skipped.
    private func recordAt(_ offset: UInt64) -> (SpoolRecord?, UInt64)? {
        guard writeOffset - offset >= UInt64(Spool.recordHeader) else { return nil }
        var head = [UInt8](repeating: 0, count: Spool.recordHeader)
        guard head.withUnsafeMutableBytes({ io.pread(fd, $0.baseAddress!, $0.count, offset) }) == Spool.recordHeader else { return nil }
        var r = BinaryReader(head[...])
        guard let length = try? r.u32(), let sum = try? r.u64(), length > 0, Int(length) <= Spool.maxRecord,
            offset + UInt64(Spool.recordHeader) + UInt64(length) <= writeOffset
        else { return nil }
        var body = [UInt8](repeating: 0, count: Int(length))
        guard body.withUnsafeMutableBytes({ io.pread(fd, $0.baseAddress!, $0.count, offset + UInt64(Spool.recordHeader)) }) == Int(length),
            body.withUnsafeBytes({ Hash.bytes($0) }) == sum
        else { return nil }
        let size = UInt64(Spool.recordHeader) + UInt64(length)
        var br = BinaryReader(body[...])
        guard let producer = try? br.string(limit: 256), let seq = try? br.u64(), let event = try? BinaryCodec.decode(&br) else {
            return (nil, size)
        }
        return (SpoolRecord(producer: producer, sequence: seq, event: event), size)
    }

    private func nextValid(after offset: UInt64) -> UInt64 {
        var candidate = offset + 1
        while candidate < writeOffset {
            if recordAt(candidate) != nil { return candidate }
            candidate += 1
        }
        return writeOffset
    }

    /// Marks everything before `offset` delivered. When the spool is empty it is truncated back to its header.
    func commit(through offset: UInt64) {
        readOffset = max(readOffset, min(offset, writeOffset))
        if readOffset == writeOffset {
            ftruncate(fd, off_t(Spool.headerSize))
            writeOffset = Spool.headerSize
            readOffset = Spool.headerSize
        }
        savePosition()
    }
}

/// flock(2), declared directly because the Glibc overlay's `flock` also names `struct flock`.
@_silgen_name("flock") private func spoolFlock(_ fd: Int32, _ operation: Int32) -> Int32
