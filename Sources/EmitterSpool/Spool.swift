import GridBase
import GridEvents
#if canImport(Glibc)
import Glibc
#endif

/// The emitter's on-disk spool: an append-only file of checksummed records, read in order from a persisted read
/// offset. It survives the emitting process's restart (the next process with the same producer name replays
/// it, and a spool whose process died is adopted by a live one). Format in docs/FORMAT.md ("Emitter spool"); this
/// type is the one reader and writer of that format, used by `EventEmitter` and by the spool's fuzz target.
///
/// One thread appends (the emitter's spool writer) while another reads and commits (the emitter's worker); a
/// lock orders an append against the truncation a commit makes once everything is delivered. Appends are
/// large sequential writes, each followed by one checked fdatasync.
public final class Spool {
    static let magic = Array("SGSPOOL1".utf8)
    static let headerSize: UInt64 = 16
    static let recordHeader = 12
    static let maxRecord = 1 << 20
    /// Bytes read from the file at once when replaying (and when searching past damage).
    static let readChunk = 4 << 20

    public let path: String
    /// `<path>.pos`: the read offset, saved as records are delivered.
    public let positionPath: String
    /// `<name>-<pid>.spool`: removed once delivered, when its process ends or adopts it.
    public let isPidSuffixed: Bool
    private let fd: Int32
    private let io: SpoolIO
    /// Largest size the emitter lets the file grow to, bytes (an adopted spool's: its size when adopted).
    public let limit: Int
    private let lock = ConditionLock()
    private var _writeOffset: UInt64
    public private(set) var readOffset: UInt64
    /// Bytes skipped because they failed their checksum, and where.
    public private(set) var corruptions: [(offset: UInt64, bytes: UInt64)] = []
    private var window: [UInt8] = []
    private var windowStart: UInt64 = 0

    /// The file's size: where the next append goes.
    public var writeOffset: UInt64 { lock.withLock { _writeOffset } }

    /// Opens (creating) the spool for `name` in `directory`; nil when it cannot (the reason goes to `notice`).
    /// When another live process holds `<name>.spool`, uses `<name>-<pid>.spool`.
    public convenience init?(directory: String, name: String, limit: Int, notice: (String) -> Void) {
        self.init(directory: directory, name: name, limit: limit, faults: nil, notice: notice)
    }

    /// As `init(directory:name:limit:notice:)`, with failures injected into its system calls (tests).
    @_spi(Testing) public init?(directory: String, name: String, limit: Int, faults: SpoolFaults?, notice: (String) -> Void) {
        _ = directory.withCString { mkdir($0, 0o700) }
        let main = directory + "/" + name + ".spool"
        var opened = Spool.openLocked(main, create: true)
        var candidate = main
        if opened == nil {
            candidate = directory + "/" + name + "-" + String(getpid()) + ".spool"
            opened = Spool.openLocked(candidate, create: true)
        }
        guard let fd = opened else {
            notice("cannot open spool \(candidate): \(String(cString: strerror(errno))); events will be held in memory only")
            return nil
        }
        let io = SpoolIO(faults: faults)
        self.fd = fd
        self.io = io
        self.path = candidate
        self.positionPath = candidate + ".pos"
        self.isPidSuffixed = candidate != main
        self.limit = limit
        let size = Spool.fileSize(fd)
        if !Spool.hasHeader(fd, size: size, io: io) {
            if size > 0 { notice("spool \(candidate) has no valid header; starting it afresh") }
            ftruncate(fd, 0)
            _ = Spool.headerBytes.withUnsafeBytes { io.pwriteAll(fd, $0, at: 0) }
            _writeOffset = Spool.headerSize
            readOffset = Spool.headerSize
            savePosition()
        } else {
            _writeOffset = size
            readOffset = Spool.headerSize
            if let saved = Spool.loadPosition(positionPath), saved >= Spool.headerSize, saved <= size { readOffset = saved }
        }
    }

    /// Adopts the spool at `path` of a process that is gone: nil when a live process holds it, it no longer
    /// exists, or it has no valid header. The adopter holds its lock until it closes it, so no two processes
    /// replay the same file at once; the read position is saved as records are delivered, so an adopter that
    /// dies midway leaves the rest to the next.
    public convenience init?(adopting path: String) {
        self.init(adopting: path, faults: nil)
    }

    /// As `init(adopting:)`, with failures injected into its system calls (tests).
    @_spi(Testing) public init?(adopting path: String, faults: SpoolFaults?) {
        guard let fd = Spool.openLocked(path, create: false) else { return nil }
        let io = SpoolIO(faults: faults)
        let size = Spool.fileSize(fd)
        guard Spool.hasHeader(fd, size: size, io: io) else {
            close(fd)
            return nil
        }
        self.fd = fd
        self.io = io
        self.path = path
        self.positionPath = path + ".pos"
        let base = path.split(separator: "/").last.map(String.init) ?? path
        self.isPidSuffixed = base.dropLast(".spool".count).split(separator: "-").last.map { $0.allSatisfy(\.isNumber) } ?? false
        self.limit = Int(size)
        _writeOffset = size
        readOffset = Spool.headerSize
        if let saved = Spool.loadPosition(positionPath), saved >= Spool.headerSize, saved <= size { readOffset = saved }
    }

