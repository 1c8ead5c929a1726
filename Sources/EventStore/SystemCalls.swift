#if canImport(Glibc)
import Glibc
#endif
import Synchronization

/// The one layer through which the store makes file-system calls. Each call is wrapped once: errno is read
/// immediately, EINTR is retried, and failures become `StoreError`s carrying the path and what was being done.
///
/// Tests make calls fail through a `FaultInjector` (ENOSPC from a write, EIO from fdatasync, short writes)
/// without needing a broken disk, and record every call that changes what is on disk through its
/// `SystemCallRecorder` (the crash-state explorer in Tests/CrashStateTests replays the record).
struct SystemCalls: Sendable {
    let faults: FaultInjector?
    let recorder: SystemCallRecorder?

    init(faults: FaultInjector?) {
        self.faults = faults
        recorder = faults?.recorder
    }

    static let live = SystemCalls(faults: nil)

    private func inject(_ call: FaultInjector.Call, _ what: String, path: String) throws(StoreError) {
        guard let faults, let err = faults.fault(for: call) else { return }
        throw SystemCalls.error(err, what, path: path)
    }

    static func error(_ err: Int32, _ what: String, path: String, offset: UInt64? = nil) -> StoreError {
        switch err {
        case ENOSPC, EDQUOT:
            return StoreError(
                .noSpace, "\(what) failed: no space left on device; free space and retry", path: path, offset: offset,
                errno: err)
        default:
            return StoreError(.io, "\(what) failed", path: path, offset: offset, errno: err)
        }
    }

    func open(_ path: String, flags: Int32, mode: mode_t = 0o644) throws(StoreError) -> Int32 {
        try inject(.open, "open", path: path)
        while true {
            let fd = Glibc.open(path, flags | O_CLOEXEC, mode)
            if fd >= 0 {
                recorder?.record(.open(path: path, flags: flags, fd: fd))
                return fd
            }
            let err = Glibc.errno
            if err == EINTR { continue }
            throw SystemCalls.error(err, "open", path: path)
        }
    }

    func close(_ fd: Int32) {
        recorder?.record(.close(fd: fd))
        _ = Glibc.close(fd)
    }

    /// Writes all of `bytes` at `offset`, looping over short writes.
    func pwriteAll(_ fd: Int32, _ bytes: UnsafeRawBufferPointer, at offset: UInt64, path: String) throws(StoreError) {
        var done = 0
        while done < bytes.count {
            var count = bytes.count - done
            if let faults {
                if let err = faults.fault(for: .write) {
                    throw SystemCalls.error(err, "write", path: path, offset: offset + UInt64(done))
                }
                if faults.shortWrites, count > 1 { count = count / 2 }
            }
            let n = Glibc.pwrite(fd, bytes.baseAddress! + done, count, off_t(offset) + off_t(done))
            if n < 0 {
                let err = Glibc.errno
                if err == EINTR { continue }
                throw SystemCalls.error(err, "write", path: path, offset: offset + UInt64(done))
            }
            if n == 0 {
                throw StoreError(.io, "write made no progress", path: path, offset: offset + UInt64(done))
            }
            if let recorder {
                let written = UnsafeRawBufferPointer(rebasing: bytes[done..<(done + n)])
                recorder.record(.write(fd: fd, offset: offset + UInt64(done), bytes: Array(written)))
            }
            done += n
        }
    }

    /// Writes all of `bytes` at `offset`.
    func pwriteAll(_ fd: Int32, _ bytes: [UInt8], at offset: UInt64, path: String) throws(StoreError) {
        var failure: StoreError?
        bytes.withUnsafeBytes { b in
            do throws(StoreError) { try pwriteAll(fd, b, at: offset, path: path) } catch { failure = error }
        }
        if let failure { throw failure }
    }

    /// Reads up to `count` bytes at `offset` into a new array (shorter at end of file).
    func pread(_ fd: Int32, count: Int, at offset: UInt64, path: String) throws(StoreError) -> [UInt8] {
        var buffer = [UInt8](repeating: 0, count: count)
        var failure: StoreError?
        var n = 0
        buffer.withUnsafeMutableBytes { b in
            do throws(StoreError) { n = try pread(fd, into: b, at: offset, path: path) } catch { failure = error }
        }
        if let failure { throw failure }
        buffer.removeLast(count - n)
        return buffer
    }

