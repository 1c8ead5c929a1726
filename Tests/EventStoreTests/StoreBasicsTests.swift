import Foundation
import StoreFixtures
import Testing
@_spi(Testing) import EventStore

@Suite("Store basics: append, indexes, reads")
struct StoreBasicsTests {
    let t0: Int64 = 1_764_000_000_000_000

    func event(_ id: String, type: UInt16, ts: Int64, entities: [String], payload: String = "") -> [Record] {
        let c = ConceptRecord(id: id, typeCode: type, timestamp: ts, entities: entities, payload: Array(payload.utf8))
        var records: [Record] = [.concept(c)]
        for e in entities {
            records.append(.adjacency(AdjacencyEntry(source: Hash.id(e), target: c.idHash, edgeType: type, timestamp: ts)))
        }
        records.append(.adjacency(AdjacencyEntry(source: c.idHash, target: Hash.id("bucket-\(ts / 60_000_000)"), edgeType: 999, timestamp: ts)))
        return records
    }

    @Test func appendAndReadById() throws {
        let dir = TempDir()
        let store = try open(dir)
        let receipt = try store.append(event("event-spawn_failed-1", type: 12, ts: t0, entities: ["node-7", "agent-001"], payload: "disk full"))
        #expect(receipt.isSynced)
        #expect(receipt.recordCount == 4)
        let e = try #require(store.event(id: "event-spawn_failed-1"))
        #expect(e.typeCode == 12)
        #expect(e.timestamp == t0)
        #expect(e.entities == ["node-7", "agent-001"])
        #expect(e.payload == Array("disk full".utf8))
        #expect(store.event(id: "event-spawn_failed-2") == nil)
    }

    @Test func durabilityModesReportWhatTheyDid() throws {
        for mode in Durability.allCases {
            let dir = TempDir()
            let store = try open(dir, durability: mode)
            let r = try store.append(event("event-x-\(mode)", type: 1, ts: t0, entities: ["agent-1"]))
            #expect(r.isSynced == (mode != .none))
        }
    }

    @Test func entityTimelineNewestFirstWithOutOfOrderArrivals() throws {
        let dir = TempDir()
        let store = try open(dir)
        // Two producers' batches arrive out of time order.
        let times: [Int64] = [5, 1, 4, 2, 3, 9, 7, 8, 6, 0]
        for (i, dt) in times.enumerated() {
            try store.append(event("event-a-\(i)", type: 2, ts: t0 + dt * 1_000_000, entities: ["agent-001", "node-\(i % 2)"]))
        }
        let timeline = store.timeline(entity: "agent-001", limit: 4)
        #expect(timeline.map(\.timestamp) == [9, 8, 7, 6].map { t0 + $0 * 1_000_000 })
        let all = store.timeline(entity: "agent-001", limit: 100)
        #expect(all.count == 10)
        #expect(all.map(\.timestamp) == all.map(\.timestamp).sorted(by: >))
        // Paging with the last position as cursor continues where the first page stopped.
        let next = store.timeline(entity: "agent-001", limit: 4, before: timeline.last!.position)
        #expect(next.map(\.timestamp) == [5, 4, 3, 2].map { t0 + $0 * 1_000_000 })
        #expect(store.timeline(entity: "node-0", limit: 100).count == 5)
        #expect(store.timeline(entity: "nobody", limit: 10).isEmpty)
    }

