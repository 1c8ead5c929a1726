import Foundation
import GridBase
import GridEvents
import Hummingbird
import NIOCore

/// Browser sessions for a daemon with `--token`: a browser cannot send a bearer header on a page load or an
/// EventSource, so the token is exchanged once (`POST /api/session`) for a session cookie the API and the live
/// stream accept. The session id is 32 bytes from the system's CSPRNG (getrandom), never the token; sessions
/// expire (`ttlSeconds` after sign-in) and are bounded in number (the oldest is dropped for a new one past
/// `maxSessions`). Failed sign-ins wait `failureDelaySeconds` before their answer and at most `maxFailuresPerMinute`
/// of them are checked a minute (all clients together); beyond that the answer is 429 without looking at the token.
public final class SessionStore: @unchecked Sendable {
    /// The cookie's name.
    public static let cookieName = "grid_session"

    public let ttlSeconds: Double
    public let maxSessions: Int
    public let failureDelaySeconds: Double
    public let maxFailuresPerMinute: Int

    private let lock = ConditionLock()
    /// Session id -> expiry (seconds on the monotonic clock).
    private var sessions: [String: Double] = [:]
    /// When recent failed sign-ins happened (monotonic seconds), at most `maxFailuresPerMinute`.
    private var failures: [Double] = []

    public init(ttlSeconds: Double = 12 * 3600, maxSessions: Int = 1000, failureDelaySeconds: Double = 1,
                maxFailuresPerMinute: Int = 20) {
        self.ttlSeconds = ttlSeconds
        self.maxSessions = max(1, maxSessions)
        self.failureDelaySeconds = failureDelaySeconds
        self.maxFailuresPerMinute = max(1, maxFailuresPerMinute)
    }

    static func now() -> Double { Double(GridClock.monotonicNanos()) / 1e9 }

    /// A new session id: 32 random bytes, hex.
    static func newId() -> String {
        var rng = SystemRandomNumberGenerator()
        return (0..<32).map { _ in
            let b = UInt8.random(in: 0...255, using: &rng)
            return String(b >> 4, radix: 16) + String(b & 15, radix: 16)
        }.joined()
    }

    /// Opens a session and returns its id.
    public func open() -> String {
        let id = Self.newId()
        let now = Self.now()
        lock.withLock {
            sessions = sessions.filter { $0.value > now }
            while sessions.count >= maxSessions, let oldest = sessions.min(by: { $0.value < $1.value }) {
                sessions.removeValue(forKey: oldest.key)
            }
            sessions[id] = now + ttlSeconds
        }
        return id
    }

    /// Whether `id` names a session that has not expired.
    public func isValid(_ id: String) -> Bool {
        let now = Self.now()
        return lock.withLock {
            guard let expiry = sessions[id] else { return false }
            if expiry <= now {
                sessions.removeValue(forKey: id)
                return false
            }
            return true
        }
    }

    public func close(_ id: String) {
        _ = lock.withLock { sessions.removeValue(forKey: id) }
    }

    /// Sessions open now (expired ones not counted).
    public var count: Int {
        let now = Self.now()
        return lock.withLock { sessions.values.filter { $0 > now }.count }
    }

    /// Whether another sign-in may be checked now; false when `maxFailuresPerMinute` failed in the last minute.
    func mayTry() -> Bool {
        let now = Self.now()
        return lock.withLock {
            failures.removeAll { $0 <= now - 60 }
            return failures.count < maxFailuresPerMinute
        }
    }

    func failed() {
        let now = Self.now()
        lock.withLock {
            failures.removeAll { $0 <= now - 60 }
            failures.append(now)
        }
    }

    /// Seconds until a failure slot frees up.
    func retryAfter() -> Int {
        let now = Self.now()
        return lock.withLock { max(1, Int(((failures.first ?? now) + 60 - now).rounded(.up))) }
    }
}

/// How a request is authorized on a daemon with a token.
enum Credential: String {
    case bearer, cookie
}

/// The sign-in and sign-out routes and the access check (bearer header or session cookie).
enum SignIn {
    /// The session id in the request's `Cookie` header, if any.
    static func sessionId(_ request: Request) -> String? {
        for field in request.headers where field.name == .cookie {
            for part in field.value.split(separator: ";") {
                let pair = part.trimmingCharacters(in: .whitespaces)
                if pair.hasPrefix(SessionStore.cookieName + "=") {
                    return String(pair.dropFirst(SessionStore.cookieName.count + 1))
                }
            }
        }
        return nil
    }

    /// How `request` proves it may read: a bearer header with the token, or a live session cookie.
    static func credential(_ request: Request, token: String, sessions: SessionStore) -> Credential? {
        if let value = request.headers[.authorization], constantTimeEqual(value, "Bearer " + token) { return .bearer }
        if let id = sessionId(request), sessions.isValid(id) { return .cookie }
        return nil
    }

    /// Whether the request came over TLS (a reverse proxy in front says so with `X-Forwarded-Proto: https`); the
    /// cookie is then marked Secure.
    static func overTLS(_ request: Request) -> Bool {
        request.headers[.init("X-Forwarded-Proto")!]?.lowercased() == "https"
    }

    static func setCookie(_ id: String, maxAge: Int, secure: Bool) -> String {
        "\(SessionStore.cookieName)=\(id); Path=/; Max-Age=\(maxAge); HttpOnly; SameSite=Strict" + (secure ? "; Secure" : "")
    }

    /// Whether the client asked for HTML (a form post), not JSON.
    static func wantsForm(_ request: Request) -> Bool {
        (request.headers[.contentType] ?? "").lowercased().hasPrefix("application/x-www-form-urlencoded")
    }

