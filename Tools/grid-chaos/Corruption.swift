import EventStore
import Foundation

/// Bit flips and truncation where data rests: sealed segments (as written, and compacted), index files, the
/// manifest and the emitter spool. Every piece of damage must be detected and reported with its location, cost
/// only the frame, compressed block (or spool record) it hit, and leave everything else served; damaged index
/// files and a damaged manifest cost nothing (rebuilt from the segments); grid-eventd must still open the
/// damaged directory and take new writes.
struct Corruption: Scenario {
    let name = "bitflip"

    func run(_ ctx: ChaosContext) throws -> ScenarioResult {
        var result = ScenarioResult(name: name)
        let dir = try ctx.directory(name)
        try segments(ctx, dir, &result)
        try compacted(ctx, dir, &result)
        try spool(ctx, dir, &result)
        return result
    }

    private func segments(_ ctx: ChaosContext, _ dir: String, _ result: inout ScenarioResult) throws {
        // Uncompacted sealed segments (each with its index file): bit flips are found by the frame checks on read.
        let cluster = Cluster(ctx, dir: dir, daemonArguments: ["--segment-size", "\(256 << 10)", "--compression", "none"])
        try write30k(cluster, seed: ctx.seed, &result)
        result.check(cluster.daemon.stop() == 0, "grid-eventd did not stop cleanly")

        // What each frame holds, before the damage.
        let files = try SegmentInspector.segmentFiles(in: cluster.daemon.dataDir).filter { $0.hasSuffix(".sgs") }
        var reports: [SegmentReport] = []
        var idsByFrame: [String: [String]] = [:]
        for file in files {
            reports.append(try SegmentInspector.inspect(path: file) { frame, record in
                if case .concept(let c) = record { idsByFrame["\(file)@\(frame.offset)", default: []].append(c.id) }
            })
        }
        let allIds = Set(idsByFrame.values.joined())
        let sealed = reports.filter { $0.sealed && $0.frames.count > 3 }
        guard sealed.count >= 4 else {
            result.failures.append("expected at least 4 sealed segments, found \(sealed.count)")
            return
        }
        var rng = SystemRandomNumberGenerator()
        var expectedLost = Set<String>()
        var damaged: [(segment: UInt64, offset: UInt64)] = []
        // One flipped bit in a random batch frame of three sealed segments.
        for report in sealed.shuffled(using: &rng).prefix(3) {
            let frame = report.frames.filter { $0.kind == .batch }.randomElement(using: &rng)!
            let at = frame.offset + UInt64.random(in: 0..<UInt64(32 + frame.payloadLength), using: &rng)
            try flipBit(report.path, at: at, bit: Int.random(in: 0..<8, using: &rng))
            expectedLost.formUnion(idsByFrame["\(report.path)@\(frame.offset)"] ?? [])
            damaged.append((report.id, frame.offset))
        }
        // A sealed segment cut in the middle of a frame: that frame and the rest of the file are gone.
        let flipped = Set(damaged.map(\.segment))
        let cut = sealed.first { !flipped.contains($0.id) }!
        let batches = cut.frames.filter { $0.kind == .batch }
        let from = batches[batches.count / 2]
        guard truncate(cut.path, off_t(from.offset + 20)) == 0 else { throw ChaosError("cannot truncate \(cut.path)") }
        for f in batches where f.offset >= from.offset { expectedLost.formUnion(idsByFrame["\(cut.path)@\(f.offset)"] ?? []) }
        damaged.append((cut.id, from.offset))

        let check = try StoreCheck.verify(cluster.daemon.dataDir, producers: [])
        var served = Set<String>()
        let store = try EventStore.open(at: cluster.daemon.dataDir, options: StoreOptions(readOnly: true))
        store.forEachEvent { served.insert($0.id); return true }
        store.close()
        let lost = allIds.subtracting(served).subtracting(expectedLost)
        let hitButServed = expectedLost.intersection(served)
        result.lost += lost.count
        result.corruptReads += check.corruptReads
        result.check(lost.isEmpty, "\(lost.count) event(s) outside the damaged frames are no longer served")
        result.check(hitButServed.isEmpty, "\(hitButServed.count) event(s) from damaged frames are still served")
        for d in damaged {
            let reported = check.damage.contains { $0.hasPrefix("segment \(d.segment) offset \(d.offset):") }
            result.check(reported, "damage at segment \(d.segment) offset \(d.offset) not reported: \(check.damage)")
        }
        let segdump = StoreCheck.segdumpVerify(bin: ctx.bin, cluster.daemon.dataDir)
        result.check(segdump != nil, "segdump --verify passed a damaged directory")
        for d in damaged {
            let file = String(format: "seg-%010llu.sgs", d.segment)
            result.check(segdump?.contains(file) == true, "segdump --verify did not name \(file): \((segdump ?? "").suffix(2000))")
        }
        result.notes.append("segments: \(damaged.count) damaged places (3 bit flips, 1 truncation) cost \(expectedLost.count) of \(allIds.count) events, all reported; the rest served")

        // The daemon opens the damaged directory and takes new writes.
        try writeAfterDamage(cluster, label: "after the damage", &result)
    }

