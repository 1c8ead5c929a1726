import Testing
@testable import EventStore

/// The block cache keeps the most recently used blocks within its byte budget and evicts in recency order.
@Suite struct BlockCacheTests {
    private func block(_ size: Int, _ fill: UInt8) -> DecodedBlock {
        let b = DecodedBlock(capacity: size)
        b.storage.initializeMemory(as: UInt8.self, repeating: fill)
        b.count = size
        return b
    }

    @Test func evictsTheLeastRecentlyUsedFirst() {
        let cache = BlockCache(capacity: 4 * 1000)
        var loads = 0
        func get(_ k: UInt64) -> UInt8 {
            cache.get(k) { loads += 1; return block(1000, UInt8(k)) }!.bytes[0]
        }
        for k in 0..<4 { #expect(get(UInt64(k)) == UInt8(k)) }
        #expect(loads == 4 && cache.count == 4)
        _ = get(0)  // 0 becomes the most recent; 1 is now the oldest
        #expect(loads == 4)
        _ = get(4)  // evicts 1
        #expect(loads == 5 && cache.count == 4 && cache.residentBytes == 4000)
        _ = get(0); _ = get(2); _ = get(3); _ = get(4)
        #expect(loads == 5)
        _ = get(1)  // was evicted: loads again, evicting 0 (the oldest use now)
        #expect(loads == 6)
        _ = get(2); _ = get(3); _ = get(4); _ = get(1)
        #expect(loads == 6)
        _ = get(0)
        #expect(loads == 7)
    }

    @Test func matchesAReferenceLRUOnRandomUse() {
        let cache = BlockCache(capacity: 16 * 100)
        var reference: [UInt64] = []  // least recent first
        var rng = SystemRandomNumberGenerator()
        for _ in 0..<20_000 {
            let k = UInt64.random(in: 0..<40, using: &rng)
            var loaded = false
            let b = cache.get(k) { loaded = true; return block(100, UInt8(k)) }!
            #expect(b.bytes[99] == UInt8(k))
            let wasCached = reference.contains(k)
            #expect(loaded == !wasCached)
            reference.removeAll { $0 == k }
            reference.append(k)
            if reference.count > 16 { reference.removeFirst() }
            #expect(cache.count == reference.count)
        }
    }

    @Test func removingASegmentDropsOnlyItsBlocks() {
        let cache = BlockCache(capacity: 1 << 20)
        for s in 1...3 as ClosedRange<UInt64> {
            for i in 0..<5 { _ = cache.get(BlockCache.key(segment: s, block: i)) { block(64, 1) } }
        }
        cache.remove(segment: 2)
        #expect(cache.count == 10 && cache.residentBytes == 640)
        var loads = 0
        _ = cache.get(BlockCache.key(segment: 2, block: 3)) { loads += 1; return block(64, 1) }
        _ = cache.get(BlockCache.key(segment: 3, block: 3)) { loads += 1; return block(64, 1) }
        #expect(loads == 1)
    }
}
