/// The routes a server has, by path pattern (`{name}` matches one path segment), so a request with a method the
/// path does not take can be answered 405 with `Allow`, not 404 (used by grid-eventd's and grid-master's routers).
public struct RouteTable: Sendable {
    public let routes: [(pattern: [Substring], methods: [String])]

    public init(_ routes: [(String, [String])]) {
        self.routes = routes.map { ($0.0.split(separator: "/", omittingEmptySubsequences: true), $0.1) }
    }

    /// The methods `path` takes, or nil when no route has that path.
    public func methods(for path: String) -> [String]? {
        let parts = path.split(separator: "/", omittingEmptySubsequences: true)
        var out: [String] = []
        for r in routes where r.pattern.count == parts.count {
            let match = zip(r.pattern, parts).allSatisfy { p, s in p.hasPrefix("{") || p == s }
            if match { for m in r.methods where !out.contains(m) { out.append(m) } }
        }
        return out.isEmpty ? nil : out
    }
}
