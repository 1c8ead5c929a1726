@testable import EventEmitter
import Testing

/// The emitter's queue on its own: never more than its capacity, first in first out, events put back in front in
/// their order with the newest kept, and the rule for waking the threads after an append.
@Suite struct BoundedQueueTests {
    /// Appends `element` unless the queue is full, as `EmitterCore.enqueue` does; whether it was appended.
    func offer(_ q: inout BoundedQueue<Int>, _ element: Int) -> Bool {
        if q.isFull { return false }
        q.append(element)
        return true
    }

    @Test func aFullQueueSaysSoAndKeepsWhatItHas() {
        var q = BoundedQueue<Int>(capacity: 3)
        #expect(q.capacity == 3 && q.isEmpty && !q.isFull)
        #expect((1...5).map { offer(&q, $0) } == [true, true, true, false, false])
        #expect(q.count == 3 && q.isFull)
        #expect(q.removeFirst(max: 10) == [1, 2, 3])
        #expect(q.isEmpty && q.removeFirst() == nil && q.first == nil)
        // A capacity below 1 still holds one.
        var one = BoundedQueue<Int>(capacity: 0)
        #expect(offer(&one, 7) && !offer(&one, 8) && one.first == 7)
    }

    @Test func puttingBackKeepsOrderAndDropsTheOldestThatDoNotFit() {
        var q = BoundedQueue<Int>(capacity: 5)
        for i in 10...12 { q.append(i) }
        // Two fit in front; of [1, 2, 3, 4] the newest two (3, 4) are kept, the oldest two left out.
        #expect(q.prepend(contentsOf: [1, 2, 3, 4]) == 2)
        #expect(q.removeFirst(max: 10) == [3, 4, 10, 11, 12])
        #expect(q.prepend(contentsOf: [5, 6]) == 0)
        #expect(q.removeFirst(max: 1) == [5] && q.first == 6)
    }

    @Test func takingStopsAtTheFirstRefusedElement() {
        var q = BoundedQueue<Int>(capacity: 8)
        for i in [3, 4, 5, 1, 1] { q.append(i) }
        var sum = 0
        let taken = q.removeFirst(max: 10) { e in
            guard sum + e <= 8 else { return false }
            sum += e
            return true
        }
        // 3 + 4 = 7; 5 would pass the limit, and nothing after it is taken though 1 would fit.
        #expect(taken == [3, 4])
        #expect(q.removeFirst(max: 10) == [5, 1, 1])
        #expect(q.removeFirst(max: 0).isEmpty)
    }

    /// Random appends, takes and put-backs, wrapping round the ring many times, against an array with the same
    /// rules: the same elements in the same order, full exactly at the capacity, never more.
    @Test(arguments: 0..<50)
    func behavesAsABoundedArray(seed: Int) {
        var rng = Rng(state: UInt64(seed) &+ 7)
        let capacity = 1 + rng.next(9)
        var q = BoundedQueue<Int>(capacity: capacity)
        var model: [Int] = []
        var next = 0
        for _ in 0..<2000 {
            switch rng.next(4) {
            case 0, 1:
                next += 1
                let accepted = offer(&q, next)
                #expect(accepted == (model.count < capacity))
                if accepted { model.append(next) }
            case 2:
                let n = rng.next(capacity + 2)
                let taken = q.removeFirst(max: n)
                let expected = Array(model.prefix(n))
                model.removeFirst(expected.count)
                #expect(taken == expected)
            default:
                let back = (0..<rng.next(4)).map { _ in -rng.next(1000) }
                let left = q.prepend(contentsOf: back)
                let fit = min(back.count, capacity - model.count)
                #expect(left == back.count - fit)
                model.insert(contentsOf: back.suffix(fit), at: 0)
            }
            #expect(q.count == model.count && q.count <= capacity && q.first == model.first)
            #expect(q.isFull == (model.count == capacity))
        }
        #expect(q.removeFirst(max: capacity) == model)
    }

    @Test func anAppendWakesTheThreadsOnlyWhenThereIsWorkForThem() {
        func after(_ queued: Int, waiting: Bool = true, spilling: Bool = false, spills: Bool = true) -> QueueSignals.AfterAppend {
            QueueSignals.afterAppend(
                queued: queued, maxBatchEvents: 4, highWaterMark: 10, workerWaiting: waiting, spilling: spilling, spillsAboveHighWater: spills)
        }
        // Below a batch: the waiting worker sends what it has when its batch delay ends.
        #expect(after(3) == .init(wake: false, startSpilling: false))
        // A full batch wakes a waiting worker, never a busy one (it comes back for the queue by itself).
        #expect(after(4) == .init(wake: true, startSpilling: false))
        #expect(after(4, waiting: false) == .init(wake: false, startSpilling: false))
        // At the high-water mark the spool writer is started (and woken) once, if events go to the spool there.
        #expect(after(10, waiting: false) == .init(wake: true, startSpilling: true))
        #expect(after(11, waiting: false, spilling: true) == .init(wake: false, startSpilling: false))
        #expect(after(11, waiting: false, spills: false) == .init(wake: false, startSpilling: false))
        #expect(after(11, waiting: true, spills: false) == .init(wake: true, startSpilling: false))
    }
}
