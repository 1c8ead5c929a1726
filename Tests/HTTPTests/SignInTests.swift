import EventDaemon
import Foundation
import Hummingbird
import HummingbirdTesting
import Logging
import Testing

/// A daemon with `--token` used from a browser: the sign-in form, the session cookie the API and the live stream
/// accept, sign-out, and the bearer header still working (HTTP level; the browser itself: DashboardTests).
@Suite("Sign-in with a session cookie", .serialized, .timeLimit(.minutes(3)))
struct SignInTests {
    static let token = "0123456789abcdef-token"

    /// The `grid_session=<id>` part of a Set-Cookie value.
    static func cookiePair(_ setCookie: String?) -> String? {
        setCookie?.split(separator: ";").first.map { String($0) }
    }

    @Test func signedOutWrongTokenRightTokenCookieStreamAndSignOut() async throws {
        let f = try APIFixture()
        let sessions = SessionStore(failureDelaySeconds: 0.2)
        let app = Application(router: HTTPAPI.router(f.daemon.apiContext()!, token: Self.token, sessions: sessions),
                              configuration: .init(address: .hostname("127.0.0.1", port: 0)), logger: Logger(label: "t"))
        try await app.test(.live) { client in
            let port = try #require(client.port)
            // Signed out: the API answers 401, `/` is the sign-in form and holds no data.
            for uri in ["/api/stats", "/api/events", "/api/events/stream", "/dashboard.js", "/api/session"] {
                let r = try await client.execute(uri: uri, method: .get)
                #expect(r.status == .unauthorized, "\(uri): \(r.status)")
            }
            let page = try await client.execute(uri: "/", method: .get)
            let html = String(buffer: page.body)
            #expect(page.status == .ok)
            #expect(html.contains("<form id=\"signin\"") && html.contains("action=\"/api/session\"") && html.contains("name=\"token\""), "\(html)")
            #expect(!html.contains("dashboard.js") && !html.contains("agent-") && !html.contains("node-"), "the sign-in page shows no data")
            #expect(page.headers[.contentSecurityPolicy]?.contains("form-action 'self'") == true)
            #expect(page.headers[.setCookie] == nil)
            // The stylesheet the form uses is open.
            #expect(try await client.execute(uri: "/dashboard.css", method: .get).status == .ok)

            // A wrong token: 401, the form again with a message, no cookie, and nothing of the token said.
            let formType: HTTPFields = [.contentType: "application/x-www-form-urlencoded"]
            let started = Date()
            let wrong = try await client.execute(uri: "/api/session", method: .post, headers: formType,
                                                 body: ByteBuffer(string: "token=0123456789abcdef-tokeX"))
            #expect(Date().timeIntervalSince(started) >= 0.2, "a failed sign-in is answered after the delay")
            let wrongHTML = String(buffer: wrong.body)
            #expect(wrong.status == .unauthorized)
            #expect(wrongHTML.contains("id=\"signin-error\"") && wrongHTML.contains("not right") && wrongHTML.contains("<form id=\"signin\""))
            #expect(!wrongHTML.contains("0123456789"), "the answer repeats no part of a token")
            #expect(wrong.headers[.setCookie] == nil)
            let wrongJSON = try await client.execute(uri: "/api/session", method: .post, headers: [.contentType: "application/json"],
                                                     body: ByteBuffer(string: #"{"token":"nope"}"#))
            #expect(wrongJSON.status == .unauthorized && wrongJSON.headers[.setCookie] == nil)
            #expect(String(buffer: wrongJSON.body).contains("\"unauthorized\""))
            #expect(sessions.count == 0)

            // The right token as a form: 303 to `/` with the cookie.
            let right = try await client.execute(uri: "/api/session", method: .post, headers: formType,
                                                 body: ByteBuffer(string: "token=" + Self.token.addingPercentEncoding(withAllowedCharacters: .alphanumerics)!))
            #expect(right.status == .seeOther && right.headers[.location] == "/")
            let setCookie = try #require(right.headers[.setCookie])
            let attributes = Set(setCookie.split(separator: ";").map { $0.trimmingCharacters(in: .whitespaces).lowercased() })
            #expect(attributes.contains("httponly") && attributes.contains("samesite=strict") && attributes.contains("path=/"), "\(setCookie)")
            #expect(!attributes.contains("secure"), "no Secure over plain HTTP: \(setCookie)")
            let pair = try #require(Self.cookiePair(setCookie))
            let id = String(pair.dropFirst("grid_session=".count))
            #expect(id.count == 64 && id.allSatisfy(\.isHexDigit), "a 256-bit random id: \(id)")
            #expect(!setCookie.contains(Self.token), "the cookie is not the token")
            #expect(sessions.count == 1)
            let cookie: HTTPFields = [.cookie: pair]

            // The cookie opens the page, the API and the live stream.
            let dashboard = String(buffer: try await client.execute(uri: "/", method: .get, headers: cookie).body)
            #expect(dashboard.contains("dashboard.js") && !dashboard.contains("id=\"signin\""))
            #expect(try await client.execute(uri: "/api/stats", method: .get, headers: cookie).status == .ok)
            #expect(try await client.execute(uri: "/dashboard.js", method: .get, headers: cookie).status == .ok)
            let me = try await client.execute(uri: "/api/session", method: .get, headers: cookie)
            #expect(String(buffer: me.body) == #"{"auth":"cookie"}"#)
            let stream = LiveStreamTests.Stream(port: port, headers: ["Cookie: " + pair])
            let text = await stream.read(max: 10)
            #expect(text.hasPrefix("HTTP/1.1 200") && text.contains("text/event-stream") && text.contains(": keepalive"), "\(text.prefix(300))")
            // A made-up session id opens nothing.
            let forged = try await client.execute(uri: "/api/stats", method: .get, headers: [.cookie: "grid_session=" + String(repeating: "a", count: 64)])
            #expect(forged.status == .unauthorized)

            // The bearer header keeps working for scripts.
            let bearer = try await client.execute(uri: "/api/stats", method: .get, headers: [.authorization: "Bearer " + Self.token])
            #expect(bearer.status == .ok)
            #expect(String(buffer: try await client.execute(uri: "/api/session", method: .get, headers: [.authorization: "Bearer " + Self.token]).body)
                == #"{"auth":"bearer"}"#)

            // JSON sign-in, then sign-out with DELETE: the cookie is cleared and no longer accepted.
            let json = try await client.execute(uri: "/api/session", method: .post, headers: [.contentType: "application/json"],
                                                body: ByteBuffer(string: #"{"token":"\#(Self.token)"}"#))
            #expect(json.status == .ok)
            let second = try #require(Self.cookiePair(json.headers[.setCookie]))
            #expect(second != pair, "each sign-in gets its own session")
            let out = try await client.execute(uri: "/api/session", method: .delete, headers: [.cookie: second])
            #expect(out.status == .ok)
            #expect(out.headers[.setCookie]?.contains("Max-Age=0") == true)
            #expect(try await client.execute(uri: "/api/stats", method: .get, headers: [.cookie: second]).status == .unauthorized)
            #expect(try await client.execute(uri: "/api/stats", method: .get, headers: cookie).status == .ok, "the other session stays")
            // The form's sign-out: 303 to `/`, which then shows the form.
            let logout = try await client.execute(uri: "/api/session/logout", method: .post, headers: cookie)
            #expect(logout.status == .seeOther && logout.headers[.setCookie]?.contains("Max-Age=0") == true)
            #expect(try await client.execute(uri: "/api/stats", method: .get, headers: cookie).status == .unauthorized)
            #expect(String(buffer: try await client.execute(uri: "/", method: .get, headers: cookie).body).contains("id=\"signin\""))
            #expect(sessions.count == 0)
        }
    }

    @Test func sessionsExpireAreBoundedAndFailuresAreRateLimited() async throws {
        let f = try APIFixture()
        let sessions = SessionStore(ttlSeconds: 1, maxSessions: 3, failureDelaySeconds: 0, maxFailuresPerMinute: 3)
        let app = Application(router: HTTPAPI.router(f.daemon.apiContext()!, token: Self.token, sessions: sessions),
                              configuration: .init(address: .hostname("127.0.0.1", port: 0)), logger: Logger(label: "t"))
        try await app.test(.live) { client in
            func signIn() async throws -> String? {
                let r = try await client.execute(uri: "/api/session", method: .post, headers: [.contentType: "application/json"],
                                                 body: ByteBuffer(string: #"{"token":"\#(Self.token)"}"#))
                return Self.cookiePair(r.headers[.setCookie])
            }
            let first = try #require(try await signIn())
            #expect(try await client.execute(uri: "/api/stats", method: .get, headers: [.cookie: first]).status == .ok)
            // Four more sign-ins with room for three: the oldest session is dropped.
            for _ in 0..<3 { _ = try await signIn() }
            #expect(sessions.count == 3)
            #expect(try await client.execute(uri: "/api/stats", method: .get, headers: [.cookie: first]).status == .unauthorized)
            let last = try #require(try await signIn())
            try await Task.sleep(nanoseconds: 1_300_000_000)
            #expect(try await client.execute(uri: "/api/stats", method: .get, headers: [.cookie: last]).status == .unauthorized, "expired")

            // Three failures a minute are checked; the fourth is 429 even with the right token.
            for _ in 0..<3 {
                let r = try await client.execute(uri: "/api/session", method: .post, headers: [.contentType: "application/json"],
                                                 body: ByteBuffer(string: #"{"token":"wrong"}"#))
                #expect(r.status == .unauthorized)
            }
            let limited = try await client.execute(uri: "/api/session", method: .post, headers: [.contentType: "application/json"],
                                                   body: ByteBuffer(string: #"{"token":"\#(Self.token)"}"#))
            #expect(limited.status == .tooManyRequests && limited.headers[.setCookie] == nil)
            #expect(Int(limited.headers[.retryAfter] ?? "") ?? 0 > 0)
            // Bearer scripts are not affected.
            #expect(try await client.execute(uri: "/api/stats", method: .get, headers: [.authorization: "Bearer " + Self.token]).status == .ok)
        }
    }

    @Test func withoutATokenThereIsNothingToSignInTo() async throws {
        let f = try APIFixture()
        try await f.app.test(.live) { client in
            #expect(String(buffer: try await client.execute(uri: "/api/session", method: .get).body) == #"{"auth":"none"}"#)
            let r = try await client.execute(uri: "/api/session", method: .post, headers: [.contentType: "application/json"],
                                             body: ByteBuffer(string: #"{"token":"x"}"#))
            #expect(r.status == .badRequest && String(buffer: r.body).contains("no_token"))
            let page = String(buffer: try await client.execute(uri: "/", method: .get).body)
            #expect(page.contains("dashboard.js") && !page.contains("id=\"signin\""))
        }
    }
}
