import GridEvents

/// Protocol versions this build speaks.
public enum WireProtocol {
    public static let version: UInt8 = 1
    public static let supportedVersions: [UInt8] = [1]
    /// Default largest frame body a peer accepts (4 MiB).
    public static let defaultMaxFrame = 4 << 20
    /// Frame header size.
    public static let headerSize = 16
    /// The two magic bytes that start every frame: 0xA5 0xE7 (not ASCII, so text protocols are caught at once).
    public static let magic: UInt16 = 0xE7A5
}

/// The frames of the grid-events socket protocol. See docs/FORMAT.md, "Socket protocol".
public enum WireFrame: Sendable, Equatable {
    /// Client -> daemon, first frame: who is producing.
    case hello(producerId: String, client: String)
    /// Daemon -> client, answer to hello.
    case welcome(server: String, maxFrame: UInt32)
    /// Client -> daemon: events with consecutive sequence numbers starting at `firstSequence`.
    case batch(producerId: String, firstSequence: UInt64, events: [GridEvent])
    /// Daemon -> client: every event of `producerId` up to and including `durableThrough` is durable.
    case ack(producerId: String, durableThrough: UInt64)
    /// Either way: something went wrong. `supportedVersions` is filled for version errors.
    case error(code: WireErrorCode, message: String, supportedVersions: [UInt8])
    case ping(nonce: UInt64)
    case pong(nonce: UInt64)

    public var typeCode: UInt8 {
        switch self {
        case .hello: return 1
        case .welcome: return 2
        case .batch: return 3
        case .ack: return 4
        case .error: return 5
        case .ping: return 6
        case .pong: return 7
        }
    }
}

/// Error codes carried by error frames.
public enum WireErrorCode: UInt16, Sendable, Equatable {
    case malformed = 1
    case checksum = 2
    case tooLarge = 3
    case unsupportedVersion = 4
    case permissionDenied = 5
    case helloRequired = 6
    case invalidEvent = 7
    /// The store refused the write (no space, failed closed); nothing of the batch is acknowledged. Retry later.
    case storeUnavailable = 8
    case shuttingDown = 9
    case timeout = 10
    case tooManyConnections = 11
    case unknown = 0xFFFF
}

/// A protocol error found while decoding: what to send back before closing.
public struct WireError: Error, Sendable, Equatable, CustomStringConvertible {
    public var code: WireErrorCode
    public var message: String
    public init(_ code: WireErrorCode, _ message: String) {
        self.code = code
        self.message = message
    }
    public var description: String { "\(code) (\(code.rawValue)): \(message)" }

    /// The error frame that reports this error to the peer.
    public var frame: WireFrame {
        .error(code: code, message: message, supportedVersions: code == .unsupportedVersion ? WireProtocol.supportedVersions : [])
    }
}
