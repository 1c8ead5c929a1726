import EventQuery
import GridEvents
import Hummingbird
import NIOCore

/// An API error: a status and the JSON body `{"error": {"code", "message"}}` (`ErrorBody`); the codes and their
/// statuses are the catalogue's (`APIErrorCode`, APIErrors.swift).
struct APIError: Error {
    var status: HTTPResponse.Status
    var code: String
    var message: String
    /// `not_understood`: questions that can be answered.
    var suggestions: [String]?

    var response: Response {
        HTTPAPI.json(ErrorBody(error: .init(code: code, message: message, suggestions: suggestions)), status: status)
    }
}

/// Turns every error escaping a handler (including unmatched routes) into the JSON error shape.
struct JSONErrorMiddleware<Context: RequestContext>: RouterMiddleware {
    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        do {
            return try await next(request, context)
        } catch let error as APIError {
            return error.response
        } catch let error as HTTPError {
            if error.status == .notFound, let allowed = HTTPAPI.routes.methods(for: request.uri.path),
               !allowed.contains(request.method.rawValue) {
                var r = APIError(.methodNotAllowed, "\(request.uri.path) takes \(allowed.joined(separator: ", "))").response
                r.headers[.allow] = allowed.joined(separator: ", ")
                return r
            }
            let entry: APIErrorCode = error.status == .notFound ? .notFound : (error.status.code < 500 ? .badRequest : .internalError)
            return APIError(entry, error.body ?? (error.status == .notFound ? "no route \(request.method) \(request.uri.path)" : "\(error.status)"), status: error.status).response
        } catch {
            return APIError(.internalError, "\(error)").response
        }
    }
}

/// The routes of the HTTP API (README, "HTTP API"; docs/ARCHITECTURE.md for where they sit).
public enum HTTPAPI {
    static let maxBody = 64 << 10

    /// Every route of `router(_:token:)` (docs/openapi.yaml), for 405 answers.
    static let routes = RouteTable(Dashboard.assets.keys.sorted().map { ($0, ["GET"]) } + [
        ("/api/timeline", ["GET"]),
        ("/api/grid/events/recent", ["GET"]), ("/api/grid/events/query", ["POST"]), ("/api/events", ["GET", "POST"]),
        ("/api/events/stream", ["GET"]), ("/api/events/{id}", ["GET"]), ("/api/entities/{id}/events", ["GET"]),
        ("/api/graph/neighbors", ["GET"]), ("/api/grid/agents", ["GET"]), ("/api/stats", ["GET"]), ("/metrics", ["GET"]),
        ("/v1/logs", ["POST"]), ("/api/session", ["GET", "POST", "DELETE"]), ("/api/session/logout", ["POST"]),
    ])

    /// `text`, already JSON, as a response (a `String` passed here is not encoded again).
    static func json(_ text: String, status: HTTPResponse.Status = .ok) -> Response {
        json(bytes: ByteBuffer(string: text), status: status)
    }

    /// JSON bytes as a response.
    static func json(bytes: ByteBuffer, status: HTTPResponse.Status = .ok) -> Response {
        Response(status: status, headers: [.contentType: "application/json; charset=utf-8", .cacheControl: "no-store"],
                 body: ResponseBody(byteBuffer: bytes))
    }

    /// The router; mount it in an `Application`. Each group of routes is its own type (docs/ARCHITECTURE.md,
    /// "HTTP API"); this only puts the middleware in front of them.
    /// - Parameters:
    ///   - token: required on every route when given, as a bearer header or a session cookie (SignIn.swift).
    ///   - sessions: the browser sessions signed in with the token (a fresh store when not given).
    public static func router(_ api: APIContext, token: String? = nil, sessions: SessionStore = SessionStore()) -> Router<BasicRequestContext> {
        let router = Router()
        router.add(middleware: JSONErrorMiddleware())
        if let token { router.add(middleware: AccessMiddleware(token: token, sessions: sessions)) }
        SignIn.addRoutes(to: router, token: token, sessions: sessions)
        Dashboard.addRoutes(to: router, api: api)
        GridRoutes.addRoutes(to: router, api: api)
        LiveStream.addRoutes(to: router, api: api)
        QueryRoutes.addRoutes(to: router, api: api)
        GraphRoutes.addRoutes(to: router, api: api)
        StatsRoutes.addRoutes(to: router, api: api)
        InteropRoutes.addRoutes(to: router, api: api)
        return router
    }

    // MARK: Answers

    /// `value`'s JSON (`JSONStreamEncoder`, the one encoder of every answer), as the bytes the response sends
    /// (no round trip through a `String`).
    static func encoded(_ value: some Encodable) throws -> ByteBuffer {
        var w = JSONWriter()
        try JSONStreamEncoder().encode(value, into: &w)
        return ByteBuffer(bytes: w.bytes)
    }

    /// `value` as a JSON response, encoded where it is called (small answers; large ones: `APIContext.answer`).
    /// The answer types throw nothing of their own; should one, the answer is the `internal` error (500).
    static func json(_ value: some Encodable, status: HTTPResponse.Status = .ok) -> Response {
        do {
            return json(bytes: try encoded(value), status: status)
        } catch {
            return json(#"{"error":{"code":"internal","message":"the answer could not be encoded"}}"#, status: .internalServerError)
        }
    }

    // MARK: Bodies

    /// Collects a request body of at most `limit` bytes, refusing a larger one by its Content-Length when sent,
    /// before reading it.
    /// - Throws: 413 `body_too_large` beyond `limit`; 400 `body_unreadable` when the body could not be read to its
    ///   end (the client reset the connection, sent a malformed chunk, ...).
    static func collect(_ request: Request, limit: Int) async throws(APIError) -> ByteBuffer {
        let tooLarge = APIError(.bodyTooLarge, "request body exceeds \(limit) bytes")
        if let length = request.headers[.contentLength].flatMap({ Int($0) }), length > limit { throw tooLarge }
        do {
            return try await request.body.collect(upTo: limit)
        } catch is NIOTooManyBytesError {
            throw tooLarge
        } catch {
            throw APIError(.bodyUnreadable, "the request body could not be read: \(error)")
        }
    }

    // MARK: Parameters

    // The parsing itself lives in EventQuery's `QueryParameters` (pure, shared with the fuzz tests); these adapt a
    // request to it and its errors to the JSON error shape.

    static func lookup(_ request: Request) -> QueryParameters.Lookup {
        let parameters = request.uri.queryParameters
        return { parameters.get($0) }
    }

    static func adapt<T>(_ body: () throws(ParameterError) -> T) throws -> T {
        do {
            return try body()
        } catch {
            throw APIError(.parameter(error.code), error.message)
        }
    }

    static func parameter(_ request: Request, _ name: String) throws -> String? {
        try adapt { () throws(ParameterError) in try QueryParameters.string(lookup(request), name) }
    }

    static func intParameter(_ request: Request, _ name: String, default value: Int, range: ClosedRange<Int>) throws -> Int {
        try adapt { () throws(ParameterError) in try QueryParameters.int(lookup(request), name, default: value, range: range) }
    }

    static func typesParameter(_ request: Request) throws -> [EventType] {
        try adapt { () throws(ParameterError) in try QueryParameters.types(lookup(request)) }
    }

    static func structuredQuery(_ request: Request) throws -> EventQuery {
        try adapt { () throws(ParameterError) in try QueryParameters.structuredQuery(lookup(request)) }
    }

    /// Maps engine errors to 4xx.
    static func run<T>(_ body: () throws -> T) throws -> T {
        do {
            return try body()
        } catch let error as QueryError {
            throw APIError(.query(error.code), error.message)
        }
    }
}
