import Foundation
#if canImport(Glibc)
import Glibc
#endif
@_spi(Testing) import EventStore

/// The crash model's unit of write-back: a file's 4 KiB-aligned range.
let modelPageSize = 4096
/// The unit a torn page is usually cut at (a disk sector); some cuts fall at any byte.
let modelSectorSize = 512

/// A directory tree with file contents: what a crash leaves on disk, or what a directory holds now.
/// Paths are relative to the recording root; `directories` lists every directory below it.
struct TreeState: Equatable {
    var directories: Set<String> = []
    var files: [String: [UInt8]] = [:]

    /// A digest for telling states apart (equal states always collide; different ones almost never).
    var digest: Int {
        var h = Hasher()
        for d in directories.sorted() { h.combine(d) }
        for (name, bytes) in files.sorted(by: { $0.key < $1.key }) {
            h.combine(name)
            h.combine(bytes.count)
            bytes.withUnsafeBytes { h.combine(bytes: $0) }
        }
        return h.finalize()
    }

    /// The highest segment id among the data directory's segment files (`data/seg-N.sgs` or `.sgc`): the
    /// segment that was active at the crash.
    var lastSegment: UInt64? {
        files.keys.compactMap { name -> UInt64? in
            guard name.hasPrefix("data/seg-"), name.hasSuffix(".sgs") || name.hasSuffix(".sgc") else { return nil }
            return UInt64(name.dropFirst("data/seg-".count).dropLast(4))
        }.max()
    }

    /// Reads every directory and regular file below `root`.
    static func read(from root: String) throws -> TreeState {
        var state = TreeState()
        func walk(_ relative: String) throws {
            let path = relative.isEmpty ? root : root + "/" + relative
            for name in try FileManager.default.contentsOfDirectory(atPath: path).sorted() {
                let rel = relative.isEmpty ? name : relative + "/" + name
                var isDir: ObjCBool = false
                _ = FileManager.default.fileExists(atPath: root + "/" + rel, isDirectory: &isDir)
                if isDir.boolValue {
                    state.directories.insert(rel)
                    try walk(rel)
                } else {
                    state.files[rel] = Array(try Data(contentsOf: URL(fileURLWithPath: root + "/" + rel)))
                }
            }
        }
        try walk("")
        return state
    }

    /// Writes the tree below `root` (which must exist and be empty).
    func write(to root: String) throws {
        for d in directories.sorted() {
            guard mkdir(root + "/" + d, 0o755) == 0 else { throw ModelError("mkdir \(d): errno \(errno)") }
        }
        for (name, bytes) in files {
            let fd = Glibc.open(root + "/" + name, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
            guard fd >= 0 else { throw ModelError("create \(name): errno \(errno)") }
            defer { Glibc.close(fd) }
            var done = 0
            while done < bytes.count {
                let n = bytes.withUnsafeBytes { Glibc.pwrite(fd, $0.baseAddress! + done, bytes.count - done, off_t(done)) }
                guard n > 0 else { throw ModelError("write \(name): errno \(errno)") }
                done += n
            }
        }
    }
}

struct ModelError: Error, CustomStringConvertible {
    let description: String
    init(_ d: String) { description = d }
}

/// What changes one file's bytes or size.
enum FileOp {
    case write(offset: Int, bytes: [UInt8])
    /// ftruncate: exactly this size.
    case resize(Int)
    /// posix_fallocate from 0: at least this size (new bytes read as zero).
    case extend(Int)

    func apply(to content: inout [UInt8]) {
        switch self {
        case .write(let offset, let bytes):
            if content.count < offset + bytes.count {
                content.append(contentsOf: repeatElement(0, count: offset + bytes.count - content.count))
            }
            content.replaceSubrange(offset..<(offset + bytes.count), with: bytes)
        case .resize(let n):
            if n < content.count {
                content.removeLast(content.count - n)
            } else {
                content.append(contentsOf: repeatElement(0, count: n - content.count))
            }
        case .extend(let n):
            if n > content.count { content.append(contentsOf: repeatElement(0, count: n - content.count)) }
        }
    }

