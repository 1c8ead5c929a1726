import EventStore
import Foundation
import GridBase
import Logging

/// What grid-eventd was given on its command line, as given (nil or empty: not given). `DaemonConfig.resolve`
/// lays it over the config file and the environment; the flags' names are in `grid-eventd --help`.
public struct DaemonFlags: Sendable {
    public var dataDir: String?
    public var socket: String?
    public var http: String?
    public var sync: String?
    public var segmentSize: Int?
    public var compression: String?
    public var retain: String?
    public var maxBytes: String?
    public var allowUid: [UInt32] = []
    public var allowGid: [UInt32] = []
    public var maxFrame: Int?
    public var frameTimeout: Double?
    public var metricsInterval: Double?
    public var token: String?
    public var tokenFile: String?
    public var logLevel: String?
    public var logEvents: String?
    public var maxIngestBody: String?
    public var otlpDefaultType: String?
    /// `--http-header-timeout`, `--http-idle-timeout`, `--http-max-connections`, `--http-max-connections-per-peer`.
    public var httpHeaderTimeout: Double?
    public var httpIdleTimeout: Double?
    public var httpMaxConnections: Int?
    public var httpMaxConnectionsPerPeer: Int?
    /// `--replicate`, `--aggregate`, `--host-id`, `--stream`, `--subject-prefix`, `--replicas`, `--consumer`,
    /// `--nats-ca`: only those given are set.
    public var replication = ReplicationSettings()

    public init() {}
}

/// Why grid-eventd's settings cannot be used: one message naming the setting (its flag and its config-file key)
/// and the value.
public struct ConfigProblem: Error, Sendable, CustomStringConvertible, Equatable {
    public var description: String
    public init(_ description: String) { self.description = description }
}

extension DaemonConfig {
    /// The environment variables grid-eventd reads: the HTTP bearer token, or a file holding it. (And, in test
    /// builds only, `GRID_EVENTD_FAULTS`: `TestFaults`.)
    public static let tokenVariable = "GRID_EVENTS_TOKEN"
    public static let tokenFileVariable = "GRID_EVENTS_TOKEN_FILE"

    /// The one place grid-eventd's settings come from: the defaults, then the config file (`--config`), then the
    /// environment (`GRID_EVENTS_TOKEN`, `GRID_EVENTS_TOKEN_FILE`), then the flags, each overriding the one before;
    /// the result is checked once (`problem`, the HTTP address, the token rule).
    /// - Parameter readFile: reads a token file (tests pass their own).
    /// - Throws: `ConfigProblem` for a bad value from any source, or `ConfigFile.ParseError` (`FILE:LINE: ...`)
    ///   for a bad line of the config file.
    public static func resolve(file: ConfigFile?, environment: [String: String], flags: DaemonFlags,
                               readFile: (String) throws -> String = DaemonConfig.readTokenFile) throws -> DaemonConfig {
        var c = DaemonConfig()
        var token: TokenSource?
        if let file { token = try c.apply(file) }
        if let t = environment[tokenVariable], !t.isEmpty { token = .value(t, "\(tokenVariable)") }
        if let f = environment[tokenFileVariable], !f.isEmpty { token = .file(f, "\(tokenFileVariable)") }
        try c.apply(flags, token: &token)
        if let token { c.token = try token.read(readFile) }
        #if GRID_FAULT_INJECTION
        if let spec = environment[TestFaults.environmentVariable], !spec.isEmpty {
            do {
                c.faults = try TestFaults.parse(spec)
            } catch {
                throw ConfigProblem("\(TestFaults.environmentVariable): \(error)")
            }
        }
        #else
        if let spec = environment["GRID_EVENTD_FAULTS"], !spec.isEmpty {
            throw ConfigProblem("GRID_EVENTD_FAULTS is set, but this is a release build, which cannot inject faults; unset it")
        }
        #endif
        if let problem = c.problem { throw ConfigProblem(problem) }
        return c
    }

    /// The largest token file read (a token is a line; a bigger file is a wrong path, such as a log or a device).
    public static let maxTokenFileBytes = 4096

    /// The text of a token file, reading at most `maxTokenFileBytes` (+1, to tell a file that is larger).
    public static func readTokenFile(_ path: String) throws -> String {
        guard let handle = FileHandle(forReadingAtPath: path) else {
            throw ConfigProblem("no such readable file")
        }
        defer { try? handle.close() }
        let data = try handle.read(upToCount: maxTokenFileBytes + 1) ?? Data()
        guard data.count <= maxTokenFileBytes else {
            throw ConfigProblem("larger than \(maxTokenFileBytes) bytes: not a token")
        }
        return String(decoding: data, as: UTF8.self)
    }

    /// Where the token comes from, with the setting that said so (for messages).
    enum TokenSource {
        case value(String, String)
        case file(String, String)

        func read(_ readFile: (String) throws -> String) throws -> String {
            switch self {
            case .value(let t, _): return t
            case .file(let path, let setting):
                let text: String
                do {
                    text = try readFile(path)
                } catch {
                    throw ConfigProblem("token file (\(setting)) \(path) cannot be read: \((error as? ConfigProblem)?.description ?? error.localizedDescription)")
                }
                // One line: a trailing newline (as editors and `echo` write it) is not part of the token.
                let token = text.hasSuffix("\r\n") ? String(text.dropLast(2)) : (text.hasSuffix("\n") ? String(text.dropLast()) : text)
                if token.isEmpty || token.contains("\n") {
                    throw ConfigProblem("token file (\(setting)) \(path) must hold the token on one line")
                }
                return token
            }
        }
    }

