@testable import EventEmitter
import Testing

/// `DeliveryWindow` against a simple model: random sequences of sends, acks, rejections and lost connections, run
/// through `DeliveryPlan` as the worker runs them. What was acknowledged must be exactly the batches sent, each
/// once, in the order they were first sent, except those rejected (dropped and counted); nothing is lost.
@Suite struct DeliveryWindowTests {
    @Test(arguments: 0..<200)
    func randomLivesDeliverEverythingOnceInOrder(seed: Int) {
        var rng = Rng(state: UInt64(seed) &+ 1)
        var window = DeliveryWindow<[Int]>()
        var queue: [[Int]] = (0..<30).map { b in Array((b * 3)..<(b * 3 + 1 + b % 3)) }
        let allBatches = queue
        var acked: [[Int]] = []
        var dropped: [[Int]] = []
        var connected = true
        var steps = 0
        while steps < 10_000, !(queue.isEmpty && window.inFlight.isEmpty && window.retry.isEmpty) {
            steps += 1
            let state = DeliveryPlan.DeliveryState(
                connected: connected, inFlightBatches: window.inFlight.count, retryBatches: window.retry.count,
                cautious: window.cautious, queued: queue.count, highWaterMark: 1000, maxBatchEvents: 1)
            switch DeliveryPlan.next(state) {
            case .connect:
                connected = true
            case .resend:
                #expect(window.inFlight.count < (window.cautious ? 1 : DeliveryPlan.windowSize))
                window.sent(window.takeRetry())
            case .sendQueue, .waitForBatch:
                #expect(window.inFlight.count < DeliveryPlan.windowSize)
                window.sent(queue.removeFirst())
            case .collectAck:
                // The daemon acks the oldest batch, rejects it, or the connection drops.
                switch rng.next(10) {
                case 0:
                    _ = window.lost()
                    connected = false
                case 1:
                    if let bad = window.rejected() { dropped.append(bad) }
                    _ = window.lost()  // a rejection closes the connection
                    connected = false
                default:
                    if let first = window.acknowledged() { acked.append(first) }
                }
            default:
                Issue.record("unexpected step for \(state)")
                return
            }
            #expect(window.inFlightEvents == window.inFlight.reduce(0) { $0 + $1.count })
            #expect(window.inFlight.count <= DeliveryPlan.windowSize)
            // Cautious governs the resends: one in flight at a time while any are left.
            if window.cautious, !window.retry.isEmpty { #expect(window.inFlight.count <= 1) }
        }
        #expect(queue.isEmpty && window.inFlight.isEmpty && window.retry.isEmpty, "seed \(seed) did not finish")
        // Exactly once: acknowledged and dropped together are every batch, none twice.
        #expect((acked + dropped).sorted { $0[0] < $1[0] } == allBatches, "seed \(seed)")
        // In order: acknowledged batches keep the order they were first sent in.
        #expect(acked == acked.sorted { $0[0] < $1[0] }, "seed \(seed)")
        // A batch is dropped only when it was alone in flight.
        #expect(dropped.count <= allBatches.count)
    }

    @Test func rejectionWithSeveralInFlightTurnsCautiousUntilTheResendsAreThrough() {
        var w = DeliveryWindow<[Int]>()
        w.sent([1])
        w.sent([2])
        #expect(w.rejected() == nil && w.cautious)
        #expect(w.lost() == 2)
        #expect(w.retry == [[1], [2]] && w.inFlight.isEmpty)
        w.sent(w.takeRetry())
        #expect(w.rejected() == [1])
        _ = w.lost()
        w.sent(w.takeRetry())
        #expect(w.acknowledged() == [2])
        #expect(!w.cautious)
        #expect(w.acknowledged() == nil)
    }
}
