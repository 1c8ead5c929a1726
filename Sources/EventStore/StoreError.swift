#if canImport(Glibc)
import Glibc
#endif

/// An error from the event store: a code a program can switch on, a message a person can act on, and the
/// context (path, segment, offset) where it happened.
public struct StoreError: Error, Sendable, CustomStringConvertible, Equatable {
    /// What kind of failure this is.
    public enum Code: String, Sendable, Equatable {
        /// The data directory is held by another process (see `message` for its pid).
        case locked
        /// The caller passed something the store refuses (empty batch, oversized record, invalid id, ...).
        case invalidArgument
        /// A batch is larger than a segment can hold.
        case batchTooLarge
        /// The file system is full (ENOSPC/EDQUOT); nothing from the failed call was acknowledged.
        case noSpace
        /// A system call failed with an I/O error.
        case io
        /// fdatasync/fsync failed; the store has failed closed and acknowledges nothing more until reopened.
        case syncFailed
        /// A previous sync failure closed the store for writing.
        case failedClosed
        /// A file's bytes do not match their checksum or format.
        case corrupt
        /// The store was opened read-only or has been closed.
        case notWritable
        /// The store has been closed.
        case closed
    }

    public var code: Code
    public var message: String
    public var path: String?
    public var segment: UInt64?
    public var offset: UInt64?
    /// The errno of the failed system call, when there was one.
    public var errno: Int32?

    public init(
        _ code: Code, _ message: String, path: String? = nil, segment: UInt64? = nil, offset: UInt64? = nil,
        errno: Int32? = nil
    ) {
        self.code = code
        self.message = message
        self.path = path
        self.segment = segment
        self.offset = offset
        self.errno = errno
    }

    public var description: String {
        var text = "\(code.rawValue): \(message)"
        var context: [String] = []
        if let path { context.append("path \(path)") }
        if let segment { context.append("segment \(segment)") }
        if let offset { context.append("offset \(offset)") }
        if let errno { context.append("errno \(errno) (\(String(cString: strerror(errno))))") }
        if !context.isEmpty { text += " [" + context.joined(separator: ", ") + "]" }
        return text
    }

    static func invalid(_ message: String) -> StoreError { StoreError(.invalidArgument, message) }
}