    /// Reads up to `buffer.count` bytes at `offset`; returns how many were read (short only at end of file).
    func pread(_ fd: Int32, into buffer: UnsafeMutableRawBufferPointer, at offset: UInt64, path: String)
        throws(StoreError) -> Int
    {
        var done = 0
        while done < buffer.count {
            let n = Glibc.pread(fd, buffer.baseAddress! + done, buffer.count - done, off_t(offset) + off_t(done))
            if n < 0 {
                let err = Glibc.errno
                if err == EINTR { continue }
                throw SystemCalls.error(err, "read", path: path, offset: offset + UInt64(done))
            }
            if n == 0 { break }
            done += n
        }
        return done
    }

    func fdatasync(_ fd: Int32, path: String) throws(StoreError) {
        if let faults {
            if let err = faults.fault(for: .fdatasync) {
                throw StoreError(.syncFailed, "fdatasync failed", path: path, errno: err)
            }
            if faults.dropsSync(of: path) { return }
        }
        while Glibc.fdatasync(fd) != 0 {
            let err = Glibc.errno
            if err == EINTR { continue }
            throw StoreError(.syncFailed, "fdatasync failed", path: path, errno: err)
        }
        recorder?.record(.sync(fd: fd, dataOnly: true))
    }

    func fsync(_ fd: Int32, path: String) throws(StoreError) {
        if let faults {
            if let err = faults.fault(for: .fdatasync) {
                throw StoreError(.syncFailed, "fsync failed", path: path, errno: err)
            }
            if faults.dropsSync(of: path) { return }
        }
        while Glibc.fsync(fd) != 0 {
            let err = Glibc.errno
            if err == EINTR { continue }
            throw StoreError(.syncFailed, "fsync failed", path: path, errno: err)
        }
        recorder?.record(.sync(fd: fd, dataOnly: false))
    }

    /// Reserves disk blocks for `[0, length)` so later writes inside cannot fail for lack of space.
    func preallocate(_ fd: Int32, length: UInt64, path: String) throws(StoreError) {
        try inject(.preallocate, "preallocate \(length) bytes", path: path)
        while true {
            let err = posix_fallocate(fd, 0, off_t(length))
            if err == 0 {
                recorder?.record(.preallocate(fd: fd, length: length))
                return
            }
            if err == EINTR { continue }
            throw SystemCalls.error(err, "preallocate \(length) bytes", path: path)
        }
    }

    func truncate(_ fd: Int32, length: UInt64, path: String) throws(StoreError) {
        try inject(.truncate, "truncate", path: path)
        while Glibc.ftruncate(fd, off_t(length)) != 0 {
            let err = Glibc.errno
            if err == EINTR { continue }
            throw SystemCalls.error(err, "truncate to \(length) bytes", path: path)
        }
        recorder?.record(.truncate(fd: fd, length: length))
    }

    func fileSize(_ fd: Int32, path: String) throws(StoreError) -> UInt64 {
        var st = stat()
        if Glibc.fstat(fd, &st) != 0 {
            throw SystemCalls.error(Glibc.errno, "stat", path: path)
        }
        return UInt64(st.st_size)
    }

    func mapReadOnly(_ fd: Int32, length: Int, path: String) throws(StoreError) -> UnsafeRawPointer {
        try inject(.mmap, "mmap", path: path)
        let p = Glibc.mmap(nil, length, PROT_READ, MAP_SHARED, fd, 0)
        guard let p, p != MAP_FAILED else {
            throw SystemCalls.error(Glibc.errno, "mmap \(length) bytes", path: path)
        }
        recorder?.record(.map(fd: fd, length: length, writable: false))
        return UnsafeRawPointer(p)
    }

    /// Opens `path` read-only and maps all of it; refuses (`.corrupt`, naming `what`) a file shorter than
    /// `minimum`. The caller unmaps and closes.
    func mapWholeFile(_ path: String, minimum: Int, what: String) throws(StoreError)
        -> (fd: Int32, base: UnsafeRawPointer, length: Int)
    {
        let fd = try open(path, flags: O_RDONLY)
        do throws(StoreError) {
            let length = Int(try fileSize(fd, path: path))
            guard length >= minimum else { throw StoreError(.corrupt, "\(what) shorter than its header", path: path) }
            return (fd, try mapReadOnly(fd, length: length, path: path), length)
        } catch {
            close(fd)
            throw error
        }
    }

