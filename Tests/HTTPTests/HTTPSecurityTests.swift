import EventDaemon
import Foundation
import Hummingbird
import HummingbirdTesting
import Logging
import Testing

/// The HTTP edge: bearer token, no files outside the embedded assets, body and header limits.
@Suite("HTTP API security", .serialized)
struct HTTPSecurityTests {
    @Test func tokenIsRequiredOnEveryRouteWhenSet() async throws {
        let f = try APIFixture()
        let token = "0123456789abcdef-token"
        let app = Application(router: HTTPAPI.router(f.daemon.apiContext()!, token: token),
                              configuration: .init(address: .hostname("127.0.0.1", port: 0)), logger: Logger(label: "t"))
        try await app.test(.live) { client in
            // `/` is the sign-in form without the token (SignInTests); everything else is refused.
            for uri in ["/dashboard.js", "/api/stats", "/api/events", "/api/events/stream"] {
                let none = try await client.execute(uri: uri, method: .get)
                #expect(none.status == .unauthorized, "\(uri)")
                let wrong = try await client.execute(uri: uri, method: .get, headers: [.authorization: "Bearer nope"])
                #expect(wrong.status == .unauthorized, "\(uri)")
            }
            let ok = try await client.execute(uri: "/api/stats", method: .get, headers: [.authorization: "Bearer " + token])
            #expect(ok.status == .ok)
        }
    }

    @Test func noRouteServesFilesOutsideTheEmbeddedAssets() async throws {
        let f = try APIFixture()
        try await f.app.test(.live) { client in
            for uri in [
                "/../../../../etc/passwd", "/%2e%2e/%2e%2e/etc/passwd", "/etc/passwd", "/dashboard.js/../../etc/passwd",
                "/api/../../etc/passwd", "/..%2f..%2fetc%2fpasswd", "/\(f.dir)/data/LOCK", "/data/LOCK", "/seg-0000000001.sgs",
            ] {
                let r = try await client.execute(uri: uri, method: .get)
                let body = String(buffer: r.body)
                #expect(r.status == .notFound || r.status == .badRequest, "\(uri): \(r.status)")
                #expect(!body.contains("root:"), "\(uri)")
                #expect(!body.contains("SGEVSEG1"), "\(uri)")
            }
        }
    }

    @Test func idsAreValidatedWithAClearError() async throws {
        let f = try APIFixture()
        try await f.app.test(.live) { client in
            for uri in ["/api/events/has%20space", "/api/events/" + String(repeating: "a", count: 300),
                        "/api/graph/neighbors?id=%3Cscript%3E", "/api/entities/a%22b/events"] {
                let r = try await client.execute(uri: uri, method: .get)
                #expect(r.status == .badRequest, "\(uri): \(r.status)")
                #expect(String(buffer: r.body).contains("\"code\":\"bad_"), "\(uri)")
            }
        }
    }

    @Test func bodyAndHeaderLimits() async throws {
        let f = try APIFixture()
        try await f.app.test(.live) { client in
            let big = #"{"query": ""# + String(repeating: "a", count: 100 << 10) + #""}"#
            let r = try await client.execute(uri: "/api/grid/events/query", method: .post,
                                             headers: [.contentType: "application/json"], body: ByteBuffer(string: big))
            #expect(r.status == .contentTooLarge)
            #expect(String(buffer: r.body).contains("body_too_large"))
            // A 200 KiB header is refused (a 4xx or a closed connection), and the server keeps serving.
            var refused = false
            do {
                let huge = try await client.execute(uri: "/api/stats", method: .get,
                                                    headers: [.init("X-Filler")!: String(repeating: "x", count: 200 << 10)])
                refused = huge.status.code >= 400
            } catch {
                refused = true
            }
            #expect(refused)
        }
        try await f.app.test(.live) { client in
            let ok = try await client.execute(uri: "/api/stats", method: .get)
            #expect(ok.status == .ok)
        }
    }
}