    @Test func typeInTimeRangeAndCount() throws {
        let dir = TempDir()
        let store = try open(dir)
        for i in 0..<100 {
            let type: UInt16 = i % 3 == 0 ? 30 : 11
            try store.append(event("event-t-\(i)", type: type, ts: t0 + Int64(i) * 60_000_000, entities: ["node-\(i)"]))
        }
        let range = (t0 + 10 * 60_000_000)..<(t0 + 40 * 60_000_000)  // minutes 10..<40
        let expected = (10..<40).filter { $0 % 3 == 0 }
        #expect(store.count(type: 30, in: range) == expected.count)
        let newest = store.events(type: 30, in: range, limit: 3)
        #expect(newest.map(\.id) == expected.suffix(3).reversed().map { "event-t-\($0)" })
        let oldest = store.events(type: 30, in: range, limit: 3, newestFirst: false)
        #expect(oldest.map(\.id) == expected.prefix(3).map { "event-t-\($0)" })
        // Cursor pagination over the whole range visits each event once.
        var seen: [String] = []
        var cursor: EventPosition?
        while true {
            let page = store.events(type: 30, in: range, limit: 4, after: cursor)
            if page.isEmpty { break }
            seen += page.map(\.id)
            cursor = page.last!.position
        }
        #expect(seen == expected.reversed().map { "event-t-\($0)" })
        // A cursor outside the range gives an empty page, in both orders.
        let early = EventPosition(timestamp: range.lowerBound - 1, location: 0)
        let late = EventPosition(timestamp: range.upperBound + 1, location: 0)
        #expect(store.events(type: 30, in: range, limit: 5, after: early).isEmpty)
        #expect(store.events(type: 30, in: range, limit: 5, newestFirst: false, after: late).isEmpty)
        #expect(store.events(type: 30, in: range, limit: 50, after: late).count == expected.count)
        #expect(store.count(type: 11) == 100 - 34)
        #expect(store.typeCounts() == [30: 34, 11: 66])
    }

    @Test func idPrefixReads() throws {
        let dir = TempDir()
        let store = try open(dir)
        try store.append(event("event-spawn_failed-a", type: 12, ts: t0 + 1, entities: ["node-1"]))
        try store.append(event("event-spawn_requested-b", type: 10, ts: t0 + 2, entities: ["node-1"]))
        try store.append(event("event-spawn_failed-c", type: 12, ts: t0 + 3, entities: ["node-2"]))
        try store.append(event("event-stop_failed-d", type: 22, ts: t0 + 4, entities: ["node-2"]))
        #expect(store.events(idPrefix: "event-spawn_*").map(\.id) == ["event-spawn_failed-c", "event-spawn_requested-b", "event-spawn_failed-a"])
        #expect(store.events(idPrefix: "event-spawn_failed-").map(\.id) == ["event-spawn_failed-c", "event-spawn_failed-a"])
        #expect(store.events(idPrefix: "event-spawn_failed-c").map(\.id) == ["event-spawn_failed-c"])
        #expect(store.events(idPrefix: "event-", limit: 2).map(\.id) == ["event-stop_failed-d", "event-spawn_failed-c"])
        #expect(store.events(idPrefix: "nothing").isEmpty)
    }

    @Test func neighborsOfEntityEventAndBucket() throws {
        let dir = TempDir()
        let store = try open(dir)
        try store.append(event("event-crash-1", type: 30, ts: t0, entities: ["node-7", "agent-001"]))
        try store.append(event("event-crash-2", type: 30, ts: t0 + 1, entities: ["node-8", "agent-001"]))
        let ofAgent = store.neighbors(of: "agent-001")
        #expect(Set(ofAgent.compactMap(\.eventId)) == ["event-crash-1", "event-crash-2"])
        #expect(ofAgent.allSatisfy { $0.outgoing && $0.edgeType == 30 })
        let ofEvent = store.neighbors(of: "event-crash-1")
        let bucket = Hash.id("bucket-\(t0 / 60_000_000)")
        #expect(Set(ofEvent.map(\.node)) == [Hash.id("node-7"), Hash.id("agent-001"), bucket])
        #expect(ofEvent.first { $0.node == bucket }?.outgoing == true)
        #expect(ofEvent.first { $0.node == bucket }?.edgeType == 999)
        let ofBucket = store.neighbors(ofHash: bucket)
        #expect(Set(ofBucket.compactMap(\.eventId)) == ["event-crash-1", "event-crash-2"])
        #expect(ofBucket.allSatisfy { !$0.outgoing })
    }

