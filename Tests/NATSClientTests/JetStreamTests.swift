import Foundation
import NATSClient
import NATSTestSupport
import NIOCore
import Testing

/// The JetStream API against a real single server and a real three-node cluster.
@Suite(.serialized, .enabled(if: NATSServerProcess.isInstalled, Comment(rawValue: natsMissing)))
struct JetStreamTests {
    func streamConfig(replicas: Int = 1) -> StreamConfig {
        var s = StreamConfig(name: "EVENTS", subjects: ["ev.>"])
        s.storage = "file"
        s.retention = "limits"
        s.numReplicas = replicas
        s.duplicateWindow = 120_000_000_000
        return s
    }

    @Test(.timeLimit(.minutes(1))) func publishPullAckTermAndDedup() async throws {
        let server = NATSServerProcess()
        try server.start()
        let c = try await NATSConnection.connect(try testOptions(server.url))
        let js = JetStream(c)
        #expect(try await js.streamInfo("EVENTS") == nil)
        let created = try await js.ensureStream(streamConfig())
        #expect(created.config.subjects == ["ev.>"])
        #expect(created.config.duplicateWindow == 120_000_000_000)
        // ensureStream again: same stream, no error.
        _ = try await js.ensureStream(streamConfig())
        // A conflicting request names the setting.
        var other = streamConfig()
        other.storage = "memory"
        await #expect(throws: NATSError.streamConfigConflict(stream: "EVENTS", setting: "storage", existing: "file", wanted: "memory")) {
            _ = try await js.ensureStream(other)
        }
        var moreDup = streamConfig()
        moreDup.duplicateWindow = 600_000_000_000
        await #expect(throws: NATSError.self) { _ = try await js.ensureStream(moreDup) }

        for i in 1...10 {
            let ack = try await js.publish("ev.h1", payload: Array("m\(i)".utf8), messageId: "h1-\(i)")
            #expect(ack.stream == "EVENTS")
            #expect(ack.seq == UInt64(i))
            #expect(!ack.isDuplicate)
        }
        // The same Nats-Msg-Id again is a duplicate: not stored twice.
        let dup = try await js.publish("ev.h1", payload: Array("m3 again".utf8), messageId: "h1-3")
        #expect(dup.isDuplicate)
        #expect(dup.seq == 3)
        #expect(try await js.streamInfo("EVENTS")?.state.messages == 10)
        await #expect(throws: NATSError.noResponders("nostream.x")) {
            _ = try await js.publish("nostream.x", payload: [1])
        }

        var cc = ConsumerConfig(durableName: "agg")
        cc.ackWait = 1_000_000_000  // 1 s, so a nak or a missing ack redelivers quickly
        cc.maxDeliver = -1
        cc.maxAckPending = 100
        let info = try await js.createConsumer(stream: "EVENTS", config: cc)
        #expect(info.name == "agg")
        #expect(info.numPending == 10)

        let batch = try await js.fetch(stream: "EVENTS", consumer: "agg", batch: 4, expires: .seconds(2))
        #expect(batch.map { String(decoding: $0.payload, as: UTF8.self) } == ["m1", "m2", "m3", "m4"])
        let meta = try #require(batch[0].metadata)
        #expect(meta.stream == "EVENTS" && meta.consumer == "agg" && meta.streamSequence == 1 && meta.delivered == 1)
        #expect(meta.pending == 9)
        try batch[0].ack()
        try await batch[1].ackSync()
        try batch[2].term()  // never again
        try batch[3].nak()  // again, at once
        // Exactly the 7 expected (4 again, 5-10), so the pull ends when they are in, not at its expiry (a message the
        // server hands out as the request expires is taken back and delivered again later).
        let rest = try await js.fetch(stream: "EVENTS", consumer: "agg", batch: 7, expires: .seconds(10))
        let seqs = rest.compactMap { $0.metadata?.streamSequence }
        #expect(rest.first { $0.metadata?.streamSequence == 4 }?.metadata?.delivered == 2, "the nak'ed message comes again")
        #expect(seqs.sorted() == Array(4...10), "the terminated one (3) never again, nothing twice")
        for m in rest {
            try m.inProgress()
            try await m.ackSync()  // confirmed by the server, so the consumer's state below is settled
        }
        try await c.flush()
        // Nothing left: no_wait answers 404 at once, expires answers 408 after the wait: both an empty result.
        let start = Date()
        let none = try await js.fetch(stream: "EVENTS", consumer: "agg", batch: 5, expires: nil, noWait: true)
        #expect(none.isEmpty)
        #expect(Date().timeIntervalSince(start) < 2)
        let none2 = try await js.fetch(stream: "EVENTS", consumer: "agg", batch: 5, expires: .milliseconds(300))
        #expect(none2.isEmpty)
        let after = try #require(try await js.consumerInfo(stream: "EVENTS", consumer: "agg"))
        #expect(after.numAckPending == 0)
        #expect(after.ackFloor.streamSeq == 10)
        await c.close()
    }

    @Test(.timeLimit(.minutes(2))) func clusterKeepsEverythingWhenAServerDies() async throws {
        let cluster = NATSClusterProcesses(size: 3)
        try cluster.start()
        let c = try await NATSConnection.connect(try testOptions(cluster.urls))
        let js = JetStream(c)
        let info = try await eventually(30) { try await js.ensureStream(streamConfig(replicas: 3)) }
        #expect(info.config.numReplicas == 3)
        var cc = ConsumerConfig(durableName: "agg")
        cc.ackWait = 5_000_000_000
        _ = try await eventually(20) { try await js.createConsumer(stream: "EVENTS", config: cc) }

        var acked = 0
        for i in 1...100 {
            _ = try await eventually(20) { try await js.publish("ev.h1", payload: Array("m\(i)".utf8), messageId: "h1-\(i)") }
            acked += 1
        }
        // Kill the server we are connected to; the client moves on and JetStream elects new leaders.
        let victim = try #require(cluster.servers.first { $0.port == c.connectedServer?.port })
        victim.kill()
        for i in 101...200 {
            _ = try await eventually(30) { try await js.publish("ev.h1", payload: Array("m\(i)".utf8), messageId: "h1-\(i)") }
            acked += 1
        }
        var seen: [String] = []
        let deadline = Date().addingTimeInterval(40)
        while seen.count < 200, Date() < deadline {
            let batch = (try? await js.fetch(stream: "EVENTS", consumer: "agg", batch: 50, expires: .seconds(1))) ?? []
            for m in batch {
                seen.append(String(decoding: m.payload, as: UTF8.self))
                try? m.ack()
            }
        }
        #expect(acked == 200)
        #expect(seen.count == 200, "every acknowledged publish is delivered exactly once, in order")
        #expect(seen == (1...200).map { "m\($0)" })
        await c.close()
    }
}
