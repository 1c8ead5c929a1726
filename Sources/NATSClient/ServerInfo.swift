import Foundation

/// The server's INFO: identity, limits, features and the cluster's other client URLs.
public struct NATSServerInfo: Codable, Sendable, Equatable {
    public var serverId: String?
    public var serverName: String?
    public var version: String?
    public var proto: Int?
    public var host: String?
    public var port: Int?
    public var headers: Bool?
    public var authRequired: Bool?
    public var tlsRequired: Bool?
    public var tlsAvailable: Bool?
    public var maxPayload: Int?
    public var connectURLs: [String]?
    public var lameDuckMode: Bool?
    public var jetstream: Bool?
    public var clientId: UInt64?
    public var cluster: String?

    enum CodingKeys: String, CodingKey {
        case serverId = "server_id", serverName = "server_name", version, proto, host, port, headers
        case authRequired = "auth_required", tlsRequired = "tls_required", tlsAvailable = "tls_available"
        case maxPayload = "max_payload", connectURLs = "connect_urls", lameDuckMode = "ldm", jetstream
        case clientId = "client_id", cluster
    }

    public init() {}

    /// Decodes INFO's JSON.
    /// - Throws: `NATSError.badResponse`.
    public static func decode(_ json: String) throws(NATSError) -> NATSServerInfo {
        do {
            return try JSONDecoder().decode(NATSServerInfo.self, from: Data(json.utf8))
        } catch {
            throw .badResponse("INFO does not decode: \(error)")
        }
    }
}

/// What the client says in CONNECT.
struct ConnectRequest: Encodable {
    var verbose = false
    var pedantic = false
    var tlsRequired: Bool
    var name: String?
    var lang = "swift"
    var version = "0.1.0"
    var proto = 1
    var echo = true
    var headers = true
    var noResponders = true
    var authToken: String?
    var user: String?
    var pass: String?

    enum CodingKeys: String, CodingKey {
        case verbose, pedantic, tlsRequired = "tls_required", name, lang, version, proto = "protocol", echo, headers
        case noResponders = "no_responders", authToken = "auth_token", user, pass
    }

    func json() -> String {
        let e = JSONEncoder()
        e.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return String(decoding: (try? e.encode(self)) ?? Data("{}".utf8), as: UTF8.self)
    }
}