    /// Compacted segments, index files and the manifest.
    private func compacted(_ ctx: ChaosContext, _ dir: String, _ result: inout ScenarioResult) throws {
        let cluster = Cluster(ctx, dir: dir + "/compacted", daemonArguments: ["--segment-size", "\(256 << 10)"])
        try FileManager.default.createDirectory(atPath: cluster.dir, withIntermediateDirectories: true)
        try write30k(cluster, seed: ctx.seed &+ 7, &result)
        // Let the background compaction catch up before the daemon stops.
        _ = cluster.wait(20) { (try? SegmentInspector.inspectManifest(in: cluster.daemon.dataDir))??.compacted.count ?? 0 >= 4 }
        result.check(cluster.daemon.stop() == 0, "grid-eventd did not stop cleanly")
        let data = cluster.daemon.dataDir
        var before: [String: UInt64] = [:]  // id -> segment
        for file in try SegmentInspector.segmentFiles(in: data) {
            _ = try SegmentInspector.inspect(path: file) { _, record in
                if case .concept(let c) = record { before[c.id] = segmentId(file) }
            }
        }
        let compactedFiles = try SegmentInspector.segmentFiles(in: data).filter { $0.hasSuffix(".sgc") }
        let indexFiles = try SegmentInspector.indexFiles(in: data)
        guard compactedFiles.count >= 3, indexFiles.count >= 3 else {
            result.failures.append("expected at least 3 compacted segments with index files, found \(compactedFiles.count) and \(indexFiles.count)")
            return
        }
        var rng = SystemRandomNumberGenerator()
        // A flipped bit in the compressed bytes of one block of a compacted segment.
        let blockFile = compactedFiles[1]
        let blockSegment = segmentId(blockFile)
        let size = (try FileManager.default.attributesOfItem(atPath: blockFile)[.size] as? Int) ?? 0
        try flipBit(blockFile, at: UInt64(64 + size / 3), bit: Int.random(in: 0..<8, using: &rng))
        // A flipped bit in a section of another segment's index file, and one in the manifest.
        let indexFile = indexFiles.first { segmentId($0) != blockSegment }!
        let indexSize = (try FileManager.default.attributesOfItem(atPath: indexFile)[.size] as? Int) ?? 0
        try flipBit(indexFile, at: UInt64(indexSize / 2), bit: Int.random(in: 0..<8, using: &rng))
        try flipBit(data + "/MANIFEST", at: 40, bit: 1)

        let check = try StoreCheck.verify(data, producers: [])
        let heard = NoticeLog()
        var readOnly = StoreOptions(readOnly: true)
        readOnly.onNotice = heard.append
        let store = try EventStore.open(at: data, options: readOnly)
        var served = Set<String>()
        store.forEachEvent { served.insert($0.id); return true }
        let notices = store.recovery.notices + heard.lines
        store.close()
        let lost = Set(before.keys).subtracting(served)
        let lostElsewhere = lost.filter { before[$0] != blockSegment }
        result.corruptReads += check.corruptReads
        result.lost += lostElsewhere.count
        result.check(!lost.isEmpty && lost.count <= 800, "a damaged 64 KiB block should cost its events only (lost \(lost.count))")
        result.check(lostElsewhere.isEmpty, "\(lostElsewhere.count) event(s) outside the damaged block's segment are no longer served")
        result.check(check.damage.contains { $0.hasPrefix("segment \(blockSegment) offset") && $0.contains("compressed block") },
                     "the damaged block was not reported: \(check.damage)")
        result.check(notices.contains { $0.contains("manifest is damaged") }, "the damaged manifest was not reported: \(notices)")
        result.check(notices.contains { $0.contains("index file of segment \(segmentId(indexFile)) failed its checksum") },
                     "the damaged index file was not reported: \(notices)")
        let segdump = StoreCheck.segdumpVerify(bin: ctx.bin, data)
        result.check(segdump?.contains(String(format: "seg-%010llu.sgc", blockSegment)) == true, "segdump --verify did not name the damaged block's file: \((segdump ?? "").suffix(2000))")
        result.check(segdump?.contains("index of segment \(segmentId(indexFile))") == true, "segdump --verify did not name the damaged index file")
        result.check(segdump?.contains("manifest") == true, "segdump --verify did not name the damaged manifest")
        result.notes.append("compacted: a flipped bit in one LZ4 block cost \(lost.count) of \(before.count) events (that block), reported; a damaged index file and manifest cost nothing")

        // The daemon opens the directory, rebuilds the index, and takes new writes.
        try writeAfterDamage(cluster, label: "after the damage (compacted)", &result)
    }