    /// The pages whose bytes this op changes (or may change) on a file of `size` bytes.
    func pages(size: Int) -> Range<Int> {
        func span(_ a: Int, _ b: Int) -> Range<Int> { b <= a ? 0..<0 : (a / modelPageSize)..<((b - 1) / modelPageSize + 1) }
        switch self {
        case .write(let offset, let bytes): return span(offset, offset + bytes.count)
        case .resize(let n): return span(min(n, size), max(n, size))
        case .extend(let n): return span(size, n)
        }
    }
}

/// A directory entry names a file or a directory of the model.
enum Entry: Hashable {
    case file(Int)
    case directory(Int)
}

/// What changes a directory's entries.
enum DirectoryOp {
    case link(String, Entry)
    case unlink(String, Entry)
    /// Atomic: the target names the entry, and the source no longer does.
    case rename(String, String, Entry)

    func apply(to names: inout [String: Entry]) {
        switch self {
        case .link(let name, let e): names[name] = e
        case .unlink(let name, let e): if names[name] == e { names[name] = nil }
        case .rename(let from, let to, let e):
            names[to] = e
            if names[from] == e { names[from] = nil }
        }
    }
}

final class ModelFile {
    /// Bytes that survive any crash (as of the last fdatasync/fsync of the file).
    var durable: [UInt8]
    /// Bytes as the running process sees them (the page cache).
    var current: [UInt8]
    /// What changed since the last sync, in order.
    var pending: [FileOp] = []

    init(_ content: [UInt8]) {
        durable = content
        current = content
    }

    func apply(_ op: FileOp) {
        op.apply(to: &current)
        pending.append(op)
    }

    func sync() {
        durable = current
        pending = []
    }
}

final class ModelDirectory {
    var durable: [String: Entry]
    var current: [String: Entry]
    var pending: [DirectoryOp] = []

    init(_ names: [String: Entry] = [:]) {
        durable = names
        current = names
    }

    func apply(_ op: DirectoryOp) {
        op.apply(to: &current)
        pending.append(op)
    }

    func sync() {
        durable = current
        pending = []
    }
}

/// How a crash state is drawn from what is pending.
enum CrashChoice {
    /// Only what was synced: every unsynced page, size and directory operation is lost.
    case durableOnly
    /// Everything the process wrote reached the disk (what SIGKILL leaves: the page cache survives).
    case everything
    /// A random mix, drawn from the generator: per page one of its versions since the last sync (possibly torn
    /// between two versions), per file one of its sizes since the last sync, per directory a subset (or a
    /// prefix) of its operations since the last directory sync.
    case random(UInt64)
    /// Only what was synced, plus the pending directory operations `apply` picks (a regression's exact state).
    case durablePlus(directoryOps: (DirectoryOp) -> Bool)
}

/// A model of what the disk holds, rebuilt from the calls the store recorded (`SystemCallRecorder`), with what
/// is durable kept apart from what is only written. See `CrashStateTests` and docs/FORMAT.md ("Crash model").
final class FileSystemModel {
    let root: String
    private var files: [Int: ModelFile] = [:]
    private var directories: [Int: ModelDirectory] = [:]
    private var directoryIds: [String: Int] = [:]
    private var descriptors: [Int32: Entry] = [:]
    private var nextId = 0

    /// A model whose baseline (everything durable) is `baseline`, below the absolute path `root`.
    init(root: String, baseline: TreeState) {
        self.root = root
        let rootId = newId()
        directories[rootId] = ModelDirectory()
        directoryIds[root] = rootId
        for d in baseline.directories.sorted() {  // parents sort before their children
            let id = newId()
            directories[id] = ModelDirectory()
            directoryIds[root + "/" + d] = id
            let (parent, name) = split(root + "/" + d)
            directories[directoryIds[parent]!]!.durable[name] = .directory(id)
        }
        for (path, bytes) in baseline.files {
            let id = newId()
            files[id] = ModelFile(bytes)
            let (parent, name) = split(root + "/" + path)
            directories[directoryIds[parent]!]!.durable[name] = .file(id)
        }
        for d in directories.values { d.current = d.durable }
    }

    private func newId() -> Int {
        nextId += 1
        return nextId
    }

    private func split(_ path: String) -> (String, String) {
        let slash = path.lastIndex(of: "/")!
        return (String(path[..<slash]), String(path[path.index(after: slash)...]))
    }