    private var closed = false

    deinit { closeFile() }

    /// Closes the file, releasing its lock (for the next process with this producer name). Nothing is read or
    /// written after this.
    public func closeFile() {
        lock.withLock {
            if !closed { close(fd) }
            closed = true
        }
    }

    /// Opens `path` and takes its lock without waiting; nil when another process holds it, or when the file
    /// was removed or replaced between the open and the lock (an adopter deletes a delivered spool while holding
    /// its lock, so a file locked after that is no longer the one at `path`).
    private static func openLocked(_ path: String, create: Bool) -> Int32? {
        for _ in 0..<3 {
            let fd = open(path, O_RDWR | O_CLOEXEC | (create ? O_CREAT : 0), 0o600)
            guard fd >= 0 else { return nil }
            guard FileLock.tryExclusive(fd) == .locked else {
                close(fd)
                return nil
            }
            var held = stat()
            var named = stat()
            if fstat(fd, &held) == 0, stat(path, &named) == 0, held.st_ino == named.st_ino, held.st_dev == named.st_dev {
                return fd
            }
            close(fd)
            if !create { return nil }
        }
        return nil
    }

    private static func fileSize(_ fd: Int32) -> UInt64 {
        var st = stat()
        fstat(fd, &st)
        return UInt64(max(0, st.st_size))
    }

    private static var headerBytes: [UInt8] {
        var w = BinaryWriter(capacity: 16)
        w.raw(Spool.magic)
        w.u32(1)
        w.u32(0)
        return w.bytes
    }

    private static func hasHeader(_ fd: Int32, size: UInt64, io: SpoolIO) -> Bool {
        guard size >= headerSize else { return false }
        var header = [UInt8](repeating: 0, count: Int(headerSize))
        let n = header.withUnsafeMutableBytes { io.pread(fd, $0.baseAddress!, $0.count, 0) }
        return n == Int(headerSize) && Array(header[0..<8]) == magic
    }

    /// Bytes not yet delivered (from the read offset to the end).
    public var pendingBytes: Int { lock.withLock { Int(_writeOffset - readOffset) } }
    public var isEmpty: Bool { lock.withLock { readOffset >= _writeOffset } }

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

    // MARK: Writing

    /// Appends encoded records (whole records, from `appendRecord`) with one write and one fdatasync. Returns 0,
    /// or the errno of a failed write or fdatasync: then the file is cut back to where it was and nothing of
    /// `bytes` counts as spooled (after a failed fdatasync the kernel may have dropped the pages).
    public func append(encoded bytes: [UInt8]) -> Int32 {
        guard !bytes.isEmpty else { return 0 }
        return lock.withLock {
            let err = bytes.withUnsafeBytes { io.pwriteAll(fd, $0, at: _writeOffset) }
            let synced = err == 0 ? io.fdatasync(fd) : err
            guard synced == 0 else {
                ftruncate(fd, off_t(_writeOffset))
                return synced
            }
            _writeOffset += UInt64(bytes.count)
            return 0
        }
    }

    /// Appends records in order until the size limit; returns how many were written (0 when the write or its
    /// fdatasync failed). One write, one fdatasync.
    @discardableResult
    public func append(_ records: [SpoolRecord]) -> Int {
        var out: [UInt8] = []
        var written = 0
        let room = limit - Int(writeOffset)
        for r in records {
            let before = out.count
            Spool.appendRecord(
                producer: r.producer, sequence: r.sequence, kind: r.event.kind, timestamp: r.event.timestamp, id: r.event.id,
                producerTag: "", to: &out)
            if out.count > room {
                out.removeSubrange(before...)
                break
            }
            written += 1
        }
        return written > 0 && append(encoded: out) == 0 ? written : 0
    }

    // MARK: Reading

    /// Makes `[offset, offset + count)` available in the window (reading at least `readChunk` bytes at once);
    /// false when the file ends before.
    private func load(_ offset: UInt64, _ count: Int, end: UInt64) -> Bool {
        if offset >= windowStart, offset + UInt64(count) <= windowStart + UInt64(window.count) { return true }
        guard offset + UInt64(count) <= end else { return false }
        let size = Int(min(end - offset, UInt64(max(count, Spool.readChunk))))
        if window.count != size { window = [UInt8](repeating: 0, count: size) }
        var got = 0
        while got < size {
            let n = window.withUnsafeMutableBytes { io.pread(fd, $0.baseAddress! + got, size - got, offset + UInt64(got)) }
            if n <= 0 { break }
            got += n
        }
        if got < size { window.removeSubrange(got...) }
        windowStart = offset
        return got >= count
    }

