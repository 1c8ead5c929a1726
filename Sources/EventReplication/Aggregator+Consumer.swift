import Foundation
import GridEvents
import NATSClient

/// The aggregator's durable consumer: set up, checked every 2 s that it still delivers what the stream holds, and
/// made again from the first stream sequence not processed when it does not (`StreamProgress`). Pull loop only.
extension Aggregator {
    /// The consumer's settings; reading from `start` (a stream sequence) when given, else from the stream's start.
    func consumerConfig(startingAt start: UInt64? = nil) -> ConsumerConfig {
        var cc = ConsumerConfig(durableName: config.durableName)
        cc.ackWait = Int64(Self.ackWait.components.seconds) * 1_000_000_000
        cc.maxDeliver = -1
        cc.maxAckPending = config.maxAckPending
        cc.filterSubject = config.streamSubjects
        if let start, start > 1 {
            cc.deliverPolicy = "by_start_sequence"
            cc.optStartSeq = start
        }
        return cc
    }

    func setUp(_ c: NATSConnection, _ js: JetStream) async -> Bool {
        var logged = false
        while !Task.isCancelled {
            if c.connectionState != .connected {
                try? await Task.sleep(for: .milliseconds(50))
                continue
            }
            do {
                let stream = try await js.ensureStream(streamConfig(config, knownServers: c.knownServers.count))
                streamIsOurs = stream.config.subjects == [config.streamSubjects]
                let existing = try await js.consumerInfo(stream: config.stream, consumer: config.durableName)
                if !setUpBefore {
                    // This run's progress starts at the lower of what the positions file says was processed and
                    // what the server says was acknowledged (a consumer made again past messages never processed
                    // here shows a higher ack floor).
                    progress = StreamProgress(floor: [savedFloor, existing?.ackFloor.streamSeq].compactMap { $0 }.min() ?? 0)
                }
                let start = startSequence(stream)
                var cc = consumerConfig(startingAt: existing == nil ? start : nil)
                if let existing {
                    // Kept as it was made (an earlier reset may have made it from a sequence).
                    cc.deliverPolicy = existing.config.deliverPolicy
                    cc.optStartSeq = existing.config.optStartSeq
                }
                let info = try await js.createConsumer(stream: config.stream, config: cc)
                setUpBefore = true
                if info.numAckPending > 0 && !order.strictNewHosts {
                    // Messages an earlier run received and never acknowledged come back after the ack wait: a host
                    // without a saved position may have some, so its first message does not start its chain.
                    order.strictNewHosts = true
                }
                logger.info("aggregator: consuming \(config.stream) as \(config.durableName) (\(info.numAckPending) delivered earlier and not acknowledged\(existing == nil && start > 1 ? "; made again from stream sequence \(start)" : ""))")
                lastDelivery = Date()
                note { $0.lastError = nil; $0.ready = true }
                return true
            } catch let e as NATSError {
                if case .streamConfigConflict = e {
                    logger.error("aggregator: \(e); retrying every 30 s")
                    note { $0.lastError = e.description }
                    try? await Task.sleep(for: .seconds(30))
                    continue
                }
                if !logged { logger.warning("aggregator: cannot set up the consumer yet: \(e); retrying") }
                logged = true
                note { $0.lastError = e.description }
                try? await Task.sleep(for: .milliseconds(500))
            } catch {
                note { $0.lastError = "\(error)" }
                try? await Task.sleep(for: .milliseconds(500))
            }
        }
        return false
    }

    /// The first stream sequence not processed, given the stream's bounds: what left the stream cannot come, and a
    /// stream that ends before what was processed was made again (or lost its last messages) and is read again
    /// from its start.
    func startSequence(_ stream: StreamInfo) -> UInt64 {
        let now = Date()
        if progress.floor > stream.state.lastSeq {
            logger.warning("aggregator: stream \(config.stream) ends at sequence \(stream.state.lastSeq), before the \(progress.floor) processed here (made again, or it lost its last messages); reading it again from its start")
            progress.restart(floor: 0)
        }
        progress.streamStarts(at: stream.state.firstSeq, now: now)
        return progress.floor + 1
    }

    /// Every 2 s: whether the consumer still delivers what the stream holds (`StreamProgress`); when it does not,
    /// it is made again from the first sequence not processed. The consumer's and the stream's state go to
    /// `/api/stats` (`consumer_state`) whenever they are read.
    func watch(_ js: JetStream) async throws {
        let now = Date()
        guard now.timeIntervalSince(lastCheck) >= 2 else { return }
        lastCheck = now
        let idle = now.timeIntervalSince(lastDelivery)
        let storing = lastStoreFailure.map { now.timeIntervalSince($0) < Self.stallLimit } ?? false
        let hole = streamIsOurs && !storing && progress.holeOpen(longerThan: Self.stallLimit, now: now)
        guard hole || idle >= 2 else { return }
        let consumer = try await js.consumerInfo(stream: config.stream, consumer: config.durableName)
        guard let stream = try await js.streamInfo(config.stream) else {
            throw NATSError.pullTerminated("stream \(config.stream) is gone")
        }
        note {
            $0.consumerState = ConsumerState(
                exists: consumer != nil, deliveredStreamSequence: consumer?.delivered.streamSeq,
                ackFloorStreamSequence: consumer?.ackFloor.streamSeq, numPending: consumer?.numPending,
                numAckPending: consumer?.numAckPending, numRedelivered: consumer?.numRedelivered,
                streamFirstSequence: stream.state.firstSeq, streamLastSequence: stream.state.lastSeq,
                processedFloor: progress.floor, idleSeconds: idle, at: GridClock.nowMicros())
        }
        let floorBefore = progress.floor
        let start = startSequence(stream)
        var why: String?
        if progress.floor < floorBefore {
            why = "the stream was made again or lost its last messages"
        } else if consumer == nil {
            why = "consumer \(config.durableName) is gone"
        } else if streamIsOurs && !storing && progress.holeOpen(longerThan: Self.stallLimit, now: now) {
            why = "stream sequence \(start) has not come in \(Int(Self.stallLimit)) s while \(progress.outOfOrder) later one(s) did"
        } else if let consumer, idle >= Self.stallLimit, !storing,
                  (streamIsOurs && stream.state.lastSeq >= start) || consumer.numPending > 0 || consumer.numAckPending > 0 {
            why = "nothing delivered for \(Int(idle)) s while the stream holds sequences \(start)...\(stream.state.lastSeq) (the consumer says \(consumer.numPending) pending, \(consumer.numAckPending) awaiting acks)"
        }
        guard let why else { return }
        logger.warning("aggregator: \(why); making consumer \(config.durableName) again from stream sequence \(start)")
        do {
            try await js.deleteConsumer(stream: config.stream, consumer: config.durableName)
        } catch NATSError.jetStream(let code, let errCode, _) where code == 404 || errCode == 10014 {
            // Already gone.
        }
        _ = try await js.createConsumer(stream: config.stream, config: consumerConfig(startingAt: start))
        progress.restart(floor: start - 1)
        lastDelivery = Date()
        note {
            $0.consumerRemade += 1
            $0.lastConsumerRemade = why
        }
    }
}
