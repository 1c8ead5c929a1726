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

    /// The page, its stylesheet and its script, by route, from the first of `directories` that holds them.
    public static let assets: [String: Asset] = load(from: directories)

    /// Where the files are looked for: the resource bundle beside the executable (where SwiftPM puts it, and where
    /// an installed grid-eventd must keep it), then the source tree this binary was built from. Not `Bundle.module`:
    /// its accessor stops the process when the bundle is missing, and a daemon without its dashboard files must
    /// still serve its API.
    static var directories: [URL] {
        let bundle = "SutraGridEvents_EventDaemon.resources"
        var out = [Bundle.main.bundleURL.appendingPathComponent(bundle)]
        let executable = URL(fileURLWithPath: CommandLine.arguments.first ?? "").resolvingSymlinksInPath().deletingLastPathComponent()
        out.append(executable.appendingPathComponent(bundle))
        return out.map { $0.appendingPathComponent("Dashboard") }
            + [URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Dashboard")]
    }

    /// The files from the first directory holding all three; when none does, each route serves a short notice
    /// naming where the files were looked for (the daemon keeps running; the API is unaffected).
    public static func load(from directories: [URL]) -> [String: Asset] {
        let files = [
            ("/", "index.html", "text/html; charset=utf-8"),
            ("/dashboard.css", "dashboard.css", "text/css; charset=utf-8"),
            ("/dashboard.js", "dashboard.js", "text/javascript; charset=utf-8"),
        ]
        for dir in directories {
            let bodies = files.map { try? String(contentsOf: dir.appendingPathComponent($0.1), encoding: .utf8) }
            if bodies.allSatisfy({ $0 != nil }) {
                return Dictionary(uniqueKeysWithValues: zip(files, bodies).map { f, body in
                    (f.0, Asset(route: f.0, contentType: f.2, body: body!))
                })
            }
        }
        let notice = "dashboard files not found in " + directories.map(\.path).joined(separator: ", ")
            + ": keep the SutraGridEvents_EventDaemon.resources directory beside the grid-eventd binary"
        return Dictionary(uniqueKeysWithValues: files.map { f in
            let html = notice.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
            let body = f.1.hasSuffix(".html") ? "<!doctype html><title>Sutra Grid Events</title><p>" + html + "</p>"
                : "/* " + notice.replacingOccurrences(of: "*/", with: "* /") + " */"
            return (f.0, Asset(route: f.0, contentType: f.2, body: body))
        })
    }

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

    /// The dashboard's files, with their security headers; the page at `/` is the context's `dashboardHTML`.
    static func addRoutes(to router: Router<BasicRequestContext>, api: APIContext) {
        for asset in assets.values {
            let body = asset.route == "/" ? api.dashboardHTML : asset.body
            router.get(RouterPath(asset.route)) { _, _ in
                response(body, contentType: asset.contentType, cacheControl: "no-cache")
            }
        }
    }

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
