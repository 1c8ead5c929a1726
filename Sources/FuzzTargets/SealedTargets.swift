import EventRecords
import EventStore
import GridEvents
import GridFixtures

/// Layouts of index files and compacted segments the harness needs to repair checksums (docs/FORMAT.md, "Index
/// file" and "Compacted segment"; EventStore keeps its own copy internal).
enum SealedLayout {
    static let indexHeaderChecksumAt = 328
    static let indexSectionTableAt = 88
    static let indexSections = 10
    static let compactedHeaderChecksumAt = 56
    static let blockEntrySize = 40

    /// A store with one sealed, compacted segment (its `.sgc` and `.sgi`) and an active segment, built once per
    /// process; each input runs on a copy.
    static let base: String = {
        let dir = Scratch.fresh("sealed-base")
        var o = GridText.options(StoreOptions(durability: .none, segmentCapacity: 64 << 10))
        o.backgroundMaintenance = false
        var grid = SampleGrid(seed: 21, agents: 4, nodes: 12)
        do {
            let store = try EventStore.open(at: dir, options: o)
            for _ in 0..<40 { _ = try store.append(grid.events(12).flatMap { $0.records() }) }
            _ = try store.runMaintenance()
            store.close()
        } catch {
            fatalError("cannot build the sealed-segment base store: \(error)")
        }
        return dir
    }()

    static let indexName = "seg-0000000001.sgi"
    static let compactedName = "seg-0000000001.sgc"

    /// A fresh copy of the base store; returns its path.
    static func copy(_ name: String) -> String {
        let dir = Scratch.fresh(name)
        for file in ["MANIFEST", indexName, compactedName, "seg-0000000002.sgs", "seg-0000000003.sgs"] {
            let bytes = Scratch.read(base + "/" + file)
            if !bytes.isEmpty { Scratch.write(bytes, to: dir + "/" + file) }
        }
        return dir
    }

    static func hash(_ bytes: ArraySlice<UInt8>) -> UInt64 { bytes.withUnsafeBytes { Hash.bytes($0) } }

    /// Recomputes the section checksums and the header checksum of an index file (sections clamped to the file).
    static func repairIndex(_ f: inout [UInt8]) {
        guard f.count >= indexHeaderChecksumAt + 8 else { return }
        for i in 0..<indexSections {
            let at = indexSectionTableAt + 24 * i
            let offset = Int(min(UInt64(f.count), f.u64(at: at)))
            let length = Int(min(UInt64(f.count - offset), f.u64(at: at + 8)))
            f.put(hash(f[offset..<(offset + length)]), at: at + 16)
        }
        f.put(hash(f[0..<indexHeaderChecksumAt]), at: indexHeaderChecksumAt)
    }

    /// Recomputes the compressed-block checksums, the block index checksum and the header checksum of a
    /// compacted segment (the checksum of each rebuilt block is left alone: unpacking still runs first).
    static func repairCompacted(_ f: inout [UInt8]) {
        guard f.count >= 64 else { return }
        let count = Int(f.u32(at: 32))
        let indexAt = Int(min(UInt64(f.count), f.u64(at: 40)))
        let entries = min(count, (f.count - indexAt) / blockEntrySize)
        for i in 0..<entries {
            let at = indexAt + i * blockEntrySize
            let offset = Int(min(UInt64(f.count), f.u64(at: at + 8)))
            let length = min(Int(f.u32(at: at + 16)), f.count - offset)
            f.put(hash(f[offset..<(offset + length)]), at: at + 24)
        }
        f.put(hash(f[indexAt..<(indexAt + entries * blockEntrySize)]), at: 48)
        f.put(hash(f[0..<compactedHeaderChecksumAt]), at: compactedHeaderChecksumAt)
    }