    private func directory(containing path: String) throws -> (ModelDirectory, String) {
        let (parent, name) = split(path)
        guard let id = directoryIds[parent], let d = directories[id] else {
            throw ModelError("\(path) is outside the recorded tree")
        }
        return (d, name)
    }

    private func file(_ fd: Int32) throws -> ModelFile {
        guard case .file(let id)? = descriptors[fd] else { throw ModelError("fd \(fd) is not an open file") }
        return files[id]!
    }

    /// Whether anything written is not durable yet.
    var hasPending: Bool {
        files.values.contains { !$0.pending.isEmpty } || directories.values.contains { !$0.pending.isEmpty }
    }

    /// Open descriptors (none once the store is closed).
    var openDescriptors: Int { descriptors.count }

    /// Applies one recorded call.
    func replay(_ call: RecordedCall) throws {
        switch call {
        case .open(let path, let flags, let fd):
            if flags & O_DIRECTORY != 0 {
                guard let id = directoryIds[path] else { throw ModelError("directory \(path) is not in the model") }
                descriptors[fd] = .directory(id)
                return
            }
            let (d, name) = try directory(containing: path)
            switch d.current[name] {
            case .file(let id)?:
                if flags & O_TRUNC != 0, !files[id]!.current.isEmpty { files[id]!.apply(.resize(0)) }
                descriptors[fd] = .file(id)
            case .directory(let id)?:
                descriptors[fd] = .directory(id)
            case nil:
                guard flags & O_CREAT != 0 else { throw ModelError("open of missing \(path) succeeded") }
                let id = newId()
                files[id] = ModelFile([])
                d.apply(.link(name, .file(id)))
                descriptors[fd] = .file(id)
            }
        case .close(let fd):
            descriptors[fd] = nil
        case .write(let fd, let offset, let bytes):
            try file(fd).apply(.write(offset: Int(offset), bytes: bytes))
        case .truncate(let fd, let length):
            try file(fd).apply(.resize(Int(length)))
        case .preallocate(let fd, let length):
            try file(fd).apply(.extend(Int(length)))
        case .sync(let fd, _):
            // fdatasync and fsync alike: the file's bytes and size (what reading them back needs), not its name.
            switch descriptors[fd] {
            case .file(let id)?: files[id]!.sync()
            case .directory(let id)?: directories[id]!.sync()
            case nil: throw ModelError("sync of unknown fd \(fd)")
            }
        case .rename(let from, let to):
            let (d, fromName) = try directory(containing: from)
            let (d2, toName) = try directory(containing: to)
            guard d === d2 else { throw ModelError("rename across directories is not modelled: \(from) -> \(to)") }
            guard let e = d.current[fromName] else { throw ModelError("rename of missing \(from) succeeded") }
            d.apply(.rename(fromName, toName, e))
        case .unlink(let path):
            let (d, name) = try directory(containing: path)
            guard let e = d.current[name] else { throw ModelError("unlink of missing \(path) succeeded") }
            d.apply(.unlink(name, e))
        case .makeDirectory(let path):
            let (d, name) = try directory(containing: path)
            let id = newId()
            directories[id] = ModelDirectory()
            directoryIds[path] = id
            d.apply(.link(name, .directory(id)))
        case .map(_, _, let writable):
            if writable { throw ModelError("a writable mapping: writes through memory are not modelled") }
        }
    }