    /// `mapWholeFile`, then `parse` over the mapped bytes; a file whose header does not parse, or names another
    /// segment than `segment`, is unmapped, closed and refused (`.corrupt`, naming `what`).
    func mapSegmentFile<Header>(
        _ path: String, segment: UInt64, minimum: Int, what: String,
        parse: (UnsafeRawBufferPointer) -> Result<Header, FormatProblem>, segmentOf: (Header) -> UInt64
    ) throws(StoreError) -> (fd: Int32, base: UnsafeRawPointer, length: Int, header: Header) {
        let (fd, base, length) = try mapWholeFile(path, minimum: minimum, what: what)
        let problem: String
        switch parse(UnsafeRawBufferPointer(start: base, count: length)) {
        case .success(let h) where segmentOf(h) == segment: return (fd, base, length, h)
        case .success(let h): problem = "\(what) names segment \(segmentOf(h))"
        case .failure(let p): problem = "\(what): \(p.reason)"
        }
        unmap(base, length: length)
        close(fd)
        throw StoreError(.corrupt, problem, path: path)
    }

    func unmap(_ pointer: UnsafeRawPointer, length: Int) {
        _ = Glibc.munmap(UnsafeMutableRawPointer(mutating: pointer), length)
    }

    /// Takes an exclusive, non-blocking lock on `fd`; returns false when another open file holds it.
    func tryLockExclusive(_ fd: Int32, path: String) throws(StoreError) -> Bool {
        while sgev_flock(fd, LOCK_EX | LOCK_NB) != 0 {
            let err = Glibc.errno
            if err == EINTR { continue }
            if err == EWOULDBLOCK { return false }
            throw SystemCalls.error(err, "lock", path: path)
        }
        return true
    }

    func makeDirectory(_ path: String) throws(StoreError) {
        try inject(.open, "create directory", path: path)
        if Glibc.mkdir(path, 0o755) != 0 {
            let err = Glibc.errno
            if err == EEXIST { return }
            throw SystemCalls.error(err, "create directory", path: path)
        }
        recorder?.record(.makeDirectory(path: path))
        // The new entry is durable only once its parent directory is synced: without this a power loss can
        // take the whole data directory, and every acknowledged event in it, away.
        try syncDirectory(SystemCalls.parentDirectory(of: path))
    }

    /// The directory that holds `path` ("." for a bare name, "/" for a name at the root).
    static func parentDirectory(of path: String) -> String {
        var p = Substring(path)
        while p.count > 1, p.hasSuffix("/") { p.removeLast() }
        guard let slash = p.lastIndex(of: "/") else { return "." }
        return slash == p.startIndex ? "/" : String(p[..<slash])
    }

    func rename(_ from: String, _ to: String) throws(StoreError) {
        try inject(.rename, "rename to \(to)", path: from)
        if Glibc.rename(from, to) != 0 {
            throw SystemCalls.error(Glibc.errno, "rename to \(to)", path: from)
        }
        recorder?.record(.rename(from: from, to: to))
    }

    func unlink(_ path: String) throws(StoreError) {
        try inject(.unlink, "unlink", path: path)
        if Glibc.unlink(path) != 0 {
            let err = Glibc.errno
            if err == ENOENT { return }
            throw SystemCalls.error(err, "unlink", path: path)
        }
        recorder?.record(.unlink(path: path))
    }

    /// Flushes a directory's entries (after a create or rename inside it).
    func syncDirectory(_ path: String) throws(StoreError) {
        let fd = try open(path, flags: O_RDONLY | O_DIRECTORY)
        defer { close(fd) }
        try fsync(fd, path: path)
    }

    /// True for a directory, false for something else, nil when nothing is there.
    /// The bytes the file at `path` occupies on disk (its allocated blocks, as `du` counts them); nil when it
    /// cannot be stat-ed.
    func allocatedBytes(_ path: String) -> Int? {
        var st = stat()
        guard Glibc.lstat(path, &st) == 0 else { return nil }
        return Int(st.st_blocks) * 512
    }

    func isDirectory(_ path: String) -> Bool? {
        let fd = Glibc.open(path, O_RDONLY | O_CLOEXEC)
        if fd < 0 { return Glibc.errno == ENOENT ? nil : false }
        defer { Glibc.close(fd) }
        var st = stat()
        if Glibc.fstat(fd, &st) != 0 { return nil }
        return (st.st_mode & S_IFMT) == S_IFDIR
    }

    func listDirectory(_ path: String) throws(StoreError) -> [String] {
        guard let dir = Glibc.opendir(path) else {
            throw SystemCalls.error(Glibc.errno, "list directory", path: path)
        }
        defer { Glibc.closedir(dir) }
        var names: [String] = []
        while let entry = Glibc.readdir(dir) {
            let name = withUnsafePointer(to: entry.pointee.d_name) {
                $0.withMemoryRebound(to: CChar.self, capacity: 256) { String(cString: $0) }
            }
            if name != "." && name != ".." { names.append(name) }
        }
        return names
    }
}

