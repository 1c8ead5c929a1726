@testable import EventEmitter
import Testing

/// The emitter's delivery decisions, checked over every combination of the states they depend on: no process,
/// no socket, no thread. Each rule of `DeliveryPlan` is a property that must hold in every state.
@Suite struct DeliveryPlanTests {
    typealias State = DeliveryPlan.DeliveryState

    /// Every state worth telling apart: each flag both ways, counts at 0, 1, at and past their limits.
    static let allStates: [State] = {
        var out: [State] = []
        let flags = [false, true]
        for connected in flags {
            for closing in flags {
                for closingDrained in flags {
                    for storeRefused in flags {
                        for inFlight in 0...DeliveryPlan.windowSize {
                            for retry in [0, 1, 2] {
                                for cautious in flags {
                                    for ownSpool in flags {
                                        for adopted in [0, 1] {
                                            for queued in [0, 1, 5, 10] {
                                                for batchDelay in flags {
                                                    for inTransit in flags {
                                                        for dropped in flags {
                                                            for scanDue in flags {
                                                                out.append(State(
                                                                    connected: connected, closing: closing, closingDrained: closingDrained,
                                                                    storeRefused: storeRefused, inFlightBatches: inFlight, retryBatches: retry,
                                                                    cautious: cautious, ownSpoolPending: ownSpool, adoptedSpools: adopted,
                                                                    queued: queued, highWaterMark: 8, maxBatchEvents: 5, batchDelay: batchDelay,
                                                                    inTransit: inTransit, droppedUnreported: dropped, orphanScanDue: scanDue))
                                                            }
                                                        }
                                                    }
                                                }
                                            }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        return out
    }()

    @Test func everyStateHasOneStepThatKeepsTheRules() {
        #expect(Self.allStates.count > 100_000)
        var seen: Set<String> = []
        for s in Self.allStates {
            let step = DeliveryPlan.next(s)
            seen.insert("\(step)")
            let windowEmpty = s.inFlightBatches == 0
            switch step {
            case .finish:
                // Finishing never abandons a batch in flight, and while connected and not drained only when
                // nothing at all is left to send.
                #expect(s.closing && windowEmpty, "\(s)")
                if s.connected && !s.closingDrained {
                    #expect(s.retryBatches == 0 && !s.ownSpoolPending && s.queued == 0 && s.adoptedSpools == 0, "\(s)")
                }
            case .backOffRefused:
                #expect(!s.connected && s.storeRefused, "\(s)")
            case .connect:
                #expect(!s.connected && !s.storeRefused, "\(s)")
            case .reportDrops:
                #expect(s.connected && s.droppedUnreported && windowEmpty && s.queued < s.highWaterMark, "\(s)")
            case .markDrained:
                #expect(s.connected && s.closing && windowEmpty, "\(s)")
            case .collectAck:
                // Waiting for an ack needs something in flight on a live connection.
                #expect(s.connected && !windowEmpty, "\(s)")
            case .resend:
                #expect(s.connected && !s.closing && s.retryBatches > 0 && s.inFlightBatches < s.windowLimit, "\(s)")
            case .replayOwnSpool, .replayAdoptedSpool:
                // Replays run alone, after every resend, never while closing.
                #expect(s.connected && !s.closing && windowEmpty && s.retryBatches == 0, "\(s)")
                if step == .replayAdoptedSpool { #expect(!s.ownSpoolPending && s.adoptedSpools > 0, "\(s)") }
            case .sendQueue, .waitForBatch:
                // The queue goes after resends and spools, never past the window, never while its oldest events
                // are on their way to the spool, never while closing.
                #expect(s.connected && !s.closing && s.retryBatches == 0 && !s.ownSpoolPending && s.adoptedSpools == 0, "\(s)")
                #expect(s.queued > 0 && !s.inTransit && s.inFlightBatches < DeliveryPlan.windowSize, "\(s)")
                if step == .waitForBatch { #expect(windowEmpty && s.batchDelay && s.queued < s.maxBatchEvents, "\(s)") }
            case .waitForSpill:
                #expect(s.connected && windowEmpty && s.inTransit, "\(s)")
            case .scanOrphans, .idle:
                // Idle only when there is nothing to send, resend, replay or collect.
                #expect(s.connected && !s.closing && windowEmpty && s.retryBatches == 0, "\(s)")
                #expect(!s.ownSpoolPending && s.adoptedSpools == 0 && s.queued == 0 && !s.inTransit, "\(s)")
                #expect(s.orphanScanDue == (step == .scanOrphans), "\(s)")
            }
        }
        // Every step is reachable.
        #expect(seen.count == 14, "\(seen.sorted())")
    }

    @Test func cautiousSendsOneBatchAtATime() {
        var s = State(connected: true, inFlightBatches: 0, retryBatches: 3, cautious: true)
        #expect(DeliveryPlan.next(s) == .resend)
        s.inFlightBatches = 1
        #expect(DeliveryPlan.next(s) == .collectAck)
        s.cautious = false
        #expect(DeliveryPlan.next(s) == .resend)
        s.inFlightBatches = DeliveryPlan.windowSize
        #expect(DeliveryPlan.next(s) == .collectAck)
    }

    /// A walk through a connection's life: each step's effect applied to the state by hand, as the worker does.
    @Test func aLostConnectionResendsBeforeSpoolAndQueue() {
        var s = State(connected: true, inFlightBatches: 2, ownSpoolPending: true, queued: 10, highWaterMark: 100, maxBatchEvents: 5)
        #expect(DeliveryPlan.next(s) == .collectAck)  // the spool waits for the window to empty
        // The connection drops: what was in flight becomes the retry list.
        s.connected = false
        s.retryBatches = s.inFlightBatches
        s.inFlightBatches = 0
        #expect(DeliveryPlan.next(s) == .connect)
        s.connected = true
        #expect(DeliveryPlan.next(s) == .resend)
        s.retryBatches -= 1
        s.inFlightBatches += 1
        #expect(DeliveryPlan.next(s) == .resend)
        s.retryBatches -= 1
        s.inFlightBatches += 1
        #expect(DeliveryPlan.next(s) == .collectAck)
        s.inFlightBatches = 0
        #expect(DeliveryPlan.next(s) == .replayOwnSpool)
        s.ownSpoolPending = false
        #expect(DeliveryPlan.next(s) == .sendQueue)
        s.queued = 0
        #expect(DeliveryPlan.next(s) == .idle)
        s.closing = true
        #expect(DeliveryPlan.next(s) == .finish)
    }
}
