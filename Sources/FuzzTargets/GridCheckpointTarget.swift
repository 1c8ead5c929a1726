import EventQuery
import EventStore
import GridEvents

extension FuzzTargets {
    /// Grid-state checkpoints (`gridstate/ckpt-*.gsc`, `GridCheckpoint.decode`). First byte: bit 0 repairs the
    /// length and both checksums so mutations reach the body decoder. Invariants: nothing traps; a file that
    /// decodes encodes back to bytes that decode to the same checkpoint, and its state can be read; unless the
    /// checksums were repaired, only files as written decode (they encode back byte for byte).
    public static let gridCheckpoint = FuzzTarget(name: "grid-checkpoint", maxLength: 65536, run: { bytes in
        var input = InputReader(bytes)
        let flags = input.u8()
        var file = input.rest()
        if flags & 1 == 1 { GridCheckpointSeeds.repair(&file) }
        guard let cp = try? GridCheckpoint.decode(file) else { return }
        if flags & 1 == 0 {
            // Checksums intact: only a file as written decodes, and it is written back byte for byte.
            check(cp.encode() == file, "a damaged checkpoint decoded")
        }
        let again = try? GridCheckpoint.decode(cp.encode())
        check(again == cp, "a decoded checkpoint does not survive encode and decode")
        let states = cp.fold.states()
        check(states.nodes.count <= cp.fold.nodes.count && states.agents.count <= cp.fold.agents.count, "more states than entries")
    }, seeds: {
        let real = GridCheckpointSeeds.real
        return [[0] + real, [1] + real, [1] + Array(real.prefix(200)), [1] + GridCheckpointSeeds.empty, [0]]
    })
}

enum GridCheckpointSeeds {
    /// A real checkpoint of a small generated grid (every event type, registrations, crashes, restarts).
    static let real: [UInt8] = {
        var grid = SampleGrid(seed: 3, agents: 6, nodes: 40)
        var fold = GridFold()
        for e in grid.events(600) { fold.apply(e) }
        return GridCheckpoint(asOf: grid.start + grid.span, storedThrough: 3 << 32 | 4096, lastSequence: 17,
                              firstLocation: 1 << 32, complete: true, fold: fold).encode()
    }()

    static let empty: [UInt8] = GridCheckpoint(asOf: 0, storedThrough: 1 << 32, lastSequence: 0, firstLocation: 1 << 32,
                                               complete: false, fold: GridFold()).encode()

    /// Sets the body length and both checksums (docs/FORMAT.md, "Grid-state checkpoint") to match the bytes.
    static func repair(_ file: inout [UInt8]) {
        guard file.count >= 80 else { return }
        func put(_ v: UInt64, at: Int) {
            for i in 0..<8 { file[at + i] = UInt8(truncatingIfNeeded: v >> (8 * UInt64(i))) }
        }
        put(UInt64(file.count - 80), at: 56)
        put(file.withUnsafeBytes { Hash.bytes(UnsafeRawBufferPointer(rebasing: $0[80...])) }, at: 64)
        put(file.withUnsafeBytes { Hash.bytes(UnsafeRawBufferPointer(rebasing: $0[0..<72])) }, at: 72)
    }
}
