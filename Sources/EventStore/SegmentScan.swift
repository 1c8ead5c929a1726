#if canImport(Glibc)
import Glibc
#endif

/// One valid frame found in a segment.
public struct FrameInfo: Sendable, Equatable {
    public enum Kind: String, Sendable { case batch, seal }
    public var offset: UInt64
    public var sequence: UInt64
    public var kind: Kind
    public var recordCount: Int
    public var payloadLength: Int
    /// Bytes the frame occupies on disk, header and padding included.
    public var size: Int
    public var concepts: Int
    public var adjacency: Int
    /// Smallest and largest record timestamp in the frame (0 when it has none).
    public var minTimestamp: Int64
    public var maxTimestamp: Int64
}

/// A region of a segment that could not be read as frames and was skipped.
public struct Damage: Sendable, Equatable, CustomStringConvertible {
    public var segment: UInt64
    public var offset: UInt64
    public var length: UInt64
    public var reason: String
    public var description: String { "segment \(segment) offset \(offset): \(reason) (\(length) bytes skipped)" }
}

/// What a scan of one segment's bytes found.
struct SegmentScanResult {
    var frames: [FrameInfo] = []
    /// Bad regions followed by good frames: reported and skipped.
    var damage: [Damage] = []
    /// Where valid data ends (after the last good frame).
    var end: Int
    /// A bad region at the end with nothing valid after it: a torn tail, truncated on recovery.
    var tornTail: Damage?
    var sealed = false
}

enum SegmentScanner {
    /// Checks for a complete, valid frame at `pos`; returns its info or why it is not one.
    static func frame(at pos: Int, in buf: UnsafeRawBufferPointer, segment: UInt64) -> Result<FrameInfo, FormatProblem> {
        guard pos + Format.frameHeaderSize <= buf.count else { return .failure(FormatProblem("frame header cut short")) }
        guard buf.u32(pos) == Format.frameMagic else { return .failure(FormatProblem("no frame magic")) }
        let payloadLength = Int(buf.u32(pos + 4))
        guard payloadLength <= buf.count - pos - Format.frameHeaderSize else {
            return .failure(FormatProblem("frame length \(payloadLength) runs past the end of the segment"))
        }
        let payload = buf.slice(pos + Format.frameHeaderSize, payloadLength)
        let sum = Format.frameChecksum(header24: buf.slice(pos, 24), payloadHash: Hash.bytes(payload))
        guard sum == buf.u64(pos + 24) else { return .failure(FormatProblem("frame checksum mismatch")) }
        let kindCode = buf.u16(pos + 20)
        let recordCount = Int(buf.u32(pos + 16))
        var info = FrameInfo(
            offset: UInt64(pos), sequence: buf.u64(pos + 8), kind: .batch, recordCount: recordCount,
            payloadLength: payloadLength, size: Format.aligned(Format.frameHeaderSize + payloadLength),
            concepts: 0, adjacency: 0, minTimestamp: 0, maxTimestamp: 0)
        switch kindCode {
        case Format.frameKindSeal:
            guard payloadLength == Format.sealPayloadSize else { return .failure(FormatProblem("seal frame of wrong size")) }
            info.kind = .seal
            return .success(info)
        case Format.frameKindBatch:
            break
        default:
            return .failure(FormatProblem("unknown frame kind \(kindCode)"))
        }
        var it = RecordIterator(payload)
        var minTs = Int64.max
        var maxTs = Int64.min
        var n = 0
        while let r = it.next() {
            n += 1
            let ts = payload.i64(r.offset + 24)
            if ts < minTs { minTs = ts }
            if ts > maxTs { maxTs = ts }
            if r.kind == Format.recordKindConcept {
                let view = ConceptView(bytes: payload.slice(r.offset, r.length))
                guard view.isWellFormed else { return .failure(FormatProblem("concept record malformed inside frame")) }
                info.concepts += 1
            } else {
                info.adjacency += 1
            }
        }
        if let error = it.error { return .failure(FormatProblem(error)) }
        guard n == recordCount, n > 0 else { return .failure(FormatProblem("frame claims \(recordCount) records, holds \(n)")) }
        info.minTimestamp = minTs
        info.maxTimestamp = maxTs
        return .success(info)
    }

