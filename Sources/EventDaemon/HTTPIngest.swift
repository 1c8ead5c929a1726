import Foundation
import EventQuery
import EventStore
import GridEvents
import GridOTLP
import Hummingbird
import NIOCore

/// Events that arrive over HTTP (`POST /api/events`, `POST /v1/logs`) go through the daemon's single writer like
/// a producer's batch: already-stored ids are dropped, the rest are one frame (group commit with everyone
/// waiting), and the answer is sent only once they are durable under `--sync`.
public final class HTTPIngest: Sendable {
    static let jsonProducer = "http:api-events"
    static let otlpProducer = "http:otlp"

    let writer: BatchWriter
    /// Largest request body accepted (bytes); beyond it 413.
    public let maxBody: Int
    /// How OTLP log records become events.
    public let otlp: OTLPLogs.Mapping

    init(writer: BatchWriter, maxBody: Int, otlp: OTLPLogs.Mapping) {
        self.writer = writer
        self.maxBody = maxBody
        self.otlp = otlp
    }

    /// Stores `events` (ids unique among them; a repeated id is stored once) and returns how many were new, once
    /// they are durable.
    /// - Throws: `StoreError` when the store refuses (no space, failed closed): nothing was acknowledged.
    func store(_ events: [GridEvent], producer: String, receivedAt: UInt64) async throws -> Int {
        var seen = Set<String>()
        let unique = events.filter { seen.insert($0.id).inserted }
        let writer = self.writer
        // The duplicate check and the preparation run on the writer thread; this task only waits.
        return try await withCheckedThrowingContinuation { (c: CheckedContinuation<Int, Error>) in
            writer.submit(BatchWriter.Job(producer: producer, firstSequence: 1, events: unique, receivedAt: receivedAt) { result in
                c.resume(with: result.map(\.stored).mapError { $0 as any Error })
            })
        }
    }

    // MARK: POST /api/events

    /// One answer line of `POST /api/events`: a refused line and why.
    struct Refusal: Encodable {
        var line: Int
        var error: String
    }

    /// Decodes the body of `POST /api/events` as `grid-cli emit` reads its input: one event, or one per line
    /// (blank lines skipped), each checked as the daemon checks a producer's events; a line without an `id`
    /// gets `event-<type>-<t>-<line number>` (`LineIds`), one without a `timestamp` gets `defaultTime`.
    static func decodeLines(_ bytes: [UInt8], defaultTime: Int64, maxLine: Int) -> (events: [GridEvent], refused: [Refusal], lines: Int) {
        var events: [GridEvent] = []
        var refused: [Refusal] = []
        var lineNumber = 0
        var ranges: [(Int, Int, Int)] = []  // line number, start, end
        var start = 0
        while start <= bytes.count {
            var end = start
            while end < bytes.count && bytes[end] != 0x0A { end += 1 }
            lineNumber += 1
            var e = end
            if e > start && bytes[e - 1] == 0x0D { e -= 1 }
            if bytes[start..<e].contains(where: { !($0 == 0x20 || $0 == 0x09 || $0 == 0x0D) }) { ranges.append((lineNumber, start, e)) }
            if end >= bytes.count { break }
            start = end + 1
        }
        // A pretty-printed single event spans lines: taken whole when its first line alone is not JSON and the whole is.
        if ranges.count > 1 {
            let first = bytes[ranges[0].1..<ranges[0].2]
            if case .failure(let e) = decodeOne(Array(first), line: 1, defaultTime: defaultTime, maxLine: maxLine),
               e.message.hasPrefix("malformed JSON"),
               case .success(let whole) = decodeOne(trimmed(bytes), line: 1, defaultTime: defaultTime, maxLine: maxLine) {
                return ([whole], [], 1)
            }
        }
        for (n, s, e) in ranges {
            switch decodeOne(Array(bytes[s..<e]), line: n, defaultTime: defaultTime, maxLine: maxLine) {
            case .success(let event): events.append(event)
            case .failure(let error): refused.append(Refusal(line: n, error: error.message))
            }
        }
        return (events, refused, lineNumber)
    }

    static func trimmed(_ bytes: [UInt8]) -> [UInt8] {
        func space(_ b: UInt8) -> Bool { b == 0x20 || b == 0x09 || b == 0x0A || b == 0x0D }
        guard let s = bytes.firstIndex(where: { !space($0) }), let e = bytes.lastIndex(where: { !space($0) }) else { return [] }
        return Array(bytes[s...e])
    }

    static func decodeOne(_ line: [UInt8], line number: Int, defaultTime: Int64, maxLine: Int) -> Result<GridEvent, EventError> {
        do throws(EventError) {
            let draft = try FlatEventDecoder.decode(line, limit: maxLine)
            let timestamp = draft.timestamp ?? defaultTime
            let id = draft.id ?? line.withUnsafeBytes {
                LineIds.id(for: $0, typeName: draft.kind.typeName, timestamp: timestamp, line: number)
            }
            let event = GridEvent(id: id, timestamp: timestamp, kind: draft.kind)
            try GridEvent.validate(kind: draft.kind, id: id)
            return .success(event)
        } catch {
            return .failure(error)
        }
    }

