import Foundation

/// The one directory an agent keeps its nodes' data under (`storage_root` in the agent's config). A spawn's storage
/// path is placed with `place(_:)`: a relative path lands below the root, and a path that lies outside it, climbs
/// out of it with `..`, or leads out of it through a symlink is refused with a message that says which.
public struct StorageRoot: Sendable {
    /// A storage path the agent will not use, and why.
    public struct Refusal: Error, CustomStringConvertible, Sendable {
        public var description: String
    }

    /// The root as configured, made absolute against the working directory (`..` and `.` removed).
    public let configured: String
    /// The root with every symlink resolved: what storage paths are checked against.
    public let real: String

    /// Makes `path` absolute, creates it (mode 0750) when missing and resolves its symlinks.
    /// - Throws: `Refusal` when it cannot be created or resolved.
    public init(_ path: String) throws(Refusal) {
        guard !path.isEmpty else { throw Refusal(description: "storage_root is empty") }
        let absolute = path.hasPrefix("/") ? path : FileManager.default.currentDirectoryPath + "/" + path
        configured = Self.text(Self.components(absolute).parts)
        do {
            try FileManager.default.createDirectory(atPath: configured, withIntermediateDirectories: true,
                                                    attributes: [.posixPermissions: 0o750])
        } catch {
            throw Refusal(description: "storage_root \(configured) cannot be created: \((error as NSError).localizedDescription)")
        }
        guard let resolved = Self.realPath(configured) else {
            throw Refusal(description: "storage_root \(configured) cannot be resolved: \(String(cString: strerror(errno)))")
        }
        real = resolved
    }

    /// The directory a node asking for `requested` gets, created when missing: a relative path is taken below the
    /// root; the answer has every symlink resolved and lies strictly below the root. Missing directories are
    /// created one at a time from the root down (mode 0750) without following a symlink, so a symlink planted
    /// meanwhile is refused rather than followed.
    /// - Throws: `Refusal` for an empty path, one with control characters, the root itself, a path outside the
    ///   root, one whose `..` climbs out of it, one that leads out through a symlink, or one that cannot be created.
    public func place(_ requested: String) throws(Refusal) -> String {
        guard !requested.isEmpty, !requested.unicodeScalars.contains(where: { $0.value < 0x20 || $0.value == 0x7f }) else {
            throw Refusal(description: "storage path \(requested.debugDescription) must be a non-empty path without control characters")
        }
        let startsInside = !requested.hasPrefix("/") || within(requested, configured) || within(requested, real)
        let absolute = requested.hasPrefix("/") ? requested : configured + "/" + requested
        let (parts, climbs) = Self.components(absolute)
        let lexical = Self.text(parts)
        // The nearest ancestor that exists, with its symlinks resolved, then the components still to create.
        var existing = parts.count
        var base: String?
        while existing >= 0 {
            let prefix = Self.text(Array(parts[0..<existing]))
            if let resolved = Self.realPath(prefix) {
                base = resolved
                break
            }
            existing -= 1
        }
        guard let base else { throw Refusal(description: "storage path \(requested) cannot be resolved") }
        let candidate = Self.text(Self.components(base).parts + parts[existing...])
        if candidate == real { throw Refusal(description: "storage path \(requested) is storage_root \(configured) itself; name a directory below it") }
        guard within(candidate, real) else {
            if within(lexical, configured) || within(lexical, real), let link = escapingLink(parts) {
                throw Refusal(description: "storage path \(requested) leads outside storage_root \(configured) through the symlink \(link)")
            }
            if climbs && startsInside {
                throw Refusal(description: "storage path \(requested) climbs out of storage_root \(configured) with '..'")
            }
            let resolved = candidate == requested ? "" : " (it resolves to \(candidate))"
            throw Refusal(description: "storage path \(requested) is outside storage_root \(configured)\(resolved)")
        }
        try create(Self.components(String(candidate.dropFirst(real.count))).parts, requested: requested)
        return candidate
    }

    /// Whether `path` is `root` or lies below it, as text.
    func within(_ path: String, _ root: String) -> Bool {
        path == root || path.hasPrefix(root == "/" ? "/" : root + "/")
    }

    /// The first symlink below the root on the way down `parts` whose target is not below the root, as
    /// `link -> target`.
    func escapingLink(_ parts: [String]) -> String? {
        for n in parts.indices {
            let prefix = Self.text(Array(parts[0...n]))
            guard (within(prefix, configured) && prefix != configured) || (within(prefix, real) && prefix != real) else { continue }
            var st = stat()
            guard lstat(prefix, &st) == 0 else { return nil }
            guard st.st_mode & S_IFMT == S_IFLNK else { continue }
            if let target = Self.realPath(prefix), within(target, real), target != real { continue }
            let shown = (try? FileManager.default.destinationOfSymbolicLink(atPath: prefix)) ?? "?"
            return "\(prefix) -> \(shown)"
        }
        return nil
    }

    /// Walks from the root down `below`, opening each directory with O_NOFOLLOW and creating the missing ones.
    func create(_ below: [String], requested: String) throws(Refusal) {
        var fd = open(real, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard fd >= 0 else { throw Refusal(description: "storage_root \(configured) cannot be opened: \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        var path = real
        for name in below {
            path += "/" + name
            var next = openat(fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
            if next < 0, errno == ENOENT {
                if mkdirat(fd, name, 0o750) != 0, errno != EEXIST {
                    throw Refusal(description: "storage path \(requested): cannot create \(path): \(String(cString: strerror(errno)))")
                }
                next = openat(fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
            }
            guard next >= 0 else {
                let failure = errno
                var st = stat()
                let link = fstatat(fd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 && st.st_mode & S_IFMT == S_IFLNK
                let reason = link || failure == ELOOP ? "is a symlink that leads nowhere (or was planted after the check); refused"
                    : failure == ENOTDIR ? "is not a directory" : String(cString: strerror(failure))
                throw Refusal(description: "storage path \(requested): \(path) \(reason)")
            }
            close(fd)
            fd = next
        }
    }

    /// `path`'s components with `.` removed and `..` applied as text, and whether a `..` was seen.
    static func components(_ path: String) -> (parts: [String], climbs: Bool) {
        var parts: [String] = []
        var climbs = false
        for c in path.split(separator: "/", omittingEmptySubsequences: true) {
            if c == "." { continue }
            if c == ".." {
                climbs = true
                if !parts.isEmpty { parts.removeLast() }
                continue
            }
            parts.append(String(c))
        }
        return (parts, climbs)
    }

    static func text<C: Collection<String>>(_ parts: C) -> String { "/" + parts.joined(separator: "/") }

    /// realpath(3); nil with errno set when it fails.
    static func realPath(_ path: String) -> String? {
        guard let p = realpath(path, nil) else { return nil }
        defer { free(p) }
        return String(cString: p)
    }
}
