import EventRecords
import EventStore
import GridEvents
import GridFixtures

/// Segment file layout constants the harness needs to build files and repair checksums (docs/FORMAT.md,
/// "Segment files"; EventStore keeps its own copy internal).
enum SegmentLayout {
    static let headerSize = 64
    static let frameHeaderSize = 32
    static let frameMagic: UInt32 = 0x5247_4653
    static let capacity: UInt64 = 64 << 10
    static let fileName = "seg-0000000001.sgs"

    static func aligned(_ n: Int) -> Int { (n + 7) & ~7 }

    /// A valid 64-byte header for segment 1.
    static func header(capacity: UInt64 = capacity) -> [UInt8] {
        var h = Array("SGEVSEG1".utf8)
        h += [1, 0, 0, 0, 64, 0, 0, 0]
        h += [UInt8](repeating: 0, count: 48)
        h.put(UInt64(1), at: 16)
        h.put(UInt64(1_764_374_400_000_000), at: 24)
        h.put(capacity, at: 32)
        h.put(h.withUnsafeBytes { Hash.bytes(UnsafeRawBufferPointer(rebasing: $0[0..<56])) }, at: 56)
        return h
    }

    /// Recomputes the checksum of every frame whose header says it fits in the file, walking frames from the
    /// segment header on (and skipping 8 bytes where there is no frame), so mutated frames still pass the checksum.
    static func repairFrameChecksums(_ file: inout [UInt8]) {
        var pos = headerSize
        while pos + frameHeaderSize <= file.count {
            let length = Int(file.u32(at: pos + 4))
            guard file.u32(at: pos) == frameMagic, length <= file.count - pos - frameHeaderSize else {
                pos += 8
                continue
            }
            let sum = file.withUnsafeBytes { b -> UInt64 in
                let payload = UnsafeRawBufferPointer(rebasing: b[(pos + frameHeaderSize)..<(pos + frameHeaderSize + length)])
                return Hash.bytes(UnsafeRawBufferPointer(rebasing: b[pos..<(pos + 24)]), seed: Hash.bytes(payload))
            }
            file.put(sum, at: pos + 24)
            pos = aligned(pos + frameHeaderSize + length)
        }
    }

    /// The segment file for a fuzz input. First byte: bit 0 repairs frame checksums, bit 1 means the input carries
    /// its own 64-byte header (else a valid one for segment 1 is put in front).
    static func file(from bytes: [UInt8]) -> [UInt8] {
        var input = InputReader(bytes)
        let flags = input.u8()
        var file = flags & 2 == 2 ? input.rest() : header() + input.rest()
        if flags & 1 == 1 { repairFrameChecksums(&file) }
        return file
    }

    /// Seeds: real segments written by the store (trailing zero fill dropped), with and without a seal frame.
    static func seeds() -> [[UInt8]] {
        let dir = Scratch.fresh("seed-store")
        defer { Scratch.removeTree(dir) }
        var grid = SampleGrid(seed: 11, agents: 3, nodes: 8)
        do {
            let store = try EventStore.open(at: dir, options: StoreOptions(segmentCapacity: Int(capacity)))
            for e in SampleGrid.oneOfEach().prefix(3) { _ = try store.append(e.records()) }
            _ = try store.append(grid.events(4).flatMap { $0.records() })
            store.close()
        } catch {
            fatalError("cannot write a seed segment: \(error)")
        }
        var file = Scratch.read(dir + "/" + fileName)
        while file.count > headerSize, file.last == 0 { file.removeLast() }
        file = Array(file.prefix(aligned(file.count)))
        let body = Array(file.dropFirst(headerSize))
        // A seal frame after the batches: frame count, record count, min and max timestamp.
        var seal = [UInt8](repeating: 0, count: frameHeaderSize + 32)
        seal.put(frameMagic, at: 0)
        seal.put(UInt32(32), at: 4)
        seal.put(UInt64(99), at: 8)
        seal[20] = 2
        seal.put(UInt64(4), at: 32)
        var sealed = header() + body + seal
        repairFrameChecksums(&sealed)
        let firstFrame = Array(body.prefix(aligned(frameHeaderSize + Int(body.u32(at: 4)))))
        return [[0] + body, [1] + body, [1] + firstFrame, [3] + sealed, [2] + file, [0]]
    }
}