    /// `token` from an `application/x-www-form-urlencoded` body.
    static func formValue(_ body: String, _ name: String) -> String? {
        for pair in body.split(separator: "&") {
            let kv = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            guard kv.count == 2, kv[0] == name else { continue }
            return String(kv[1]).replacingOccurrences(of: "+", with: " ").removingPercentEncoding
        }
        return nil
    }

    /// The sign-in page: a form posting the token to `/api/session`, and `message` when the last try failed.
    static func page(message: String? = nil, status: HTTPResponse.Status = .ok) -> Response {
        var html = """
            <!doctype html>
            <html lang="en">
            <head>
            <meta charset="utf-8">
            <meta name="viewport" content="width=device-width, initial-scale=1">
            <title>Sign in - Sutra Grid Events</title>
            <link rel="stylesheet" href="/dashboard.css">
            </head>
            <body class="signin">
            <main class="signin">
            <form id="signin" class="panel" method="post" action="/api/session">
            <h1>Sutra Grid Events</h1>
            <p>This daemon needs its access token (grid-eventd --token).</p>

            """
        if let message {
            html += "<p id=\"signin-error\" class=\"banner error\" role=\"alert\">" + message + "</p>\n"
        }
        html += """
            <label for="token">Token</label>
            <input id="token" name="token" type="password" autocomplete="current-password" required autofocus>
            <button type="submit">Sign in</button>
            </form>
            </main>
            </body>
            </html>

            """
        var r = Dashboard.response(html, contentType: "text/html; charset=utf-8", cacheControl: "no-store")
        r.status = status
        return r
    }

    static func redirectHome(cookie: String) -> Response {
        Response(status: .seeOther, headers: [.location: "/", .setCookie: cookie, .cacheControl: "no-store"])
    }

    /// `POST /api/session`, `GET /api/session`, `DELETE /api/session` and `POST /api/session/logout`.
    static func addRoutes(to router: Router<BasicRequestContext>, token: String?, sessions: SessionStore) {
        router.get("/api/session") { request, _ in
            // Behind the access check when there is a token: answered only to a signed-in client.
            let how = token.flatMap { credential(request, token: $0, sessions: sessions) }
            return HTTPAPI.json(SessionAnswer.Auth(auth: token == nil ? "none" : how?.rawValue ?? "none"))
        }
        router.post("/api/session") { request, _ in
            let form = wantsForm(request)
            guard let token else {
                throw APIError(.noToken, "this daemon has no --token: every route is open, there is nothing to sign in to")
            }
            let body = String(buffer: try await HTTPAPI.collect(request, limit: 4096))
            guard sessions.mayTry() else {
                var r = form ? page(message: "Too many failed sign-ins; wait a minute and try again.", status: .tooManyRequests)
                    : APIError(.tooManyAttempts, "too many failed sign-ins; try again later").response
                r.headers[.retryAfter] = String(sessions.retryAfter())
                return r
            }
            let given: String?
            if form {
                given = formValue(body, "token")
            } else {
                guard let value = try? JSONValue.parse(Array(body.utf8), limit: 4096), let t = value["token"]?.stringValue else {
                    throw APIError(.malformedBody, "send {\"token\": \"...\"} as JSON, or token=... as a form")
                }
                given = t
            }
            guard let given, constantTimeEqual(given, token) else {
                sessions.failed()
                try? await Task.sleep(nanoseconds: UInt64(sessions.failureDelaySeconds * 1e9))
                return form ? page(message: "That token is not right.", status: .unauthorized)
                    : APIError(.unauthorized, "wrong token").response
            }
            let cookie = setCookie(sessions.open(), maxAge: Int(sessions.ttlSeconds), secure: overTLS(request))
            if form { return redirectHome(cookie: cookie) }
            var r = HTTPAPI.json(SessionAnswer.SignedIn(expiresIn: Int(sessions.ttlSeconds)))
            r.headers[.setCookie] = cookie
            return r
        }
        @Sendable func signOut(_ request: Request) {
            if let id = sessionId(request) { sessions.close(id) }
        }
        let clear = "\(SessionStore.cookieName)=; Path=/; Max-Age=0; HttpOnly; SameSite=Strict"
        router.delete("/api/session") { request, _ in
            signOut(request)
            var r = HTTPAPI.json(SessionAnswer.SignedOut())
            r.headers[.setCookie] = clear
            return r
        }
        router.post("/api/session/logout") { request, _ in
            signOut(request)
            return redirectHome(cookie: clear)
        }
    }
}

/// Requires the token on every route (used whenever the API binds beyond loopback): `Authorization: Bearer <token>`
/// or a session cookie from `POST /api/session`. Open without either: the sign-in page at `/`, the stylesheet it
/// uses, and signing in and out.
struct AccessMiddleware<Context: RequestContext>: RouterMiddleware {
    let token: String
    let sessions: SessionStore

    static func isOpen(_ request: Request) -> Bool {
        switch (request.method, request.uri.path) {
        case (.get, "/dashboard.css"), (.post, "/api/session"), (.delete, "/api/session"), (.post, "/api/session/logout"): true
        default: false
        }
    }

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        if Self.isOpen(request) || SignIn.credential(request, token: token, sessions: sessions) != nil {
            return try await next(request, context)
        }
        if request.method == .get, request.uri.path == "/" { return SignIn.page() }
        throw APIError(.unauthorized, "send Authorization: Bearer <token>, or sign in at / for a session cookie")
    }
}
