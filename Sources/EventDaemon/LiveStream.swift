import EventQuery
import EventStore
import GridEvents
import Hummingbird
import NIOCore

/// `GET /api/events/stream`: live events as server-sent events, resumable.
///
/// Every event carries `id: <sequence>:<skip>` (a `StreamPosition`, the place just after it in the store's
/// arrival order). A client that reconnects with `Last-Event-ID` (the header EventSource sends, or the
/// `last_event_id` parameter) gets what was stored after that position, read from the store, then the live
/// events: nothing lost, nothing repeated, across a dropped connection or a daemon restart. `since=` (RFC 3339)
/// starts with the stored events from that time on. The stream opens with an `id:` of where it starts and
/// repeats the current position with every keepalive, so a client that saw no matching event still resumes
/// from the right place. A reader too slow for the live buffer is caught up from the store the same way.
enum LiveStream {
    /// Bytes of events gathered before a write while reading back from the store.
    static let writeChunk = 64 << 10

    struct Filter: Sendable {
        var types: [EventType]
        var entity: String?
        var since: Int64?

        func matches(type: EventType, entities: [String], timestamp: Int64) -> Bool {
            if let since, timestamp < since { return false }
            if !types.isEmpty, !types.contains(type) { return false }
            if let entity, !entities.contains(entity) { return false }
            return true
        }
    }

    static func addRoutes(to router: Router<BasicRequestContext>, api: APIContext) {
        router.get("/api/events/stream") { request, _ in
            try await response(request, api: api)
        }
    }

    static func response(_ request: Request, api: APIContext) async throws -> Response {
        let get = HTTPAPI.lookup(request)
        let filter = Filter(
            types: try HTTPAPI.typesParameter(request),
            entity: try HTTPAPI.parameter(request, "entity"),
            since: try HTTPAPI.adapt { () throws(ParameterError) in try QueryParameters.time(get, "since") })
        var resume: StreamPosition?
        let header = request.headers.first { $0.name.canonicalName == "last-event-id" }?.value
        let fromQuery = try HTTPAPI.parameter(request, "last_event_id")
        if let text = (header?.isEmpty == false ? header : nil) ?? fromQuery {
            guard let p = StreamPosition(text) else {
                throw APIError(.badLastEventId, "Last-Event-ID \"\(text.prefix(40))\" is not a position this server issued (<sequence>:<skip>)")
            }
            resume = p
        }
        guard let subscription = api.feed.subscribe() else {
            throw APIError(.tooManyStreams, "at most \(LiveFeed.maxSubscribers) live streams at once")
        }
        // Read after subscribing: every frame above it is published to this subscription.
        let store = api.store
        let (start, replayFirst) = try await api.blocking { [resume] () -> (StreamPosition, Bool) in
            let head = StreamPosition(sequence: store.lastWrittenSequence + 1, skip: 0)
            if let resume {
                // A position beyond this store's head comes from a store that was replaced (a new data directory):
                // everything here is new to that client.
                return (resume.sequence > head.sequence ? StreamPosition(sequence: 1, skip: 0) : resume, true)
            } else if let since = filter.since {
                return (StreamPosition(sequence: store.firstFrameSequence(holdingEventsSince: since), skip: 0), true)
            }
            return (head, false)
        }
        let body = ResponseBody { writer in
            var cursor = start
            try await writer.write(ByteBuffer(string: "retry: 2000\n: grid-eventd live stream\nid: \(cursor)\n\n"))
            if replayFirst { cursor = try await replay(api, from: cursor, filter: filter, writer: &writer) }
            for await item in subscription.stream {
                subscription.took()
                if subscription.takeDropped() {
                    cursor = try await replay(api, from: cursor, filter: filter, writer: &writer)
                }
                switch item {
                case .keepalive:
                    try await writer.write(ByteBuffer(string: ": keepalive\nid: \(cursor)\n\n"))
                case .event(let event, let position):
                    if let position {
                        guard position > cursor else { continue }  // already sent from the store
                        cursor = position
                    }
                    guard filter.matches(type: event.type, entities: event.entities, timestamp: event.timestamp) else { continue }
                    var text = position.map { "id: \($0)\n" } ?? ""
                    text += "event: grid_event\ndata: " + event.apiJSON + "\n\n"
                    try await writer.write(ByteBuffer(string: text))
                }
            }
            try await writer.finish(nil)
        }
        return Response(status: .ok, headers: [.contentType: "text/event-stream", .cacheControl: "no-cache"], body: body)
    }

    /// Sends, from the store, every event stored after `cursor` that matches, up to the newest frame written; returns
    /// the position after the last frame read. The store is read on the API's thread pool (`APIContext.blocking`),
    /// up to 256 frames at a time (`chunk`); this task only writes.
    static func replay(_ api: APIContext, from start: StreamPosition, filter: Filter,
                       writer: inout any ResponseBodyWriter) async throws -> StreamPosition {
        var cursor = start
        while true {
            let store = api.store
            let (texts, next) = try await api.blocking { [cursor] in try chunk(store, from: cursor, filter: filter) }
            for text in texts { try await writer.write(ByteBuffer(string: text)) }
            guard let next else { break }
            cursor = next
        }
        return cursor
    }

    /// The text of the events stored after `cursor` that match, from the next frames (at most 1 MiB or 256 of
    /// them), in writes of about `writeChunk` bytes, the last one followed by the position after them; nil when no
    /// frame follows `cursor`. Events the store's index kept an earlier copy of (a resend stored twice by a race)
    /// are left out, as reads leave them out; an event the index does not hold yet is sent. Copies are looked up by
    /// id (every segment searched: `EventStore` has no lookup by id and timestamp) only while the store has ignored
    /// a duplicate at all, and only for events the filter keeps.
    static func chunk(_ store: EventStore, from start: StreamPosition, filter: Filter) throws -> ([String], StreamPosition?) {
        var cursor = start
        var texts: [String] = []
        var text = ""
        let frames = try store.committedFrames(after: cursor.sequence == 0 ? 0 : cursor.sequence - 1, maxBytes: 1 << 20, maxFrames: 256)
        guard !frames.isEmpty else { return ([], nil) }
        // Read after the frames: a frame is indexed as it is written, so a store that has ignored no duplicate
        // holds no second copy among them.
        let mayHoldCopies = store.stats.duplicatesIgnored > 0
        for frame in frames {
            for (i, stored) in frame.events.enumerated() {
                if frame.sequence == cursor.sequence, i < cursor.skip { continue }
                let position = StreamPosition.after(frame: frame.sequence, event: i)
                guard let type = EventType(rawValue: stored.typeCode),
                    filter.matches(type: type, entities: stored.entities, timestamp: stored.timestamp)
                else { continue }
                // An event the index does not know yet (its frame is written, the index not yet updated) is
                // sent: skipping it would move the cursor past it for good.
                if mayHoldCopies, let indexed = store.event(id: stored.id), indexed.position != stored.position { continue }
                guard let event = try? GridEvent(stored: stored) else { continue }
                text += "id: \(position)\nevent: grid_event\ndata: " + event.apiJSON + "\n\n"
                if text.utf8.count >= writeChunk {
                    texts.append(text)
                    text = ""
                }
            }
            cursor = StreamPosition(sequence: frame.sequence + 1, skip: 0)
        }
        if !text.isEmpty { texts.append(text + "id: \(cursor)\n\n") }
        return (texts, cursor)
    }
}