extension FuzzTargets {
    /// Segment frames: a segment file read the way `segdump --verify` reads it (`SegmentInspector`, which runs the
    /// recovery scanner), every record decoded. Input as `SegmentLayout.file(from:)`.
    /// Invariants: frames in increasing, non-overlapping order inside the valid data; the records handed out match
    /// the frame counts; every concept record of a valid frame rebuilds a stored event.
    public static let segmentFrames = FuzzTarget(name: "segment-frames", maxLength: 16384, run: { bytes in
        let dir = Scratch.fresh("segment-frames")
        let path = dir + "/" + SegmentLayout.fileName
        Scratch.write(SegmentLayout.file(from: bytes), to: path)
        var concepts = 0
        var adjacency = 0
        let report: SegmentReport
        do {
            report = try SegmentInspector.inspect(path: path) { _, record in
                switch record {
                case .concept: concepts += 1
                case .adjacency: adjacency += 1
                }
            }
        } catch {
            fatalError("inspect of a readable file threw \(error)")
        }
        guard report.headerProblem == nil else { return }
        var end = SegmentLayout.headerSize
        for f in report.frames {
            check(Int(f.offset) >= end, "frame at \(f.offset) overlaps the one before (ends \(end))")
            end = Int(f.offset) + f.size
            check(end <= Int(report.fileBytes) + 7, "frame at \(f.offset) runs past the file")
            check(f.kind == .seal || f.concepts + f.adjacency == f.recordCount, "frame record counts disagree")
        }
        check(report.dataBytes == end || report.frames.isEmpty, "data end \(report.dataBytes), last frame ends \(end)")
        check(concepts == report.concepts && adjacency == report.adjacency,
              "records handed out (\(concepts)+\(adjacency)) differ from the frame counts (\(report.concepts)+\(report.adjacency))")
        for d in report.damage { check(d.length > 0, "empty damaged region at \(d.offset)") }
    }, seeds: { SegmentLayout.seeds() })

    /// Recovery over arbitrary bytes: a data directory holding one segment file (input as
    /// `SegmentLayout.file(from:)`), opened read-write (recovery truncates a torn tail, skips damage, rebuilds the
    /// indexes), every event read back, closed and opened again.
    /// Invariants: opening never traps; the second open finds nothing to truncate and the same events; every
    /// served event with a valid id is readable by that id.
    public static let storeRecovery = FuzzTarget(name: "store-recovery", maxLength: 16384, run: { bytes in
        let dir = Scratch.fresh("store-recovery")
        Scratch.write(SegmentLayout.file(from: bytes), to: dir + "/" + SegmentLayout.fileName)
        let options = StoreOptions(durability: .none, segmentCapacity: Int(SegmentLayout.capacity))
        func openAndRead() -> (RecoveryReport, [StoredEvent])? {
            guard let store = try? EventStore.open(at: dir, options: options) else { return nil }
            defer { store.close() }
            var events: [StoredEvent] = []
            store.forEachEvent { e in
                events.append(e)
                return events.count < 10_000
            }
            // Only ids the store could have written: arbitrary id bytes (not UTF-8) come back repaired and hash
            // differently, and a record whose stored id hash is not its id's hash is indexed under that hash (the
            // scan trusts it once the frame checksum matched; only a crafted file has one).
            for e in events.prefix(64) where (try? GridEvent.validateId(e.id, what: "id")) != nil && e.idHash == Hash.id(e.id) {
                check(store.event(id: e.id) != nil, "event \(e.id) is served but not found by id")
            }
            return (store.recovery, events)
        }
        guard let (first, events) = openAndRead() else { return }
        guard let (second, again) = openAndRead() else { fatalError("a recovered store does not open again") }
        check(second.truncated.isEmpty, "second recovery truncates again: \(second.truncated)")
        check(second.concepts == first.concepts, "recovered \(first.concepts) events, then \(second.concepts)")
        check(again.map(\.id) == events.map(\.id), "a second open serves other events")
    }, seeds: { SegmentLayout.seeds() })
}