    /// The offset of the next valid frame at or after `from`, if any.
    static func nextValidFrame(after from: Int, in buf: UnsafeRawBufferPointer, segment: UInt64) -> Int? {
        var pos = Format.aligned(from)
        guard let base = buf.baseAddress else { return nil }
        while pos + Format.frameHeaderSize <= buf.count {
            // Jump to the next candidate magic byte with memchr: fast over zero fill.
            guard let hit = memchr(base + pos, 0x53, buf.count - pos) else { return nil }
            let at = UnsafeRawPointer(hit) - base
            let candidate = Format.aligned(at)
            if candidate != at {
                pos = candidate
                continue
            }
            if case .success = frame(at: at, in: buf, segment: segment) { return at }
            pos = at + Format.frameAlignment
        }
        return nil
    }

    /// True when the 32 bytes at `pos` are all zero (the preallocated, never-written part of a segment).
    static func isZeroHeader(at pos: Int, in buf: UnsafeRawBufferPointer) -> Bool {
        buf.u64(pos) == 0 && buf.u64(pos + 8) == 0 && buf.u64(pos + 16) == 0 && buf.u64(pos + 24) == 0
    }

    /// Scans a whole segment (header already checked). `onFrame` sees each valid batch frame and its payload.
    static func scan(
        _ buf: UnsafeRawBufferPointer, segment: UInt64,
        onFrame: (FrameInfo, UnsafeRawBufferPointer) -> Void = { _, _ in }
    ) -> SegmentScanResult {
        var result = SegmentScanResult(end: Format.segmentHeaderSize)
        var pos = Format.segmentHeaderSize
        while pos + Format.frameHeaderSize <= buf.count {
            let problem: String
            switch frame(at: pos, in: buf, segment: segment) {
            case .success(let info):
                result.frames.append(info)
                if info.kind == .seal {
                    result.sealed = true
                    result.end = pos + info.size
                    return result
                }
                onFrame(info, buf.slice(pos + Format.frameHeaderSize, info.payloadLength))
                pos += info.size
                result.end = pos
                continue
            case .failure(let reason):
                problem = isZeroHeader(at: pos, in: buf) ? "zero-filled gap" : reason.reason
            }
            if let next = nextValidFrame(after: pos + Format.frameAlignment, in: buf, segment: segment) {
                result.damage.append(
                    Damage(segment: segment, offset: UInt64(pos), length: UInt64(next - pos), reason: problem))
                pos = next
                continue
            }
            if problem != "zero-filled gap" || !isZeroRange(buf, from: pos) {
                result.tornTail = Damage(
                    segment: segment, offset: UInt64(pos), length: UInt64(usedLength(buf, from: pos) - pos),
                    reason: problem == "zero-filled gap" ? "stray bytes after the last frame" : problem)
            }
            return result
        }
        // A file cut inside a frame header: the bytes left are a torn tail too.
        if pos < buf.count, !isZeroRange(buf, from: pos) {
            result.tornTail = Damage(
                segment: segment, offset: UInt64(pos), length: UInt64(buf.count - pos),
                reason: "file ends inside a frame header")
        }
        return result
    }

    /// True when every byte from `from` to the end is zero.
    static func isZeroRange(_ buf: UnsafeRawBufferPointer, from: Int) -> Bool {
        usedLength(buf, from: from) == from
    }

    /// One past the last non-zero byte at or after `from` (or `from` when all are zero).
    static func usedLength(_ buf: UnsafeRawBufferPointer, from: Int) -> Int {
        var end = buf.count
        // Walk back over zero words; preallocated space is mostly zero so this stops quickly near real data.
        while end - 8 >= from, buf.u64(end - 8) == 0 { end -= 8 }
        while end > from, buf[end - 1] == 0 { end -= 1 }
        return max(end, from)
    }
}