    /// Reads records from the read offset: up to `maxEvents`, about `maxBytes`. Returns them with the offset
    /// just past the last one. Records that fail their checksum are skipped and remembered in `corruptions`.
    /// Reads the file `readChunk` bytes at a time, also while searching past damage.
    public func read(maxEvents: Int, maxBytes: Int) -> (records: [SpoolRecord], end: UInt64) {
        let end = writeOffset
        var records: [SpoolRecord] = []
        var offset = readOffset
        var bytes = 0
        while offset < end, records.count < maxEvents, bytes < maxBytes {
            switch recordAt(offset, end: end, resync: false) {
            case .valid(let record, let size):
                offset += size
                if var record {
                    record.end = offset
                    records.append(record)
                }
                bytes += Int(size)
            case .invalid:
                let next = nextValid(after: offset, end: end)
                corruptions.append((offset, next - offset))
                offset = next
            }
        }
        return (records, offset)
    }

    private enum Found {
        /// A record whose checksum matches (its event nil when it does not decode) and its size.
        case valid(SpoolRecord?, UInt64)
        case invalid
    }

    /// The record at `offset`. With `resync` (searching past damage), candidates are first checked cheaply
    /// (a plausible length and producer string) before their checksum.
    private func recordAt(_ offset: UInt64, end: UInt64, resync: Bool) -> Found {
        guard end - offset >= UInt64(Spool.recordHeader), load(offset, Spool.recordHeader, end: end) else { return .invalid }
        let at = Int(offset - windowStart)
        let (length, sum) = window.withUnsafeBytes { b in
            (Int(UInt32(littleEndian: b.loadUnaligned(fromByteOffset: at, as: UInt32.self))),
             UInt64(littleEndian: b.loadUnaligned(fromByteOffset: at + 4, as: UInt64.self)))
        }
        guard length > 0, length <= Spool.maxRecord, offset + UInt64(Spool.recordHeader + length) <= end else { return .invalid }
        if resync, at + Spool.recordHeader < window.count {
            let first = window[at + Spool.recordHeader]
            if first == 0 || (first < 0x80 && Int(first) + 9 > length) { return .invalid }
        }
        guard load(offset, Spool.recordHeader + length, end: end) else { return .invalid }
        let bodyAt = Int(offset - windowStart) + Spool.recordHeader
        let body = window[bodyAt..<(bodyAt + length)]
        guard body.withUnsafeBytes({ Hash.bytes($0) }) == sum else { return .invalid }
        let size = UInt64(Spool.recordHeader + length)
        var br = BinaryReader(body)
        guard let producer = try? br.string(limit: 256), let seq = try? br.u64(), let event = try? BinaryCodec.decode(&br) else {
            return .valid(nil, size)
        }
        return .valid(SpoolRecord(producer: producer, sequence: seq, event: event), size)
    }

    /// The next offset after `offset` where a valid record starts (or `end`), searched in memory.
    private func nextValid(after offset: UInt64, end: UInt64) -> UInt64 {
        var candidate = offset + 1
        while candidate < end {
            if case .valid = recordAt(candidate, end: end, resync: true) { return candidate }
            candidate += 1
        }
        return end
    }

    /// Marks everything before `offset` delivered. When the spool is empty it is truncated back to its header;
    /// returns the bytes that freed.
    @discardableResult
    public func commit(through offset: UInt64) -> Int {
        lock.withLock {
            readOffset = max(readOffset, min(offset, _writeOffset))
            var freed = 0
            if readOffset == _writeOffset {
                ftruncate(fd, off_t(Spool.headerSize))
                freed = Int(_writeOffset - Spool.headerSize)
                _writeOffset = Spool.headerSize
                readOffset = Spool.headerSize
                window = []
                windowStart = 0
            }
            savePosition()
            return freed
        }
    }

    /// Deletes the file and its position file (call while holding the lock, that is before this object goes).
    public func removeFiles() {
        unlink(path)
        unlink(positionPath)
    }

    /// The spool files in `directory` that belong to producer `name` (`<name>.spool`, `<name>-<pid>.spool`).
    public static func siblings(directory: String, name: String) -> [String] {
        guard let dir = opendir(directory) else { return [] }
        defer { closedir(dir) }
        var out: [String] = []
        while let entry = readdir(dir) {
            let file = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                String(decoding: raw.prefix(while: { $0 != 0 }), as: UTF8.self)
            }
            guard file.hasSuffix(".spool") else { continue }
            let stem = file.dropLast(".spool".count)
            if stem == name {
                out.append(directory + "/" + file)
            } else if stem.hasPrefix(name + "-") {
                let pid = stem.dropFirst(name.count + 1)
                if !pid.isEmpty, pid.allSatisfy({ $0.isASCII && $0.isNumber }) { out.append(directory + "/" + file) }
            }
        }
        return out.sorted()
    }
}