    /// Starts the cluster's daemon and has one producer write 30,000 events through it, waiting for every ack.
    private func write30k(_ cluster: Cluster, seed: UInt64, _ result: inout ScenarioResult) throws {
        try cluster.daemon.start()
        let writer = try EmitterProcess(
            bin: cluster.ctx.bin, work: cluster.dir, storage: cluster.daemon.socket, name: "writer", rate: 15_000,
            count: 30_000, spoolDir: cluster.spoolDir, seed: seed)
        let (exit, status) = writer.finish(stop: false)
        result.check(exit == 0, "the writer did not finish: \(writer.log().suffix(500))")
        result.acked += ProducerReport(status).acked
    }

    /// Restarts the daemon on the damaged directory; a new producer must write through it with nothing lost.
    private func writeAfterDamage(_ cluster: Cluster, label: String, _ result: inout ScenarioResult) throws {
        try cluster.daemon.start()
        try cluster.startEmitters(1, rate: 20_000, prefix: "after")
        cluster.watch(0.5)
        var after = ScenarioResult(name: name)
        try cluster.finishAndVerify(&after, expectCleanSegments: false)
        result.acked += after.acked
        result.add(StoreCheck(
            lost: after.lost, duplicated: after.duplicated, orderViolations: after.orderViolations,
            corruptReads: after.corruptReads))
        result.maxDaemonRSS = max(result.maxDaemonRSS, after.maxDaemonRSS)
        result.maxQueued = max(result.maxQueued, after.maxQueued)
        result.failures += after.failures.map { "\(label): \($0)" }
    }