    static func addRoutes(to router: Router<BasicRequestContext>, _ api: APIContext) {
        router.post("/api/events") { request, _ in
            guard let ingest = api.httpIngest else {
                throw APIError(.ingestUnavailable, "this server does not take events over HTTP")
            }
            let receivedAt = monotonicNanos()
            // `time`: the timestamp of lines without one (default now).
            let defaultTime = try HTTPAPI.adapt { () throws(ParameterError) in
                try QueryParameters.time(HTTPAPI.lookup(request), "time")
            } ?? GridClock.nowMicros()
            let body = try await HTTPAPI.collect(request, limit: ingest.maxBody)
            let decoded = decodeLines(Array(buffer: body), defaultTime: defaultTime, maxLine: 1 << 20)
            if decoded.events.isEmpty {
                let message = decoded.refused.isEmpty ? "the body holds no event: send one JSON event, or one per line"
                    : "no line holds a valid event; refused: \(decoded.refused.count)"
                return HTTPAPI.json(ErrorBody(error: .init(code: APIErrorCode.noEvents.code, message: message,
                                                           refused: Array(decoded.refused.prefix(100)))),
                                    status: APIErrorCode.noEvents.status)
            }
            let stored: Int
            do {
                stored = try await ingest.store(decoded.events, producer: jsonProducer, receivedAt: receivedAt)
            } catch let error as StoreError {
                throw APIError(.storeUnavailable, "nothing was stored: \(error.message)")
            }
            return HTTPAPI.json(IngestAnswer(stored: stored, duplicates: decoded.events.count - stored, accepted: decoded.events.count,
                                             refusedCount: decoded.refused.count, refused: Array(decoded.refused.prefix(100)),
                                             ids: decoded.events.prefix(1000).map(\.id)))
        }
        router.post("/v1/logs") { request, _ in
            await otlp(request, api)
        }
    }

    // MARK: POST /v1/logs (OTLP/HTTP)

    static func otlp(_ request: Request, _ api: APIContext) async -> Response {
        let receivedAt = monotonicNanos()
        let contentType = (request.headers[.contentType] ?? "").split(separator: ";").first.map {
            $0.trimmingCharacters(in: .whitespaces).lowercased()
        } ?? ""
        let encoding: OTLPLogs.Encoding
        switch contentType {
        case "application/x-protobuf", "application/protobuf": encoding = .protobuf
        case "application/json": encoding = .json
        default:
            return answer(.unsupportedMediaType, OTLPLogs.status(
                "Content-Type \(contentType.isEmpty ? "(none)" : contentType) is not OTLP: send application/x-protobuf or application/json",
                encoding: .json), .json)
        }
        if let coding = request.headers[.contentEncoding], !["", "identity"].contains(coding.lowercased()) {
            return answer(.unsupportedMediaType, OTLPLogs.status(
                "Content-Encoding \(coding) is not supported; send the body uncompressed", encoding: encoding), encoding)
        }
        guard let ingest = api.httpIngest else {
            return answer(.serviceUnavailable, OTLPLogs.status("this server does not take events over HTTP", code: 14, encoding: encoding), encoding)
        }
        let body: ByteBuffer
        do {
            body = try await HTTPAPI.collect(request, limit: ingest.maxBody)
        } catch {
            return answer(error.status, OTLPLogs.status(error.message, encoding: encoding), encoding)
        }
        let decoded: Grid_Otlp_V1_ExportLogsServiceRequest
        do {
            decoded = try OTLPLogs.decode(Array(buffer: body), encoding: encoding)
        } catch {
            return answer(.badRequest, OTLPLogs.status(error.description, encoding: encoding), encoding)
        }
        let outcome = OTLPLogs.map(decoded, encoding: encoding, mapping: ingest.otlp)
        if !outcome.events.isEmpty {
            do {
                _ = try await ingest.store(outcome.events, producer: otlpProducer, receivedAt: receivedAt)
            } catch {
                // Retryable for the exporter (OTLP/HTTP: 503); nothing of this request was acknowledged.
                return answer(.serviceUnavailable, OTLPLogs.status("nothing was stored: \(error)", code: 14, encoding: encoding), encoding)
            }
        }
        return answer(.ok, OTLPLogs.response(outcome, encoding: encoding), encoding)
    }

    static func answer(_ status: HTTPResponse.Status, _ bytes: [UInt8], _ encoding: OTLPLogs.Encoding) -> Response {
        Response(status: status,
                 headers: [.contentType: encoding == .json ? "application/json" : "application/x-protobuf"],
                 body: ResponseBody(byteBuffer: ByteBuffer(bytes: bytes)))
    }
}
