import GridBase
import GridEvents

/// Encodes frames: header (magic u16, version u8, type u8, body length u32, checksum u64) then the body.
/// The checksum is XXH3-64 of the body seeded with the first 8 header bytes read as a little-endian u64.
public enum WireCodec {
    public static func encode(_ frame: WireFrame, version: UInt8 = WireProtocol.version) -> [UInt8] {
        var body = BinaryWriter(capacity: 64)
        switch frame {
        case .hello(let producer, let client):
            body.string(producer)
            body.string(client)
        case .welcome(let server, let maxFrame):
            body.string(server)
            body.u32(maxFrame)
        case .batch(let producer, let first, let events):
            body.string(producer)
            body.u64(first)
            body.varint(UInt64(events.count))
            for e in events { BinaryCodec.encode(e, into: &body) }
        case .ack(let producer, let through):
            body.string(producer)
            body.u64(through)
        case .error(let code, let message, let versions):
            body.u16(code.rawValue)
            body.string(String(message.utf8.prefix(4096)) ?? "")
            body.u8(UInt8(versions.count))
            for v in versions { body.u8(v) }
        case .ping(let n), .pong(let n):
            body.u64(n)
        }
        return WireCodec.frame(type: frame.typeCode, body: body.bytes, version: version)
    }

    /// A frame around an already encoded body.
    public static func frame(type: UInt8, body: [UInt8], version: UInt8 = WireProtocol.version) -> [UInt8] {
        var w = BinaryWriter(capacity: WireProtocol.headerSize + body.count)
        w.u16(WireProtocol.magic)
        w.u8(version)
        w.u8(type)
        w.u32(UInt32(body.count))
        let seed = w.bytes.withUnsafeBytes { $0.loadUnaligned(as: UInt64.self) }
        let sum = body.withUnsafeBytes { Hash.bytes($0, seed: UInt64(littleEndian: seed)) }
        w.u64(sum)
        w.raw(body)
        return w.bytes
    }
}

/// Decodes a byte stream into frames. Checks magic, version and the size limit from the 16-byte header before
/// waiting for (or allocating) the body, then the checksum, then the body. Any error is final for the stream.
public struct WireDecoder {
    public let maxFrame: Int
    private var buffer: [UInt8] = []
    private var start = 0

    public init(maxFrame: Int = WireProtocol.defaultMaxFrame) {
        self.maxFrame = maxFrame
    }

    /// Bytes received but not yet decoded.
    public var bufferedBytes: Int { buffer.count - start }

    public mutating func append(_ bytes: some Collection<UInt8>) {
        if start > 0, start == buffer.count {
            buffer.removeAll(keepingCapacity: true)
            start = 0
        } else if start > 1 << 16, start > buffer.count / 2 {
            buffer.removeFirst(start)
            start = 0
        }
        buffer.append(contentsOf: bytes)
    }

    /// The next complete frame, or nil when more bytes are needed.
    public mutating func next() throws(WireError) -> WireFrame? {
        let available = buffer.count - start
        guard available >= WireProtocol.headerSize else {
            // Reject garbage as soon as the first bytes show it.
            if available >= 2, UInt16(buffer[start]) | UInt16(buffer[start + 1]) << 8 != WireProtocol.magic {
                throw WireError(.malformed, "not a grid-events frame (bad magic)")
            }
            return nil
        }
        var header = BinaryReader(buffer[start..<(start + WireProtocol.headerSize)])
        let magic: UInt16
        let version: UInt8
        let type: UInt8
        let length: Int
        let checksum: UInt64
        do throws(EventError) {
            magic = try header.u16()
            version = try header.u8()
            type = try header.u8()
            length = Int(try header.u32())
            checksum = try header.u64()
        } catch {
            throw WireError(.malformed, error.message)
        }
        guard magic == WireProtocol.magic else { throw WireError(.malformed, "not a grid-events frame (bad magic)") }
        guard WireProtocol.supportedVersions.contains(version) else {
            throw WireError(.unsupportedVersion, "protocol version \(version) is not supported; this daemon speaks \(WireProtocol.supportedVersions.map(String.init).joined(separator: ", "))")
        }
        guard length <= maxFrame else {
            throw WireError(.tooLarge, "frame body of \(length) bytes exceeds the limit of \(maxFrame)")
        }
        guard available >= WireProtocol.headerSize + length else { return nil }
        let bodyStart = start + WireProtocol.headerSize
        let body = buffer[bodyStart..<(bodyStart + length)]
        let seed = buffer.withUnsafeBytes { UInt64(littleEndian: $0.loadUnaligned(fromByteOffset: start, as: UInt64.self)) }
        let sum = buffer.withUnsafeBytes { Hash.bytes(UnsafeRawBufferPointer(rebasing: $0[bodyStart..<(bodyStart + length)]), seed: seed) }
        guard sum == checksum else { throw WireError(.checksum, "frame checksum mismatch") }
        start = bodyStart + length
        return try WireDecoder.parseBody(type: type, body)
    }

    /// Parses a frame body of the given type.
    public static func parseBody(type: UInt8, _ body: ArraySlice<UInt8>) throws(WireError) -> WireFrame {
        var r = BinaryReader(body)
        let frame: WireFrame
        do throws(EventError) {
            switch type {
            case 1:
                let producer = try r.string(limit: 256)
                try GridEvent.validateId(producer, what: "producer id")
                frame = .hello(producerId: producer, client: try r.string(limit: 256))
            case 2:
                frame = .welcome(server: try r.string(limit: 256), maxFrame: try r.u32())
            case 3:
                let producer = try r.string(limit: 256)
                try GridEvent.validateId(producer, what: "producer id")
                let first = try r.u64()
                let count = try r.varint()
                // Every event takes at least 5 bytes: a count beyond that is a lie, refused before allocating.
                guard count <= UInt64(r.remaining / 5) else { throw EventError("batch claims \(count) events in \(r.remaining) bytes") }
                guard first < UInt64.max - count else { throw EventError("sequence numbers overflow") }
                var events: [GridEvent] = []
                events.reserveCapacity(Int(count))
                for i in 0..<Int(count) {
                    do throws(EventError) {
                        events.append(try BinaryCodec.decode(&r))
                    } catch {
                        throw EventError("event \(i) of the batch: \(error.message)")
                    }
                }
                frame = .batch(producerId: producer, firstSequence: first, events: events)
            case 4:
                frame = .ack(producerId: try r.string(limit: 256), durableThrough: try r.u64())
            case 5:
                let code = WireErrorCode(rawValue: try r.u16()) ?? .unknown
                let message = try r.string(limit: 4096)
                let n = try r.u8()
                var versions: [UInt8] = []
                for _ in 0..<n { versions.append(try r.u8()) }
                frame = .error(code: code, message: message, supportedVersions: versions)
            case 6: frame = .ping(nonce: try r.u64())
            case 7: frame = .pong(nonce: try r.u64())
            default:
                throw EventError("unknown frame type \(type)")
            }
        } catch {
            let code: WireErrorCode = (type == 3 && error.message.hasPrefix("event ")) ? .invalidEvent : .malformed
            throw WireError(code, error.message)
        }
        guard r.isAtEnd else { throw WireError(.malformed, "\(r.remaining) trailing bytes in frame type \(type)") }
        return frame
    }
}