    private func spool(_ ctx: ChaosContext, _ dir: String, _ result: inout ScenarioResult) throws {
        let spoolDir = dir + "/spool-damage"
        let socket = dir + "/spool.sock"
        // No daemon: everything goes to the spool.
        let spooler = try EmitterProcess(
            bin: ctx.bin, work: dir, storage: socket, name: "spooler", rate: 100_000, count: 3000, spoolDir: spoolDir,
            seed: ctx.seed, flushTimeout: 1)
        let (_, status) = spooler.finish(stop: false)
        let tag = status["tag"] as? String ?? "?"
        let path = spoolDir + "/spooler.spool"
        guard let data = FileManager.default.contents(atPath: path) else { throw ChaosError("no spool at \(path)") }
        let bytes = [UInt8](data)
        var offsets: [Int] = []
        var at = 16
        while at + 12 <= bytes.count {
            let length = Int(bytes[at]) | Int(bytes[at + 1]) << 8 | Int(bytes[at + 2]) << 16 | Int(bytes[at + 3]) << 24
            guard length > 0, at + 12 + length <= bytes.count else { break }
            offsets.append(at)
            at += 12 + length
        }
        result.check(offsets.count == 3000, "expected 3000 spooled records, found \(offsets.count)")
        guard offsets.count > 100 else { return }
        var rng = SystemRandomNumberGenerator()
        let hit = Array(Set((0..<3).map { _ in Int.random(in: 1..<(offsets.count - 1), using: &rng) })).sorted()
        for i in hit { try flipBit(path, at: UInt64(offsets[i] + 12 + Int.random(in: 0..<20, using: &rng)), bit: Int.random(in: 0..<8, using: &rng)) }
        // And cut the last record in half.
        let last = offsets[offsets.count - 1]
        _ = truncate(path, off_t(last + 6))
        let expectedMissing = Set(hit.map { UInt64($0 + 1) } + [UInt64(offsets.count)])

        let daemon = DaemonProcess(bin: ctx.bin, dataDir: dir + "/spool-data", socket: socket)
        try daemon.start()
        let replay = try EmitterProcess(
            bin: ctx.bin, work: dir, storage: socket, name: "spooler", rate: 1, count: 0, spoolDir: spoolDir, seed: ctx.seed)
        let (exit, replayStatus) = replay.finish()
        result.check(exit == 0, "the replaying producer did not finish: \(replay.log().suffix(500))")
        result.check(daemon.stop() == 0, "grid-eventd did not stop cleanly")
        let log = replay.log()
        result.check(log.contains("damaged byte(s) at offset"), "the spool damage was not reported with its offset: \(log.suffix(500))")
        result.check((replayStatus["spool_damaged_bytes"] as? Int ?? 0) > 0, "spool_damaged_bytes not counted")
        var present = Set<UInt64>()
        let store = try EventStore.open(at: daemon.dataDir, options: StoreOptions(readOnly: true))
        store.forEachEvent { e in
            let parts = e.id.split(separator: "-")
            if parts.count >= 4, parts[parts.count - 2] == tag, let seq = UInt64(parts[parts.count - 1]) { present.insert(seq) }
            return true
        }
        store.close()
        let missing = Set(1...UInt64(offsets.count)).subtracting(present)
        result.acked += present.count
        result.check(missing == expectedMissing, "spool: missing \(missing.sorted().prefix(10)), expected exactly \(expectedMissing.sorted())")
        result.lost += missing.subtracting(expectedMissing).count
        result.notes.append("spool: \(hit.count) bit flip(s) and a cut last record cost exactly those \(expectedMissing.count) event(s), reported with offsets; \(present.count) replayed")
        result.rounds += 1
    }

    private func flipBit(_ path: String, at offset: UInt64, bit: Int) throws {
        let fd = open(path, O_RDWR)
        guard fd >= 0 else { throw ChaosError("cannot open \(path)") }
        defer { close(fd) }
        var byte: UInt8 = 0
        guard pread(fd, &byte, 1, off_t(offset)) == 1 else { throw ChaosError("cannot read \(path) at \(offset)") }
        byte ^= UInt8(1 << bit)
        guard pwrite(fd, &byte, 1, off_t(offset)) == 1 else { throw ChaosError("cannot write \(path) at \(offset)") }
    }
}

/// The segment id in a file name `seg-NNNNNNNNNN.sgs` / `.sgc` / `.sgi`.
func segmentId(_ path: String) -> UInt64 {
    let name = path.split(separator: "/").last ?? ""
    return UInt64(name.dropFirst(4).prefix(10)) ?? 0
}

/// Notices a store sends, collected across threads.
final class NoticeLog: @unchecked Sendable {
    private let lock = NSLock()
    private var list: [String] = []
    var lines: [String] { lock.withLock { list } }
    func append(_ line: String) { lock.withLock { list.append(line) } }
}
