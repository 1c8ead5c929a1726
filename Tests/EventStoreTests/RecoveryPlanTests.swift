@testable import EventStore
import Testing

/// The recovery plan, case by case, from file names and a manifest alone: no disk.
@Suite("Recovery plan: every case of the table")
struct RecoveryPlanTests {
    func plan(_ names: [String], first: UInt64 = 0, compacted: Set<UInt64> = []) -> RecoveryPlan {
        RecoveryPlan.make(names: names, firstSegment: first, compacted: compacted)
    }

    func action(_ names: [String], first: UInt64 = 0, compacted: Set<UInt64> = []) -> RecoveryPlan.Action? {
        let p = plan(names, first: first, compacted: compacted)
        #expect(p.segments.count == 1, "\(names)")
        return p.segments.first?.action
    }

    @Test func segmentFileOnlyIsOpened() {
        #expect(action(["seg-0000000007.sgs"]) == .openRaw(deleteCompacted: false))
        #expect(action(["seg-0000000007.sgs", "seg-0000000007.sgi"]) == .openRaw(deleteCompacted: false))
    }

    @Test func aCompactionTheManifestNamesWins() {
        // The swap finished (manifest written) but the old file was not deleted yet.
        #expect(action(["seg-0000000007.sgs", "seg-0000000007.sgc"], compacted: [7]) == .openCompacted(deleteRaw: true))
        #expect(action(["seg-0000000007.sgc", "seg-0000000007.sgi"], compacted: [7]) == .openCompacted(deleteRaw: false))
    }

    @Test func aCompactionTheManifestDoesNotNameIsUndone() {
        // The compacted file was written, the manifest never switched: the segment file is the segment.
        #expect(action(["seg-0000000007.sgs", "seg-0000000007.sgc"], compacted: [6]) == .openRaw(deleteCompacted: true))
    }

    @Test func aLostManifestStillFindsCompactedSegments() {
        // No manifest (or a damaged one): a compacted file alone is the only copy of its data.
        #expect(action(["seg-0000000007.sgc"]) == .openCompacted(deleteRaw: false))
    }

    @Test func segmentsBelowTheFirstAreDeletedWhateverTheirFiles() {
        for names in [["seg-0000000003.sgs"], ["seg-0000000003.sgc", "seg-0000000003.sgi"], ["seg-0000000003.sgi"],
                      ["seg-0000000003.sgs", "seg-0000000003.sgc"]] {
            #expect(action(names, first: 4, compacted: [3]) == .deleteAll, "\(names)")
        }
        #expect(action(["seg-0000000004.sgs"], first: 4) == .openRaw(deleteCompacted: false), "the first segment stays")
    }

    @Test func anOrphanIndexFileIsDeleted() {
        #expect(action(["seg-0000000009.sgi"]) == .deleteIndex)
    }

    @Test func temporaryFilesAreDeletedAndStrayNamesIgnored() {
        let p = plan(["seg-0000000002.sgs.tmp", "MANIFEST.tmp", "seg-0000000002.sgs", "LOCK", "MANIFEST", "seg-5.sgs",
                      "notes.txt", "seg-0000000002.sgi.tmp"])
        #expect(p.deleteTemporary == ["MANIFEST.tmp", "seg-0000000002.sgi.tmp", "seg-0000000002.sgs.tmp"])
        #expect(p.segments.map(\.id) == [2])
    }

    @Test func aWholeDirectoryIsPlannedInIdOrder() {
        let p = plan([
            "seg-0000000001.sgc", "seg-0000000001.sgi",  // deleted by retention
            "seg-0000000002.sgc", "seg-0000000002.sgs", "seg-0000000002.sgi",  // compaction swap finished
            "seg-0000000003.sgc", "seg-0000000003.sgs",  // compaction not finished
            "seg-0000000004.sgs", "seg-0000000004.sgi",
            "seg-0000000005.sgs",  // the active segment
            "seg-0000000006.sgi",
        ], first: 2, compacted: [1, 2])
        #expect(p.segments.map(\.id) == [1, 2, 3, 4, 5, 6])
        #expect(p.segments.map(\.action) == [
            .deleteAll, .openCompacted(deleteRaw: true), .openRaw(deleteCompacted: true), .openRaw(deleteCompacted: false),
            .openRaw(deleteCompacted: false), .deleteIndex,
        ])
        #expect(p.opened == [2, 3, 4, 5])
    }

    @Test func everyRuleIsReachable() {
        // Every combination of files and manifest facts falls under exactly the first rule that holds, and every
        // rule is the first to hold for some combination (no dead row).
        var used = Set<String>()
        for bits in 0..<32 {
            let f = RecoveryPlan.Files(raw: bits & 1 != 0, compacted: bits & 2 != 0, index: bits & 4 != 0,
                                       named: bits & 8 != 0, belowFirst: bits & 16 != 0)
            guard f.raw || f.compacted || f.index else { continue }
            let rule = RecoveryPlan.rules.first { $0.holds(f) }
            #expect(rule != nil, "no rule for \(f)")
            if let rule { used.insert(rule.when) }
        }
        #expect(used == Set(RecoveryPlan.rules.map(\.when)))
    }
}
