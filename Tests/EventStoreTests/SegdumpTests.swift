import Foundation
import Testing
@_spi(Testing) import EventStore

@Suite("segdump")
struct SegdumpTests {
    func writeStore(_ dir: TempDir) throws -> EventStore {
        let store = try open(dir, capacity: 64 << 10)
        for b in 0..<30 { try store.append(SyntheticEvents.batch(run: "sd", batch: b, events: 10)) }
        return store
    }

    @Test func verifyListsEveryRecordOfALiveStore() throws {
        let dir = TempDir()
        let store = try writeStore(dir)  // still open and locked: segdump must work read-only beside it
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
        #expect(table.stdout.split(separator: "\n").count == store.stats.segments + 2)

        let records = try runProduct("segdump", [dir.file("seg-0000000001.sgs"), "--records"])
        #expect(records.stdout.contains("event  event-synthetic-sd-0-0  type 1"))
        #expect(records.stdout.contains("adj    agent-0 -> event-synthetic-sd-0-0  edge 1"))
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

    @Test func missingPathIsAClearError() throws {
        let r = try runProduct("segdump", ["/nonexistent/dir"])
        #expect(r.status != 0)
        #expect(r.stderr.contains("no such file or directory"))
    }
}