    /// Opens the store in `dir` and asks it every kind of question; returns the ids it serves.
    static func exercise(_ dir: String) -> [String]? {
        var o = GridText.options(StoreOptions(durability: .none, segmentCapacity: 64 << 10))
        o.backgroundMaintenance = false
        guard let store = try? EventStore.open(at: dir, options: o) else { return nil }
        defer { store.close() }
        var ids: [String] = []
        store.forEachEvent { e in
            ids.append(e.id)
            return ids.count < 5_000
        }
        for id in ids.prefix(8) { _ = store.event(id: id) }
        for entity in ["agent-001", "node-3", "cluster"] {
            let page = store.timeline(entity: entity, limit: 20)
            if let last = page.last { _ = store.timeline(entity: entity, limit: 20, before: last.position) }
            _ = store.neighbors(of: entity, limit: 20)
        }
        for type: UInt16 in [1, 2, 9, 12] {
            _ = store.events(type: type, limit: 10)
            _ = store.events(type: type, limit: 10, newestFirst: false)
            _ = store.count(type: type)
            store.readPositions([.type(type)], ReadBounds()) { _, _ in true }
        }
        _ = store.typeCounts()
        _ = store.events(idPrefix: "event-agent_", limit: 10)
        // The words section: searches through it, with and without an entity, both ways.
        for (words, entity) in [(["disk", "full"], nil), (["agent"], "agent-001"), (["node", "3"], nil), (["zebra"], nil)] as [([String], String?)] {
            for newest in [true, false] {
                store.read([.words(words, entity: entity)], ReadBounds(newestFirst: newest)) { _ in true }
            }
        }
        _ = store.events(in: Int64.min..<Int64.max, limit: 30)
        _ = store.stats
        _ = try? store.runMaintenance()
        return ids
    }

    static let baselineIds: [String] = exercise(copy("sealed-baseline")) ?? []
}

extension [UInt8] {
    func u64(at i: Int) -> UInt64 {
        var v: UInt64 = 0
        for k in 0..<8 { v |= UInt64(self[i + k]) << (8 * k) }
        return v
    }
}

extension FuzzTargets {
    /// Index files: a sealed segment's index file replaced by the input (first byte: bit 0 repairs every checksum
    /// so mutations reach the readers), then the store opened and asked every kind of question.
    /// Invariants: nothing traps; an index file that fails a checksum is rebuilt, so the same events are served as
    /// with the real file.
    public static let indexFile = FuzzTarget(name: "index-file", maxLength: 65536, run: { bytes in
        var input = InputReader(bytes)
        let flags = input.u8()
        var file = input.rest()
        if flags & 1 == 1 { SealedLayout.repairIndex(&file) }
        let dir = SealedLayout.copy("index-file")
        Scratch.write(file, to: dir + "/" + SealedLayout.indexName)
        let original = Scratch.read(SealedLayout.base + "/" + SealedLayout.indexName)
        guard let ids = SealedLayout.exercise(dir) else { return }
        if flags & 1 == 0 || file == original {
            check(ids == SealedLayout.baselineIds, "a damaged index file changed what is served (\(ids.count) vs \(SealedLayout.baselineIds.count))")
        }
    }, seeds: {
        let real = Scratch.read(SealedLayout.base + "/" + SealedLayout.indexName)
        return [[0] + real, [1] + real, [1] + Array(real.prefix(300)), [0]]
    })

    /// Compacted segments: a sealed segment's `.sgc` replaced by the input (first byte: bit 0 repairs the header,
    /// block-index and compressed-block checksums so mutations reach LZ4 and the unpacker; bit 1 removes the
    /// index file so the segment is rebuilt from the blocks), inspected as `segdump --verify` does, then opened and
    /// queried. Invariants: nothing traps; unless the checksums were repaired, what is served is a subset of the
    /// real events.
    public static let compactedSegment = FuzzTarget(name: "compacted-segment", maxLength: 65536, run: { bytes in
        var input = InputReader(bytes)
        let flags = input.u8()
        var file = input.rest()
        if flags & 1 == 1 { SealedLayout.repairCompacted(&file) }
        let dir = SealedLayout.copy("compacted-segment")
        Scratch.write(file, to: dir + "/" + SealedLayout.compactedName)
        if flags & 2 == 2 { Scratch.removeTree(dir + "/" + SealedLayout.indexName) }
        _ = try? SegmentInspector.inspect(path: dir + "/" + SealedLayout.compactedName) { _, _ in }
        guard let ids = SealedLayout.exercise(dir) else { return }
        if flags & 1 == 0 {
            // Checksums not repaired: damage can only take events away, never add or alter one.
            let known = Set(SealedLayout.baselineIds)
            check(ids.allSatisfy { known.contains($0) }, "a damaged compacted segment served an event that was never stored")
        }
    }, seeds: {
        let real = Scratch.read(SealedLayout.base + "/" + SealedLayout.compactedName)
        return [[0] + real, [1] + real, [3] + real, [2] + real, [1] + Array(real.prefix(200)), [0]]
    })
}
