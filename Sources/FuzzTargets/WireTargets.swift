import EventStore
import EventWire
import GridEvents
import GridFixtures

extension FuzzTargets {
    /// Socket frames: a byte stream through `WireDecoder`, delivered in chunks. First byte: bit 0 set means the rest
    /// is a list of (type u8, length u16, body) that the harness frames with valid checksums, so the fuzzer reaches
    /// the body parsers; clear means the rest is the raw stream. Second byte: the chunk size.
    /// Invariants: every decoded frame re-encodes to a frame that decodes equal; errors are `WireError`s
    /// (typed throws); nothing is decoded after an error.
    public static let wireFrames = FuzzTarget(name: "wire-frames", maxLength: 8192, run: { bytes in
        var input = InputReader(bytes)
        let flags = input.u8()
        let chunk = Int(input.u8()) + 1
        var stream: [UInt8] = []
        if flags & 1 == 1 {
            while !input.isAtEnd {
                let type = input.u8()
                let length = Int(input.u16()) % 4096
                stream += WireCodec.frame(type: type, body: input.take(length))
            }
        } else {
            stream = input.rest()
        }
        var decoder = WireDecoder(maxFrame: 1 << 16)
        var offset = 0
        feeding: while offset < stream.count {
            let end = min(stream.count, offset + chunk)
            decoder.append(stream[offset..<end])
            offset = end
            while true {
                let frame: WireFrame?
                do throws(WireError) {
                    frame = try decoder.next()
                } catch {
                    check(!error.message.isEmpty, "a wire error without a message")
                    break feeding
                }
                guard let frame else { break }
                checkRoundTrip(frame)
            }
        }
    }, seeds: { wireSeeds() })

    /// Batch payloads: the body of a batch frame (producer, first sequence, count, events in the binary form)
    /// through `WireDecoder.parseBody`; first byte 1 decodes the rest as one event (`BinaryCodec.decode`), 2 as the
    /// fields of the event type in the next two bytes (`BinaryCodec.decodeFields`, the concept record payload).
    /// Invariants: decode -> encode -> decode gives the same value and the same bytes.
    public static let wireBatch = FuzzTarget(name: "wire-batch", maxLength: 8192, run: { bytes in
        var input = InputReader(bytes)
        switch input.u8() % 3 {
        case 1:
            let body = input.rest()
            guard let event = try? BinaryCodec.decode(body) else { return }
            let again = BinaryCodec.encode(event)
            check((try? BinaryCodec.decode(again)) == event, "event does not survive encode -> decode")
        case 2:
            let type = EventType(rawValue: input.u16()) ?? .custom
            let body = input.rest()
            guard let kind = try? BinaryCodec.decodeFields(type: type, body[...]) else { return }
            // Bytes, not values: the fields alone are not validated, so a NaN (never equal to itself) may be in them.
            let again = BinaryCodec.encodeFields(kind)
            guard let back = try? BinaryCodec.decodeFields(type: type, again[...]) else {
                fatalError("re-encoded fields of \(type.name) do not decode")
            }
            check(BinaryCodec.encodeFields(back) == again, "fields do not survive a round trip")
        default:
            let body = input.rest()
            guard let frame = try? WireDecoder.parseBody(type: 3, body[...]) else { return }
            checkRoundTrip(frame)
        }
    }, seeds: { batchSeeds() })

    /// A frame re-encoded decodes to itself, and its encoding is stable.
    static func checkRoundTrip(_ frame: WireFrame) {
        let encoded = WireCodec.encode(frame)
        var decoder = WireDecoder(maxFrame: max(WireProtocol.defaultMaxFrame, encoded.count))
        decoder.append(encoded)
        let again: WireFrame?
        do {
            again = try decoder.next()
        } catch {
            fatalError("re-encoded \(frame.typeCode) frame does not decode: \(error)")
        }
        check(again == frame, "frame changes in encode -> decode: \(frame) became \(String(describing: again))")
        check(decoder.bufferedBytes == 0, "re-encoded frame leaves \(decoder.bufferedBytes) bytes")
        check(WireCodec.encode(again!) == encoded, "frame encodes differently twice")
    }

    static func wireSeeds() -> [[UInt8]] {
        let events = SampleGrid.oneOfEach()
        let frames: [WireFrame] = [
            .hello(producerId: "grid-master", client: "grid-events/1"),
            .welcome(server: "grid-eventd", maxFrame: 4 << 20),
            .batch(producerId: "grid-master", firstSequence: 1, events: Array(events.prefix(4))),
            .ack(producerId: "grid-master", durableThrough: 4),
            .error(code: .unsupportedVersion, message: "protocol version 9 is not supported", supportedVersions: [1]),
            .ping(nonce: 7), .pong(nonce: 7),
        ]
        var seeds: [[UInt8]] = []
        // Raw streams: one frame, then a whole conversation, in small and large chunks.
        for f in frames { seeds.append([0, 255] + WireCodec.encode(f)) }
        seeds.append([0, 7] + frames.flatMap { WireCodec.encode($0) })
        // Framed by the harness: type, length, body.
        for f in frames {
            let body = Array(WireCodec.encode(f).dropFirst(WireProtocol.headerSize))
            seeds.append([1, 255, f.typeCode, UInt8(body.count & 0xFF), UInt8(body.count >> 8)] + body)
        }
        return seeds
    }

    static func batchSeeds() -> [[UInt8]] {
        let events = SampleGrid.oneOfEach()
        var seeds: [[UInt8]] = []
        let batch = WireFrame.batch(producerId: "grid-agent-001", firstSequence: 100, events: events)
        seeds.append([0] + Array(WireCodec.encode(batch).dropFirst(WireProtocol.headerSize)))
        var grid = SampleGrid(seed: 3, agents: 4, nodes: 10)
        let small = WireFrame.batch(producerId: "p", firstSequence: 1, events: grid.events(3))
        seeds.append([0] + Array(WireCodec.encode(small).dropFirst(WireProtocol.headerSize)))
        for e in events {
            seeds.append([1] + BinaryCodec.encode(e))
            let code = e.type.rawValue
            seeds.append([2, UInt8(code & 0xFF), UInt8(code >> 8)] + BinaryCodec.encodeFields(e.kind))
        }
        return seeds
    }
}