    private mutating func apply(_ f: DaemonFlags, token: inout TokenSource?) throws {
        if f.token != nil && f.tokenFile != nil { throw ConfigProblem("give --token or --token-file, not both") }
        if let v = f.dataDir { dataDirectory = v }
        if let v = f.socket { socketPath = v }
        if let v = f.http { try setHTTP(v, "--http") }
        if let v = f.sync { durability = try Self.parseDurability(v, "--sync") }
        if let v = f.segmentSize { segmentCapacity = v }
        if let v = f.compression { compression = try Self.parseCompression(v, "--compression") }
        if let v = f.retain { retainMicros = try Self.quantity("--retain") { try Quantity.duration(v) } }
        if let v = f.maxBytes { maxBytes = try Self.quantity("--max-bytes") { try Quantity.bytes(v) } }
        if !f.allowUid.isEmpty { allowedUids = Set(f.allowUid) }
        if !f.allowGid.isEmpty { allowedGids = Set(f.allowGid) }
        if let v = f.maxFrame { maxFrame = v }
        if let v = f.frameTimeout { frameTimeoutSeconds = v }
        if let v = f.metricsInterval { metricsIntervalSeconds = v }
        if let v = f.token { token = .value(v, "--token") }
        if let v = f.tokenFile { token = .file(v, "--token-file") }
        if let v = f.logLevel { logLevel = try Self.parseLevel(v, "--log-level") }
        if let v = f.logEvents { logEvents = v }
        if let v = f.maxIngestBody { maxIngestBody = try Self.quantity("--max-ingest-body") { try Quantity.bytes(v) } }
        if let v = f.otlpDefaultType { otlpDefaultType = v }
        if let v = f.httpHeaderTimeout { httpLimits.headerTimeout = v }
        if let v = f.httpIdleTimeout { httpLimits.idleTimeout = v }
        if let v = f.httpMaxConnections { httpLimits.maxConnections = v }
        if let v = f.httpMaxConnectionsPerPeer { httpLimits.maxConnectionsPerPeer = v }
        replication.overlay(f.replication)
    }

    static func quantity<T>(_ setting: String, _ parse: () throws -> T) throws -> T {
        do {
            return try parse()
        } catch let error as QuantityError {
            throw ConfigProblem("\(setting): \(error.message)")
        }
    }

    mutating func setHTTP(_ text: String, _ setting: String) throws {
        guard let (host, port) = Self.hostPort(text) else {
            throw ConfigProblem("http (\(setting)) must be HOST:PORT, like 127.0.0.1:7780 (got \(text))")
        }
        httpHost = host
        httpPort = port
    }

    /// `HOST:PORT` split at the last colon; nil when it is not that.
    public static func hostPort(_ s: String) -> (String, Int)? {
        guard let colon = s.lastIndex(of: ":"), let port = Int(s[s.index(after: colon)...]), (0...65535).contains(port) else { return nil }
        let host = String(s[..<colon])
        return host.isEmpty ? nil : (host, port)
    }

    static func parseDurability(_ s: String, _ setting: String) throws -> Durability {
        guard let d = Durability(rawValue: s) else { throw ConfigProblem("\(setting) must be batch, always or none (got \(s))") }
        return d
    }

    static func parseCompression(_ s: String, _ setting: String) throws -> Compression {
        guard let c = Compression(rawValue: s) else { throw ConfigProblem("\(setting) must be fast, high or none (got \(s))") }
        return c
    }

    static func parseLevel(_ s: String, _ setting: String) throws -> Logger.Level {
        guard let l = Logger.Level(rawValue: s) else {
            throw ConfigProblem("unknown \(setting) \(s): trace, debug, info, notice, warning, error or critical")
        }
        return l
    }

    /// Uids or gids from a config-file value: one number, or several separated by commas.
    static func ids(_ e: ConfigFile.Entry) throws -> Set<UInt32> {
        if let n = try? e.int() {
            guard let id = UInt32(exactly: n) else { throw e.error("\(e.key) must be a uid or gid (0 to 4294967295)") }
            return [id]
        }
        var out = Set<UInt32>()
        for part in try e.string().split(separator: ",") {
            guard let id = UInt32(part.trimmingCharacters(in: .whitespaces)) else {
                throw e.error("\(e.key) must be numbers separated by commas, like \"1000,1001\"")
            }
            out.insert(id)
        }
        return out
    }

    /// Whether `host` is a loopback address (the HTTP API then needs no token).
    public static func isLoopback(_ host: String) -> Bool {
        host == "127.0.0.1" || host == "localhost" || host == "::1" || host.hasPrefix("127.")
    }
}

extension ReplicationSettings {
    /// Takes every setting `other` has.
    mutating func overlay(_ other: ReplicationSettings) {
        if let v = other.replicate { replicate = v }
        if let v = other.aggregate { aggregate = v }
        if let v = other.hostId { hostId = v }
        if let v = other.stream { stream = v }
        if let v = other.subjectPrefix { subjectPrefix = v }
        if let v = other.replicas { replicas = v }
        if let v = other.consumer { consumer = v }
        if let v = other.natsCA { natsCA = v }
    }
}
