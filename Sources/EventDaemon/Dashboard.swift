import Foundation
import Hummingbird
import NIOCore

/// The dashboard served at `/`: `index.html`, `dashboard.css` and `dashboard.js` in `Sources/EventDaemon/Dashboard/`,
/// copied by SwiftPM into the target's resource bundle (`SutraGridEvents_EventDaemon.resources`, beside the
/// executable) and read once, on first use. No build step and no network fetch beyond this daemon's own API; every
/// piece of event content is put in the page with `textContent` (never as HTML), so an event whose fields hold
/// `<script>` shows as text.
public enum Dashboard {
    /// One served file: its route, body and content type.
    public struct Asset: Sendable {
        public var route: String
        public var contentType: String
        public var body: String
    }

    /// The page, its stylesheet and its script, by route. A file that cannot be read is served as a short notice
    /// naming the path it was looked for at (the daemon keeps running; the API is unaffected).
    public static let assets: [String: Asset] = {
        let files = [
            ("/", "index.html", "text/html; charset=utf-8"),
            ("/dashboard.css", "dashboard.css", "text/css; charset=utf-8"),
            ("/dashboard.js", "dashboard.js", "text/javascript; charset=utf-8"),
        ]
        var out: [String: Asset] = [:]
        for (route, name, type) in files {
            let url = Bundle.module.resourceURL?.appendingPathComponent("Dashboard").appendingPathComponent(name)
            let body = url.flatMap { try? String(contentsOf: $0, encoding: .utf8) }
                ?? "/* dashboard file \(name) not found at \(url?.path ?? "(no resource bundle)"): keep the "
                + "SutraGridEvents_EventDaemon.resources directory beside the grid-eventd binary */"
            out[route] = Asset(route: route, contentType: type, body: body)
        }
        return out
    }()

    /// The page served at `/`.
    public static var html: String { assets["/"]!.body }
    /// The stylesheet served at `/dashboard.css`.
    public static var css: String { assets["/dashboard.css"]!.body }
    /// The script served at `/dashboard.js`.
    public static var javascript: String { assets["/dashboard.js"]!.body }

    /// The security policy of the dashboard's files: only this daemon's own script, styles and API (no inline
    /// script, no other origin, no framing).
    public static let contentSecurityPolicy = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
        + "connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

    /// A dashboard file as a response: its content type, caching, and the security headers (content security
    /// policy, `nosniff`, no framing, no referrer).
    static func response(_ body: String, contentType: String, cacheControl: String) -> Response {
        var headers: HTTPFields = [.contentType: contentType, .cacheControl: cacheControl]
        headers[.contentSecurityPolicy] = contentSecurityPolicy
        headers[.init("X-Content-Type-Options")!] = "nosniff"
        headers[.init("X-Frame-Options")!] = "DENY"
        headers[.init("Referrer-Policy")!] = "no-referrer"
        return Response(status: .ok, headers: headers, body: ResponseBody(byteBuffer: ByteBuffer(string: body)))
    }
}
