import Foundation
import StoreFixtures
import Testing
@_spi(Testing) import EventStore

@Suite("segdump")
struct SegdumpTests {
    func writeStore(_ dir: TempDir, maintain: Bool = false) throws -> EventStore {
        var o = StoreOptions(segmentCapacity: 64 << 10)
        o.backgroundMaintenance = false
        let store = try EventStore.open(at: dir.path, options: o)
        for b in 0..<30 { try store.append(SyntheticEvents.batch(run: "sd", batch: b, events: 10)) }
        if maintain { try store.runMaintenance() }
        return store
    }

    @Test func verifyListsEveryRecordOfALiveStore() throws {
        let dir = TempDir()
        let store = try writeStore(dir, maintain: true)  // still open and locked: segdump works read-only beside it
        let r = try runProduct("segdump", [dir.path, "--verify", "--json"])
        #expect(r.status == 0, "\(r.stderr)")
        let json = try #require(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any])
        let totals = try #require(json["totals"] as? [String: Any])
        #expect(totals["events"] as? Int == 300)
        #expect(totals["adjacency"] as? Int == 900)
        #expect(totals["segments"] as? Int == store.stats.segments)
        #expect((json["verify"] as? [String: Any])?["ok"] as? Bool == true)

        let table = try runProduct("segdump", [dir.path])
        #expect(table.status == 0)
        #expect(table.stdout.contains("total"))
        let lines = table.stdout.split(separator: "\n")
        #expect(lines.filter { $0.first?.isNumber == true }.count == store.stats.segments)
        #expect(lines.filter { $0.contains("lz4") }.count == store.stats.compactedSegments)
        #expect(lines.filter { $0.hasPrefix("  segment ") && $0.hasSuffix(": ok") }.count == store.stats.indexFiles)
        #expect(lines.contains { $0.hasPrefix("manifest: generation") })
        #expect(store.stats.compactedSegments >= 1)

        // A compacted segment dumps like the segment it was made from.
        let records = try runProduct("segdump", [dir.file("seg-0000000001.sgc"), "--records"])
        #expect(records.stdout.contains("event  event-synthetic-sd-0-0  type 1"))
        #expect(records.stdout.contains("adj    agent-0 -> event-synthetic-sd-0-0  edge 1"))

        // A reader that went away (here one that never reads) ends segdump --records with status 0, not SIGPIPE.
        let sh = Process()
        sh.executableURL = URL(fileURLWithPath: "/bin/sh")
        sh.arguments = ["-c", "{ sleep 0.3; \"$0\" \"$@\"; echo segdump=$? >&2; } | true", productPath("segdump"), dir.path, "--records"]
        let err = Pipe()
        sh.standardError = err
        try sh.run()
        let said = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        sh.waitUntilExit()
        #expect(said.contains("segdump=0"), "\(said)")
        store.close()
    }

    @Test func verifyNamesTheBadFrameAndFails() throws {
        let dir = TempDir()
        let store = try writeStore(dir)
        store.close()
        let seg = dir.file("seg-0000000001.sgs")
        let h = try #require(FileHandle(forUpdatingAtPath: seg))
        try h.seek(toOffset: 64 + 500)
        let b = h.readData(ofLength: 1)[0]
        try h.seek(toOffset: 64 + 500)
        h.write(Data([b ^ 0x01]))
        try h.close()
        let r = try runProduct("segdump", [dir.path, "--verify"])
        #expect(r.status == 1)
        #expect(r.stdout.contains("verify: BAD segment 1"))
        #expect(r.stdout.contains("offset 64: frame checksum mismatch"))
    }

    @Test func verifyCoversIndexFilesAndTheManifest() throws {
        let dir = TempDir()
        let store = try writeStore(dir, maintain: true)
        store.close()
        let index = dir.file("seg-0000000001.sgi")
        let h = try #require(FileHandle(forUpdatingAtPath: index))
        let size = h.seekToEndOfFile()
        try h.seek(toOffset: size - 30)
        let b = h.readData(ofLength: 1)[0]
        try h.seek(toOffset: size - 30)
        h.write(Data([b ^ 0x08]))
        try h.close()
        var r = try runProduct("segdump", [dir.path, "--verify"])
        #expect(r.status == 1)
        #expect(r.stdout.contains("verify: BAD index of segment 1"), "\(r.stdout)")
        #expect(r.stdout.contains("fails its checksum"))

        try "sutra-grid-events manifest 1\ngeneration 9\nchecksum 0000000000000000\n".write(
            toFile: dir.file("MANIFEST"), atomically: true, encoding: .utf8)
        r = try runProduct("segdump", [dir.path, "--verify"])
        #expect(r.stdout.contains("verify: BAD manifest"), "\(r.stdout)")
    }

    @Test func missingPathIsAClearError() throws {
        let r = try runProduct("segdump", ["/nonexistent/dir"])
        #expect(r.status != 0)
        #expect(r.stderr.contains("no such file or directory"))
    }
}
