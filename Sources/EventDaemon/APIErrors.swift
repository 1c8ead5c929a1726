import EventQuery
import Hummingbird

/// The catalogue of the error codes the JSON routes answer with: each code, its status and what it means. Every
/// throw site names its entry (`APIError(.notFound, "no event with id ...")`), and docs/openapi.yaml lists the same
/// table (`Error`); `HTTPErrorCatalogueTests` checks both.
struct APIErrorCode: Sendable, Equatable {
    let code: String
    let status: HTTPResponse.Status
    let meaning: String

    static let badId = Self("bad_id", .badRequest, "an event, entity or graph id is not 1-256 of A-Z a-z 0-9 - _ . : @ /")
    static let badEntity = Self("bad_entity", .badRequest, "the entity id in the path is not a valid id")
    static let missingId = Self("missing_id", .badRequest, "GET /api/graph/neighbors was called without ?id=")
    static let malformedBody = Self("malformed_body", .badRequest, "the body is not the JSON the route takes")
    static let notUnderstood = Self("not_understood", .badRequest, "the question could not be translated; `suggestions` lists questions that can")
    static let bodyUnreadable = Self("body_unreadable", .badRequest, "the request body could not be read to its end")
    static let bodyTooLarge = Self("body_too_large", .contentTooLarge, "the request body is larger than the route takes")
    static let badLastEventId = Self("bad_last_event_id", .badRequest, "Last-Event-ID (or last_event_id) is not a position this server issued")
    static let noEvents = Self("no_events", .badRequest, "POST /api/events: no line of the body holds a valid event; `refused` says why")
    static let badRequest = Self("bad_request", .badRequest, "the request could not be parsed (the status is the one the server found)")
    static let unauthorized = Self("unauthorized", .unauthorized, "the route needs Authorization: Bearer <token> (or, on grid-eventd, a session cookie); POST /api/session: a wrong token")
    static let notFound = Self("not_found", .notFound, "no such route or event, or no metrics are kept")
    static let methodNotAllowed = Self("method_not_allowed", .methodNotAllowed, "the route exists but not for this method; Allow lists those it takes")
    static let historyDeleted = Self("history_deleted", .gone, "GET /api/grid/agents?at=: retention deleted events that moment needs")
    static let internalError = Self("internal", .internalServerError, "an unexpected error; the message says which")
    static let tooManyStreams = Self("too_many_streams", .serviceUnavailable, "as many live streams as the server allows are open")
    static let ingestUnavailable = Self("ingest_unavailable", .serviceUnavailable, "this server does not take events over HTTP")
    static let storeUnavailable = Self("store_unavailable", .serviceUnavailable, "the store refused the write (no space, failed closed); nothing was stored")
    static let noToken = Self("no_token", .badRequest, "POST /api/session on a daemon without --token: there is nothing to sign in to")
    static let tooManyAttempts = Self("too_many_attempts", .tooManyRequests, "POST /api/session: too many failed sign-ins in the last minute; Retry-After says when to try again")
    static let tooManyConnections = Self("too_many_connections", .serviceUnavailable, "the connection is over the per-peer or total cap (HTTP limits); answered before any request is read, then closed")

    /// Every fixed code, in the order docs/openapi.yaml lists them.
    static let catalogue: [APIErrorCode] = [
        badId, badEntity, missingId, malformedBody, notUnderstood, bodyUnreadable, bodyTooLarge, badLastEventId, noEvents,
        badRequest, unauthorized, notFound, methodNotAllowed, historyDeleted, internalError, tooManyStreams,
        ingestUnavailable, storeUnavailable, noToken, tooManyAttempts, tooManyConnections,
    ]

    /// A query parameter that cannot be used (`ParameterError`: `bad_parameter`, `bad_time`, `bad_types`,
    /// `bad_<name>` for a number out of range, ...): 400, the code names the parameter.
    static func parameter(_ code: String) -> APIErrorCode {
        Self(code, .badRequest, "a query parameter cannot be used; the code names it")
    }

    /// What the query engine refused (`QueryError`: `bad_cursor`, `bad_limit`, `bad_query`; `not_found` is 404).
    static func query(_ code: QueryError.Code) -> APIErrorCode {
        code == .notFound ? notFound : Self(code.rawValue, .badRequest, "the query engine refused the query; the code says why")
    }

    private init(_ code: String, _ status: HTTPResponse.Status, _ meaning: String) {
        self.code = code
        self.status = status
        self.meaning = meaning
    }
}

extension APIError {
    /// The error of catalogue entry `entry`, with its status (or `status`, for `bad_request` and `internal`, which
    /// carry the status the server found).
    init(_ entry: APIErrorCode, _ message: String, status: HTTPResponse.Status? = nil) {
        self.init(status: status ?? entry.status, code: entry.code, message: message)
    }
}
