import EmitterSpool
import EventStore
import GridEvents
import GridFixtures

extension FuzzTargets {
    /// The emitter's spool file, read as a restarted emitter reads it. First byte: bit 0 repairs record checksums
    /// (walking records from the header on), bit 1 puts a valid 16-byte header in front of the rest.
    /// Invariants: records come back in file order within the file; each holds an event that survives
    /// encode -> decode; a second read of the same file gives the same records.
    public static let spoolFile = FuzzTarget(name: "spool-file", maxLength: 4096, run: { bytes in
        var input = InputReader(bytes)
        let flags = input.u8()
        var file = flags & 2 == 2 ? spoolHeader + input.rest() : input.rest()
        if flags & 1 == 1 { repairSpoolChecksums(&file) }
        let dir = Scratch.fresh("spool-file")
        Scratch.write(file, to: dir + "/fuzz.spool")
        guard let contents = readSpool(directory: dir, name: "fuzz") else { fatalError("spool did not open") }
        var last: UInt64 = 16
        for r in contents.records {
            check(r.end > last && r.end <= contents.writeOffset, "record end \(r.end) out of order (after \(last))")
            last = r.end
            check((try? BinaryCodec.decode(BinaryCodec.encode(r.event))) == r.event, "spooled event does not round trip")
        }
        check(contents.end <= contents.writeOffset, "read past the spool's end")
        if file.count >= 16, Array(file.prefix(8)) == Array("SGSPOOL1".utf8) {
            check(contents.end == contents.writeOffset, "a complete read stops at \(contents.end) of \(contents.writeOffset)")
            guard let again = readSpool(directory: dir, name: "fuzz") else { fatalError("spool did not reopen") }
            check(again.records == contents.records, "a second read of the same spool differs")
        }
    }, seeds: { spoolSeeds() })

    /// What reading a whole spool found.
    struct SpoolContents {
        var records: [SpoolRecord]
        /// Where reading stopped (the spool's write offset unless a limit was hit).
        var end: UInt64
        /// The spool's size when opened (its write offset).
        var writeOffset: UInt64
    }

    /// Opens the spool `name` in `directory` as an emitter does at start (`EmitterSpool`'s public API) and reads
    /// every record from its read offset; nil when it cannot be opened. The file is closed (its lock released)
    /// before this returns.
    static func readSpool(directory: String, name: String) -> SpoolContents? {
        guard let spool = Spool(directory: directory, name: name, limit: Int.max, notice: { _ in }) else { return nil }
        defer { spool.closeFile() }
        let (records, end) = spool.read(maxEvents: 100_000, maxBytes: 1 << 26)
        return SpoolContents(records: records, end: end, writeOffset: spool.writeOffset)
    }

    /// Appends `records` to the spool `name` in `directory`, creating it (seed spools from real encodings).
    static func writeSpool(directory: String, name: String, _ records: [(String, UInt64, GridEvent)]) {
        guard let spool = Spool(directory: directory, name: name, limit: 1 << 30, notice: { _ in }) else { return }
        defer { spool.closeFile() }
        spool.append(records.map { SpoolRecord(producer: $0.0, sequence: $0.1, event: $0.2) })
    }

    static let spoolHeader: [UInt8] = Array("SGSPOOL1".utf8) + [1, 0, 0, 0, 0, 0, 0, 0]

    /// Recomputes each record's checksum (XXH3-64 of its body) where its length fits in the file.
    static func repairSpoolChecksums(_ file: inout [UInt8]) {
        var pos = 16
        while pos + 12 <= file.count {
            let length = Int(file.u32(at: pos))
            guard length > 0, length <= file.count - pos - 12 else { return }
            let sum = file.withUnsafeBytes { Hash.bytes(UnsafeRawBufferPointer(rebasing: $0[(pos + 12)..<(pos + 12 + length)])) }
            file.put(sum, at: pos + 4)
            pos += 12 + length
        }
    }

    static func spoolSeeds() -> [[UInt8]] {
        let dir = Scratch.fresh("spool-seed")
        defer { Scratch.removeTree(dir) }
        let events = SampleGrid.oneOfEach()
        writeSpool(directory: dir, name: "seed", events.prefix(3).enumerated().map { ("grid-master", UInt64($0 + 1), $1) })
        let three = Scratch.read(dir + "/seed.spool")
        writeSpool(directory: dir, name: "seed", [("grid-agent-7", 99, events.last!)])
        let four = Scratch.read(dir + "/seed.spool")
        return [[0] + three, [1] + four, [3] + Array(three.dropFirst(16)), [0] + spoolHeader, [0]]
    }
}