    @Test func timeRangeUsesSparseIndexAcrossSegments() throws {
        let dir = TempDir()
        let store = try open(dir, capacity: 64 << 10)
        for b in 0..<40 {
            try store.append(SyntheticEvents.batch(run: "r", batch: b, events: 20))
        }
        #expect(store.stats.segments > 3)
        // Batch b holds timestamps base + b*1000 + 0..<20.
        let base: Int64 = 1_764_000_000_000_000
        let range = (base + 10_000)..<(base + 12_010)
        let got = store.events(in: range, limit: 1000)
        #expect(got.count == 20 + 20 + 10)
        #expect(got.map(\.timestamp) == got.map(\.timestamp).sorted(by: >))
        #expect(got.allSatisfy { range.contains($0.timestamp) })
        let newest5 = store.events(in: range, limit: 5)
        #expect(newest5.map(\.timestamp) == (0..<5).map { base + 12_009 - Int64($0) })
        let oldest3 = store.events(in: range, limit: 3, newestFirst: false)
        #expect(oldest3.map(\.timestamp) == [base + 10_000, base + 10_001, base + 10_002])
    }

    @Test func rollingAndReopenRebuildSameIndexes() throws {
        let dir = TempDir()
        var ids: [String] = []
        do {
            let store = try open(dir, capacity: 64 << 10)
            for b in 0..<30 {
                try store.append(SyntheticEvents.batch(run: "roll", batch: b, events: 25))
                ids += (0..<25).map { SyntheticEvents.id(run: "roll", batch: b, index: $0) }
            }
            #expect(store.stats.segments >= 4)
            #expect(store.stats.sealedSegments == store.stats.segments - 1)
            store.close()
        }
        let store = try open(dir, capacity: 64 << 10)
        #expect(store.recovery.concepts == ids.count)
        #expect(store.recovery.truncated.isEmpty && store.recovery.skipped.isEmpty)
        let (read, problems) = allSyntheticIds(store)
        #expect(problems.isEmpty)
        #expect(read == ids)
        for id in ids.shuffled().prefix(50) { #expect(store.event(id: id)?.id == id) }
        #expect(store.timeline(entity: "agent-3", limit: 1000).count == ids.filter { $0.hasSuffix("-3") || $0.hasSuffix("-103") }.count)
        // Appends continue in a fresh active segment after reopening.
        try store.append(SyntheticEvents.batch(run: "roll", batch: 30, events: 5))
        #expect(store.event(id: SyntheticEvents.id(run: "roll", batch: 30, index: 4)) != nil)
    }

    @Test func duplicateIdsAreStoredOnce() throws {
        let dir = TempDir()
        let store = try open(dir)
        let batch = SyntheticEvents.batch(run: "dup", batch: 0, events: 10)
        try store.append(batch)
        try store.append(batch)  // a resend after a lost ack
        #expect(store.stats.events == 10)
        #expect(store.stats.duplicatesIgnored == 10)
        #expect(store.timeline(entity: "agent-1", limit: 100).count == 1)
        store.close()
        let reopened = try open(dir)
        #expect(reopened.stats.events == 10)
        #expect(allSyntheticIds(reopened).ids.count == 10)
    }

    @Test func secondOpenerIsToldTheHoldersPid() throws {
        let dir = TempDir()
        let store = try open(dir)
        let error = try #require(caughtStoreError { _ = try open(dir) })
        #expect(error.code == .locked)
        #expect(error.message.contains("pid \(getpid())"))
        store.close()
        _ = try open(dir)  // released on close
    }

    @Test func readOnlyOpenSeesDataAndRefusesAppends() throws {
        let dir = TempDir()
        let writer = try open(dir)
        try writer.append(SyntheticEvents.batch(run: "ro", batch: 0, events: 3))
        let reader = try open(dir, readOnly: true)  // no lock taken: works while the writer holds it
        #expect(reader.stats.events == 3)
        expectStoreError(.notWritable) { try reader.append(SyntheticEvents.batch(run: "ro", batch: 1, events: 1)) }
    }

    @Test func badInputGetsClearErrors() throws {
        let dir = TempDir()
        let store = try open(dir, capacity: 64 << 10)
        expectStoreError(.invalidArgument) { try store.append([]) }
        expectStoreError(.invalidArgument) {
            try store.append([.concept(ConceptRecord(id: "has space", typeCode: 1, timestamp: t0))])
        }
        expectStoreError(.invalidArgument) {
            try store.append([.concept(ConceptRecord(id: "", typeCode: 1, timestamp: t0))])
        }
        expectStoreError(.invalidArgument) {
            try store.append([.concept(ConceptRecord(id: String(repeating: "x", count: 300), typeCode: 1, timestamp: t0))])
        }
        expectStoreError(.invalidArgument) {
            try store.append([.concept(ConceptRecord(id: "event-ok", typeCode: 1, timestamp: t0, entities: ["bad\u{0}id"]))])
        }
        expectStoreError(.invalidArgument) {
            try store.append([.concept(ConceptRecord(id: "event-big", typeCode: 1, timestamp: t0, payload: [UInt8](repeating: 1, count: Limits.maxPayload + 1)))])
        }
        expectStoreError(.invalidArgument) {
            var c = ConceptRecord(id: "event-hash", typeCode: 1, timestamp: t0)
            c.idHash ^= 1
            try store.append([.concept(c)])
        }
        expectStoreError(.batchTooLarge) {
            try store.append([.concept(ConceptRecord(id: "event-huge", typeCode: 1, timestamp: t0, payload: [UInt8](repeating: 1, count: 70_000)))])
        }
        expectStoreError(.invalidArgument) { _ = try EventStore.open(at: dir.path + "/x", options: StoreOptions(segmentCapacity: 10)) }
        for blockBytes in [4095, (64 << 10) + 1] {
            var o = StoreOptions()
            o.compactionBlockBytes = blockBytes
            expectStoreError(.invalidArgument) { _ = try EventStore.open(at: dir.path + "/x", options: o) }
        }
        // Nothing of the refused batches was stored, and the store still works.
        #expect(store.stats.events == 0)
        try store.append(SyntheticEvents.batch(run: "ok", batch: 0, events: 1))
        #expect(store.stats.events == 1)
    }

    @Test func closedStoreRefusesAppends() throws {
        let dir = TempDir()
        let store = try open(dir)
        store.close()
        expectStoreError(.closed) { try store.append(SyntheticEvents.batch(run: "c", batch: 0, events: 1)) }
    }

    @Test func concurrentAppendersShareSyncs() throws {
        let dir = TempDir()
        let store = try open(dir, capacity: 1 << 20)
        let threads = 4
        let perThread = 40
        DispatchQueue.concurrentPerform(iterations: threads) { t in
            for b in 0..<perThread {
                _ = try! store.append(SyntheticEvents.batch(run: "c\(t)", batch: b, events: 5))
            }
        }
        #expect(store.stats.events == threads * perThread * 5)
        let (ids, problems) = allSyntheticIds(store)
        #expect(problems.isEmpty)
        #expect(Set(ids).count == ids.count)
    }

    @Test func statsCountWhatIsStored() throws {
        let dir = TempDir()
        let store = try open(dir)
        try store.append(SyntheticEvents.batch(run: "s", batch: 0, events: 10))
        let s = store.stats
        #expect(s.events == 10)
        #expect(s.adjacencyEntries == 30)
        #expect(s.segments == 1)
        #expect(s.lastSequence == 1)
        #expect(s.dataBytes > 64)
        #expect(s.minTimestamp == 1_764_000_000_000_000)
    }
}