/// Makes chosen system calls fail, for tests of failure paths. Thread-safe.
@_spi(Testing) public final class FaultInjector: Sendable {
    public enum Call: Hashable, Sendable, CaseIterable { case open, write, fdatasync, preallocate, truncate, mmap, rename, unlink }

    private struct Rule {
        var errno: Int32
        var skip: Int
        var remaining: Int
    }

    private struct State {
        var rules: [Call: Rule] = [:]
        var shortWrites = false
        var dropSync: (@Sendable (String) -> Bool)?
    }

    private let state = Mutex(State())

    /// Receives every call that changes what is on disk (nil: nothing is recorded).
    public let recorder: SystemCallRecorder?

    public init(recorder: SystemCallRecorder? = nil) {
        self.recorder = recorder
    }

    /// Makes `call` fail with `errno` after `after` successful calls, `times` times (`Int.max` for always).
    public func fail(_ call: Call, errno: Int32, after: Int = 0, times: Int = 1) {
        state.withLock { $0.rules[call] = Rule(errno: errno, skip: after, remaining: times) }
    }

    /// Removes every injected failure (and any dropped sync).
    public func clear() {
        state.withLock { $0 = State() }
    }

    /// Makes fdatasync and fsync of the paths `matching` accepts (a directory's path for a directory sync)
    /// return success without syncing, and go unrecorded: a deliberately broken store, to show that the
    /// crash-state explorer catches a missing sync. Nil restores every sync.
    public func dropSyncs(matching: (@Sendable (String) -> Bool)?) {
        state.withLock { $0.dropSync = matching }
    }

    func dropsSync(of path: String) -> Bool {
        guard let drop = state.withLock({ $0.dropSync }) else { return false }
        return drop(path)
    }

    /// When set, every write transfers at most half of what was asked, exercising the short-write loop.
    public var shortWrites: Bool {
        get { state.withLock { $0.shortWrites } }
        set { state.withLock { $0.shortWrites = newValue } }
    }

    func fault(for call: Call) -> Int32? {
        state.withLock { state in
            guard var rule = state.rules[call], rule.remaining > 0 else { return nil }
            if rule.skip > 0 {
                rule.skip -= 1
                state.rules[call] = rule
                return nil
            }
            rule.remaining -= 1
            state.rules[call] = rule
            return rule.errno
        }
    }
}

/// A system call that changed (or, for `map`, could change) what is on disk, as the store made it.
@_spi(Testing) public enum RecordedCall: Sendable, Equatable {
    /// A successful open(2), with the flags the store passed (O_CREAT may have created the file, O_TRUNC
    /// emptied it; O_DIRECTORY opens a directory for a directory fsync).
    case open(path: String, flags: Int32, fd: Int32)
    case close(fd: Int32)
    /// Bytes that pwrite(2) transferred (one entry per transfer of a short-write loop).
    case write(fd: Int32, offset: UInt64, bytes: [UInt8])
    case truncate(fd: Int32, length: UInt64)
    /// posix_fallocate(fd, 0, length).
    case preallocate(fd: Int32, length: UInt64)
    /// fdatasync (`dataOnly`) or fsync of a file or directory that returned success.
    case sync(fd: Int32, dataOnly: Bool)
    case rename(from: String, to: String)
    case unlink(path: String)
    case makeDirectory(path: String)
    /// A mapping of a file; the store maps read-only, so writes never reach a file through memory.
    case map(fd: Int32, length: Int, writable: Bool)
}

/// Records, in order, every call of the system-call layer that changes disk state (see `RecordedCall`), for
/// tests that rebuild the states a power loss could leave. Thread-safe.
@_spi(Testing) public final class SystemCallRecorder: Sendable {
    private let log = Mutex<[RecordedCall]>([])

    public init() {}

    /// How many calls were recorded so far: a position in `calls`.
    public var count: Int { log.withLock { $0.count } }

    /// Every call recorded so far, in order.
    public var calls: [RecordedCall] { log.withLock { $0 } }

    func record(_ call: RecordedCall) {
        log.withLock { $0.append(call) }
    }
}

/// flock(2); declared directly because the Glibc overlay's `flock` name also denotes `struct flock`.
@_silgen_name("flock") private func sgev_flock(_ fd: Int32, _ operation: Int32) -> Int32