    /// A state the disk could hold if power were lost now.
    func crashState(_ choice: CrashChoice) -> TreeState {
        var rng: SplitMix64?
        var pageNew = 0.5
        var tornRate = 0.0
        var directoryRate = 0.5
        var prefixOnly = false
        if case .random(let seed) = choice {
            var r = SplitMix64(seed: seed)
            pageNew = [0.2, 0.5, 0.8][Int(r.next() % 3)]
            tornRate = [0.0, 0.15, 0.4][Int(r.next() % 3)]
            directoryRate = [0.25, 0.5, 0.75][Int(r.next() % 3)]
            prefixOnly = r.next() % 2 == 0  // ext4's journal commits metadata in order: a prefix
            rng = r
        }
        var state = TreeState()
        var contents: [Int: [UInt8]] = [:]
        func names(_ d: ModelDirectory) -> [String: Entry] {
            switch choice {
            case .durableOnly: return d.durable
            case .everything: return d.current
            case .durablePlus(let pick):
                var out = d.durable
                for op in d.pending where pick(op) { op.apply(to: &out) }
                return out
            case .random:
                var out = d.durable
                if prefixOnly {
                    let n = Int(rng!.next() % UInt64(d.pending.count + 1))
                    for op in d.pending.prefix(n) { op.apply(to: &out) }
                } else {
                    for op in d.pending where rng!.chance(directoryRate) { op.apply(to: &out) }
                }
                return out
            }
        }
        func walk(_ id: Int, _ relative: String) {
            for (name, entry) in names(directories[id]!).sorted(by: { $0.key < $1.key }) {
                let rel = relative.isEmpty ? name : relative + "/" + name
                switch entry {
                case .directory(let child):
                    state.directories.insert(rel)
                    walk(child, rel)
                case .file(let f):
                    if contents[f] == nil {
                        contents[f] = content(files[f]!, choice, &rng, pageNew: pageNew, tornRate: tornRate)
                    }
                    state.files[rel] = contents[f]!
                }
            }
        }
        walk(directoryIds[root]!, "")
        return state
    }

    /// The bytes of `f` after a crash: per page one of its versions since the last sync, maybe torn.
    private func content(
        _ f: ModelFile, _ choice: CrashChoice, _ rng: inout SplitMix64?, pageNew: Double, tornRate: Double
    ) -> [UInt8] {
        switch choice {
        case .durableOnly, .durablePlus: return f.durable
        case .everything: return f.current
        case .random: break
        }
        if f.pending.isEmpty { return f.durable }
        // Replay what is pending from the durable bytes, keeping each page's version after every op that
        // touched it (version 0 is the durable page) and the file's size after every op.
        var bytes = f.durable
        var versions: [Int: [[UInt8]]] = [:]
        var sizes = [bytes.count]
        func page(_ p: Int) -> [UInt8] {
            let start = p * modelPageSize
            var out = [UInt8](repeating: 0, count: modelPageSize)
            if start < bytes.count {
                let n = min(modelPageSize, bytes.count - start)
                out.replaceSubrange(0..<n, with: bytes[start..<(start + n)])
            }
            return out
        }
        for op in f.pending {
            let touched = op.pages(size: bytes.count)
            for p in touched where versions[p] == nil { versions[p] = [page(p)] }
            op.apply(to: &bytes)
            for p in touched { versions[p]!.append(page(p)) }
            sizes.append(bytes.count)
        }
        let size = rng!.chance(pageNew) ? sizes[Int(rng!.next() % UInt64(sizes.count))] : sizes[0]
        var out = f.durable
        FileOp.resize(size).apply(to: &out)
        for (p, vs) in versions.sorted(by: { $0.key < $1.key }) {
            let start = p * modelPageSize
            guard start < size else { continue }
            var chosen = rng!.chance(pageNew) ? vs[1 + Int(rng!.next() % UInt64(vs.count - 1))] : vs[0]
            if rng!.chance(tornRate) {
                // Torn: part of the page from one version, the rest from another, cut at a sector (or any byte).
                let other = vs[Int(rng!.next() % UInt64(vs.count))]
                let cut = rng!.chance(0.75)
                    ? modelSectorSize * (1 + Int(rng!.next() % UInt64(modelPageSize / modelSectorSize - 1)))
                    : 1 + Int(rng!.next() % UInt64(modelPageSize - 1))
                if rng!.chance(0.5) {
                    chosen.replaceSubrange(cut..<modelPageSize, with: other[cut..<modelPageSize])
                } else {
                    chosen.replaceSubrange(0..<cut, with: other[0..<cut])
                }
            }
            let n = min(modelPageSize, size - start)
            out.replaceSubrange(start..<(start + n), with: chosen[0..<n])
        }
        return out
    }
}

/// A small, fast, seedable generator (SplitMix64), so every sampled state can be drawn again from its seed.
struct SplitMix64 {
    private var state: UInt64
    init(seed: UInt64) { state = seed }

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    mutating func chance(_ p: Double) -> Bool { Double(next() >> 11) / Double(1 << 53) < p }
}
