import Foundation
import Testing
@_spi(Testing) import EventStore

/// A child process appends batches and reports each one it was told is durable; the test kills it with
/// SIGKILL at random moments and checks, after every reopen, that each reported batch is present and intact,
/// nothing is corrupt, and appends continue.
@Suite("Crash: SIGKILL during appends", .serialized)
struct CrashTests {
    @Test func killedWriterLosesNothingAcknowledged() throws {
        let dir = TempDir("crash")
        var acknowledged: [String: Int] = [:]  // "run-batch" -> events
        let rounds = 20
        var totalAcked = 0
        for round in 0..<rounds {
            let mode = round % 3 == 2 ? "always" : "batch"
            let (lines, killed) = try killedStoreStress([
                "append-loop", "--data-dir", dir.path, "--run", "r\(round)", "--events", "40",
                "--segment-capacity", "262144", "--durability", mode,
            ], delayMicros: 80_000...400_000)
            #expect(killed)
            for line in lines where line.hasPrefix("durable ") {
                let f = line.split(separator: " ")
                acknowledged["\(f[1])-\(f[2])"] = Int(f[3])!
                totalAcked += 1
            }

            let store = try open(dir, capacity: 262_144)
            let (ids, problems) = allSyntheticIds(store)
            #expect(problems.isEmpty, "round \(round): \(problems.prefix(3))")
            #expect(store.recovery.skipped.isEmpty, "round \(round): \(store.recovery.summary)")
            #expect(Set(ids).count == ids.count, "round \(round): duplicates")
            let present = eventsPerBatch(ids)
            for (batch, n) in acknowledged {
                #expect(present[batch] == n, "round \(round): acknowledged batch \(batch) has \(present[batch] ?? 0) of \(n)")
            }
            // Batches are atomic: whatever is present is whole.
            for (batch, n) in present { #expect(n == 40, "round \(round): partial batch \(batch)") }
            // Appends continue after recovery.
            try store.append(SyntheticEvents.batch(run: "after\(round)", batch: 0, events: 40))
            acknowledged["after\(round)-0"] = 40
            store.close()
        }
        #expect(totalAcked > rounds, "the writer acknowledged too few batches to test anything")
        let verify = try runProduct("segdump", [dir.path, "--verify"])
        #expect(verify.status == 0, "\(verify.stdout)")
    }
}

/// The child appends and runs maintenance (index files, LZ4 compaction, the manifest swap) after every batch
/// into 64 KiB segments, so kills land inside compaction; after each kill every acknowledged batch must be
/// present and intact, exactly once, and the store must verify clean.
@Suite("Crash: SIGKILL during compaction", .serialized)
struct CompactionCrashTests {
    @Test func killedCompactionLeavesOldOrNewStateNeverAMix() throws {
        let dir = TempDir("crash-compact")
        var acknowledged: [String: Int] = [:]
        let rounds = 24
        var compactions = 0
        // On a loaded machine the child gets less done before each kill: more rounds (up to 3x) until it has
        // compacted enough for the test to mean something.
        var round = 0
        while round < rounds || (compactions <= rounds && round < rounds * 3) {
            defer { round += 1 }
            let (lines, killed) = try killedStoreStress([
                "append-loop", "--data-dir", dir.path, "--run", "c\(round)", "--events", "40",
                "--segment-capacity", "65536", "--maintain-every", "1",
                "--compression", round % 2 == 0 ? "high" : "fast",
            ], delayMicros: 60_000...350_000)
            #expect(killed, "round \(round): the child stopped before the kill (a failed maintenance pass?)")
            for line in lines {
                if line.hasPrefix("durable ") {
                    let f = line.split(separator: " ")
                    acknowledged["\(f[1])-\(f[2])"] = Int(f[3])!
                } else if line.hasPrefix("maintained") {
                    compactions += 1
                }
            }
            let store = try open(dir, capacity: 65_536)
            #expect(store.recovery.skipped.isEmpty && store.recovery.unreadableSegments.isEmpty, "round \(round): \(store.recovery.summary)")
            let (ids, problems) = allSyntheticIds(store)
            #expect(problems.isEmpty, "round \(round): \(problems.prefix(3))")
            #expect(Set(ids).count == ids.count, "round \(round): duplicates")
            let present = eventsPerBatch(ids)
            for (batch, n) in acknowledged {
                #expect(present[batch] == n, "round \(round): acknowledged batch \(batch) has \(present[batch] ?? 0) of \(n)")
            }
            // Batches are atomic: whatever is present is whole.
            for (batch, n) in present { #expect(n == 40, "round \(round): partial batch \(batch)") }
            store.close()
            let verify = try runProduct("segdump", [dir.path, "--verify"])
            #expect(verify.status == 0, "round \(round): \(verify.stdout.suffix(600))")
        }
        #expect(compactions > rounds, "the child compacted too rarely to test anything (\(compactions) passes)")
        #expect(acknowledged.count > rounds * 3)
        // Where the kills land varies with timing; every step of a compaction is also failed on purpose,
        // deterministically, in CompactionTests.failureAtEveryStepOfCompactionLeavesOldOrNewState.
    }
}

/// Retention deleting segments while the child appends and compacts, killed at random moments: after each
/// kill, an acknowledged batch is present whole exactly when its segment is at or above the manifest's first
/// segment, and gone when retention deleted its segment; nothing is half deleted.
@Suite("Crash: SIGKILL during retention", .serialized)
struct RetentionCrashTests {
    @Test func killedRetentionDeletesWholeSegmentsOrNothing() throws {
        let dir = TempDir("crash-retain")
        var acknowledged: [String: (events: Int, segment: UInt64)] = [:]
        let rounds = 12
        var deletions = 0
        var round = 0  // more rounds (up to 3x) on a loaded machine, until retention has run often enough
        while round < rounds || (deletions < rounds / 2 && round < rounds * 3) {
            defer { round += 1 }
            let (lines, killed) = try killedStoreStress([
                "append-loop", "--data-dir", dir.path, "--run", "r\(round)", "--events", "40",
                "--segment-capacity", "65536", "--maintain-every", "2", "--max-bytes", "200KB",
            ], delayMicros: 60_000...300_000)
            #expect(killed, "round \(round): the child stopped before the kill (a failed maintenance pass?)")
            for line in lines {
                let f = line.split(separator: " ")
                if line.hasPrefix("durable "), f.count >= 8 {
                    acknowledged["\(f[1])-\(f[2])"] = (Int(f[3])!, UInt64(f[7])!)
                } else if line.contains("deleted ["), !line.contains("deleted []") {
                    deletions += 1
                }
            }
            let store = try open(dir, capacity: 65_536)
            #expect(store.recovery.skipped.isEmpty && store.recovery.unreadableSegments.isEmpty, "round \(round): \(store.recovery.summary)")
            // No manifest yet (nothing compacted or deleted so far) means nothing was deleted.
            let manifest = try SegmentInspector.inspectManifest(in: dir.path)
            #expect(manifest?.problem == nil)
            let firstSegment = manifest?.firstSegment ?? 0
            let (ids, problems) = allSyntheticIds(store)
            #expect(problems.isEmpty, "round \(round): \(problems.prefix(3))")
            #expect(Set(ids).count == ids.count, "round \(round): duplicates")
            let present = eventsPerBatch(ids)
            for (batch, ack) in acknowledged {
                if ack.segment >= firstSegment {
                    #expect(present[batch] == ack.events, "round \(round): batch \(batch) in live segment \(ack.segment) has \(present[batch] ?? 0)")
                } else {
                    #expect(present[batch] == nil, "round \(round): batch \(batch) of deleted segment \(ack.segment) is still served")
                }
            }
            for (batch, n) in present { #expect(n == 40, "round \(round): partial batch \(batch)") }
            store.close()
            let verify = try runProduct("segdump", [dir.path, "--verify"])
            #expect(verify.status == 0, "round \(round): \(verify.stdout.suffix(600))")
        }
        #expect(deletions >= rounds / 2, "retention ran too rarely to test anything (\(deletions) passes)")
    }
}

/// Runs `store-stress` with `arguments`, SIGKILLs it after a random delay in `delayMicros`, and returns the lines
/// it had printed completely (a line cut by the kill was not reported) and whether it died by the signal.
func killedStoreStress(_ arguments: [String], delayMicros: ClosedRange<UInt32>) throws -> (lines: [Substring], killed: Bool) {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: productPath("store-stress"))
    process.arguments = arguments
    let out = Pipe()
    process.standardOutput = out
    process.standardError = FileHandle.nullDevice
    try process.run()
    usleep(UInt32.random(in: delayMicros))
    kill(process.processIdentifier, SIGKILL)
    let text = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
    process.waitUntilExit()
    var lines = text.split(separator: "\n", omittingEmptySubsequences: false)
    if !text.hasSuffix("\n") { lines.removeLast() }
    return (lines, process.terminationReason == .uncaughtSignal)
}

/// How many of `ids` (synthetic ids `event-synthetic-RUN-BATCH-INDEX`) each batch has, keyed `RUN-BATCH`.
func eventsPerBatch(_ ids: [String]) -> [String: Int] {
    var present: [String: Int] = [:]
    for id in ids {
        let p = id.split(separator: "-")
        present["\(p[2])-\(p[3])", default: 0] += 1
    }
    return present
}

/// Reads hold their snapshots while the child compacts and deletes segments under them: the child's reader
/// thread checks every event a read gives it (and exits on a bad one), the child is killed at random moments, and
/// after each kill every acknowledged batch is present (or gone whole with a segment retention deleted), nothing
/// is corrupt, and the store verifies clean.
@Suite("Crash: SIGKILL while reads hold snapshots across compaction and retention", .serialized)
struct SnapshotCrashTests {
    @Test func killedWhileReadsSpanSwapsLosesNothingAndReadsNothingBad() throws {
        let dir = TempDir("crash-snapshot")
        var acknowledged: [String: (events: Int, segment: UInt64)] = [:]
        var reads = 0
        let rounds = 12
        for round in 0..<rounds {
            let retention = round % 2 == 1
            let (lines, killed) = try killedStoreStress([
                "append-loop", "--data-dir", dir.path, "--run", "q\(round)", "--events", "40", "--read-while",
                "--segment-capacity", "65536", "--maintain-every", "1",
            ] + (retention ? ["--max-bytes", "300KB"] : []), delayMicros: 80_000...400_000)
            #expect(killed, "round \(round): the child stopped before the kill: \(lines.filter { $0.hasPrefix("corrupt") }.prefix(3))")
            #expect(!lines.contains { $0.hasPrefix("corrupt") }, "round \(round): \(lines.filter { $0.hasPrefix("corrupt") }.prefix(3))")
            for line in lines {
                let f = line.split(separator: " ")
                if line.hasPrefix("durable "), f.count >= 8 {
                    acknowledged["\(f[1])-\(f[2])"] = (Int(f[3])!, UInt64(f[7])!)
                } else if line.hasPrefix("read ") {
                    reads += 1
                }
            }
            let store = try open(dir, capacity: 65_536)
            #expect(store.recovery.skipped.isEmpty && store.recovery.unreadableSegments.isEmpty, "round \(round): \(store.recovery.summary)")
            let firstSegment = try SegmentInspector.inspectManifest(in: dir.path)?.firstSegment ?? 0
            let (ids, problems) = allSyntheticIds(store)
            #expect(problems.isEmpty, "round \(round): \(problems.prefix(3))")
            #expect(Set(ids).count == ids.count, "round \(round): duplicates")
            let present = eventsPerBatch(ids)
            for (batch, ack) in acknowledged {
                if ack.segment >= firstSegment {
                    #expect(present[batch] == ack.events, "round \(round): batch \(batch) has \(present[batch] ?? 0) of \(ack.events)")
                } else {
                    #expect(present[batch] == nil, "round \(round): batch \(batch) of deleted segment \(ack.segment) is still served")
                }
            }
            for (batch, n) in present { #expect(n == 40, "round \(round): partial batch \(batch)") }
            store.close()
            let verify = try runProduct("segdump", [dir.path, "--verify"])
            #expect(verify.status == 0, "round \(round): \(verify.stdout.suffix(600))")
        }
        #expect(reads > rounds, "the child's reader finished too few reads to test anything (\(reads))")
    }
}
