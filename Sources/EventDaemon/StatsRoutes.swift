import EventStore
import GridEvents
import Hummingbird

/// `/api/stats`: the store's, ingest's and the daemon's counters.
enum StatsRoutes {
    static func addRoutes(to router: Router<BasicRequestContext>, api: APIContext) {
        router.get("/api/stats") { _, _ in
            try await api.answer { stats(api) }
        }
    }

    static func stats(_ api: APIContext) -> StatsAnswer {
        let s = api.store.stats
        let ingest = api.ingest()
        let replication = api.replicationStats()
        return StatsAnswer(
            events: s.events, adjacencyEntries: s.adjacencyEntries, segments: s.segments, sealedSegments: s.sealedSegments,
            dataBytes: s.dataBytes, fileBytes: s.fileBytes, diskBytes: s.diskBytes, duplicatesIgnored: s.duplicatesIgnored,
            lastSequence: s.lastSequence, oldest: s.minTimestamp.map(JSONTime.init), newest: s.maxTimestamp.map(JSONTime.init),
            ingest: StatsAnswer.Ingest(eventsTotal: ingest.total, ratePerSecond: ingest.rate, ackP99Micros: ingest.ackP99Micros,
                                       connections: ingest.connections),
            liveStreams: api.feed.subscriberCount, residentBytes: residentBytes(),
            types: JSONObject(api.store.typeCounts().sorted { $0.key < $1.key }.map { (EventType(rawValue: $0.key)?.name ?? String($0.key), $0.value) }),
            compaction: StatsAnswer.Compaction(
                compactedSegments: s.compactedSegments, compactedBytes: s.compactedBytes, compactedEvents: s.compactedEvents,
                uncompactedDataBytes: s.uncompactedDataBytes, indexFiles: s.indexFiles, indexBytes: s.indexBytes, diskBytes: s.diskBytes),
            retention: StatsAnswer.Retention(
                deletedSegments: s.retention.segments, deletedEvents: s.retention.events, deletedBytes: s.retention.bytes,
                lastDeletedSegment: s.retention.lastSegment,
                lastDeletion: s.retention.lastDeletion > 0 ? JSONTime(s.retention.lastDeletion) : nil),
            readDamage: s.readDamage.map(\.description),
            ownLogs: api.ownLogs().map { StatsAnswer.OwnLogs(dropped: $0.dropped, suppressed: $0.suppressed) },
            replication: replication.replication, aggregation: replication.aggregation)
    }
}
