import EventDaemon
import EventStore
import Foundation
import GridBase
import Testing

/// grid-eventd takes every setting through `DaemonConfig.resolve`: the config file, then the environment, then the
/// flags, each overriding the one before, checked once, with a message naming the setting.
@Suite("grid-eventd settings: file, then environment, then flags, checked once")
struct DaemonConfigTests {
    static func file(_ text: String) throws -> ConfigFile { try ConfigFile.parse(text, name: "grid-eventd.conf") }

    static func resolve(_ file: ConfigFile?, _ environment: [String: String] = [:], _ flags: DaemonFlags = DaemonFlags(),
                        files: [String: String] = [:]) throws -> DaemonConfig {
        try DaemonConfig.resolve(file: file, environment: environment, flags: flags) { path in
            guard let text = files[path] else { throw CocoaError(.fileNoSuchFile) }
            return text
        }
    }

    /// The message of what `body` throws, or nil when it does not throw.
    static func refusal(_ body: () throws -> DaemonConfig) -> String? {
        do {
            _ = try body()
            return nil
        } catch {
            return "\(error)"
        }
    }

    @Test func eachSourceOverridesTheOneBefore() throws {
        let none = try Self.resolve(nil)
        #expect(none.httpHost == "127.0.0.1" && none.httpPort == 7780)
        #expect(none.token == nil && none.logLevel == .info && none.allowedUids.isEmpty && none.durability == .batch)

        let file = try Self.file("""
            http = "0.0.0.0:7000"
            token = "file-token-0123456789"
            log_level = "debug"
            allow_uid = "1001, 1002"
            allow_gid = 50
            sync = "always"
            retain = "2d"
            """)
        let fromFile = try Self.resolve(file)
        #expect(fromFile.httpHost == "0.0.0.0" && fromFile.httpPort == 7000)
        #expect(fromFile.token == "file-token-0123456789")
        #expect(fromFile.logLevel == .debug)
        #expect(fromFile.allowedUids == [1001, 1002] && fromFile.allowedGids == [50])
        #expect(fromFile.durability == .always && fromFile.retainMicros == Int64(2 * 86_400_000_000))

        let environment = ["GRID_EVENTS_TOKEN": "env-token-0123456789"]
        let fromEnvironment = try Self.resolve(file, environment)
        #expect(fromEnvironment.token == "env-token-0123456789", "the environment beats the file")
        #expect(fromEnvironment.httpHost == "0.0.0.0" && fromEnvironment.logLevel == .debug)

        var flags = DaemonFlags()
        flags.token = "flag-token-0123456789"
        flags.http = "127.0.0.1:0"
        flags.logLevel = "error"
        flags.allowUid = [7]
        flags.sync = "none"
        flags.replication.hostId = "web-1"
        let fromFlags = try Self.resolve(file, environment, flags)
        #expect(fromFlags.token == "flag-token-0123456789", "a flag beats the environment and the file")
        #expect(fromFlags.httpHost == "127.0.0.1" && fromFlags.httpPort == 0)
        #expect(fromFlags.logLevel == .error && fromFlags.durability == Durability.none)
        #expect(fromFlags.allowedUids == [7])
        #expect(fromFlags.allowedGids == [50], "a setting no flag gives keeps the file's value")
        #expect(fromFlags.retainMicros == Int64(2 * 86_400_000_000))
        #expect(fromFlags.replication.hostId == "web-1")
    }

    /// The real reader (no injected files): a token file is read up to 4 KiB; a larger one (a wrong path: a log, a
    /// device) is refused without reading it all, and a missing one is named.
    @Test func aTokenFileIsReadWithASizeLimit() throws {
        let dir = NSTemporaryDirectory() + "token-file-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var flags = DaemonFlags()
        flags.tokenFile = dir + "/token"
        try Data("real-token-file-0123456789\n".utf8).write(to: URL(fileURLWithPath: dir + "/token"))
        #expect(try DaemonConfig.resolve(file: nil, environment: [:], flags: flags).token == "real-token-file-0123456789")
        flags.tokenFile = dir + "/big"
        try Data(repeating: UInt8(ascii: "a"), count: 4097).write(to: URL(fileURLWithPath: dir + "/big"))
        let big = Self.refusal { try DaemonConfig.resolve(file: nil, environment: [:], flags: flags) }
        #expect(big?.contains("--token-file") == true && big?.contains("larger than 4096 bytes") == true, "\(big ?? "nil")")
        flags.tokenFile = "/dev/zero"
        let device = Self.refusal { try DaemonConfig.resolve(file: nil, environment: [:], flags: flags) }
        #expect(device?.contains("larger than 4096 bytes") == true, "\(device ?? "nil")")
        flags.tokenFile = dir + "/none"
        let none = Self.refusal { try DaemonConfig.resolve(file: nil, environment: [:], flags: flags) }
        #expect(none?.contains(dir + "/none") == true && none?.contains("no such readable file") == true, "\(none ?? "nil")")
    }

    @Test func theTokenCanComeFromAFile() throws {
        let files = ["/run/a": "token-in-file-a-0123\n", "/run/b": "token-in-file-b-0123", "/run/two": "x\ny\n", "/run/empty": "\n"]
        let file = try Self.file("token_file = \"/run/a\"")
        #expect(try Self.resolve(file, files: files).token == "token-in-file-a-0123", "one line, its newline dropped")
        #expect(try Self.resolve(file, ["GRID_EVENTS_TOKEN": "env-token-0123456789"], files: files).token == "env-token-0123456789")
        #expect(try Self.resolve(nil, ["GRID_EVENTS_TOKEN_FILE": "/run/b"], files: files).token == "token-in-file-b-0123")
        var flags = DaemonFlags()
        flags.tokenFile = "/run/b"
        #expect(try Self.resolve(file, ["GRID_EVENTS_TOKEN": "env-token-0123456789"], flags, files: files).token == "token-in-file-b-0123")
        // Only the winning source is read: a missing file that something later overrides is no error.
        flags.tokenFile = nil
        flags.token = "flag-token-0123456789"
        #expect(try Self.resolve(try Self.file("token_file = \"/missing\""), [:], flags, files: files).token == "flag-token-0123456789")

        let missing = Self.refusal { try Self.resolve(try Self.file("token_file = \"/missing\""), files: files) }
        #expect(missing?.contains("grid-eventd.conf:1: token_file") == true && missing?.contains("/missing") == true, "\(missing ?? "nil")")
        flags.tokenFile = "/run/two"
        #expect(Self.refusal { try Self.resolve(nil, [:], flags, files: files) }?.contains("give --token or --token-file, not both") == true)
        flags.token = nil
        #expect(Self.refusal { try Self.resolve(nil, [:], flags, files: files) }?.contains("on one line") == true)
        flags.tokenFile = "/run/empty"
        #expect(Self.refusal { try Self.resolve(nil, [:], flags, files: files) }?.contains("on one line") == true)
        let both = Self.refusal { try Self.resolve(try Self.file("token = \"a\"\ntoken_file = \"/run/a\""), files: files) }
        #expect(both?.contains("grid-eventd.conf:2: give token or token_file, not both") == true, "\(both ?? "nil")")
    }

    @Test func badValuesAreRefusedNamingTheSetting() throws {
        func flags(_ set: (inout DaemonFlags) -> Void) -> DaemonFlags {
            var f = DaemonFlags()
            set(&f)
            return f
        }
        let cases: [(DaemonFlags, String)] = [
            (flags { $0.http = "7780" }, "http (--http) must be HOST:PORT"),
            (flags { $0.http = "127.0.0.1:70000" }, "http (--http) must be HOST:PORT"),
            (flags { $0.sync = "fast" }, "--sync must be batch, always or none"),
            (flags { $0.compression = "zstd" }, "--compression must be fast, high or none"),
            (flags { $0.logLevel = "loud" }, "unknown --log-level loud"),
            (flags { $0.logEvents = "loud" }, "log events level (--log-events, log_events)"),
            (flags { $0.retain = "3 fortnights" }, "--retain: "),
            (flags { $0.maxBytes = "lots" }, "--max-bytes: "),
            (flags { $0.maxIngestBody = "lots" }, "--max-ingest-body: "),
            (flags { $0.maxFrame = 10 }, "max frame (--max-frame, max_frame)"),
            (flags { $0.frameTimeout = 0 }, "frame timeout"),
            (flags { $0.segmentSize = 1000 }, "segment size"),
            (flags { $0.http = "0.0.0.0:7780" }, "binds beyond loopback"),
            (flags { $0.http = "0.0.0.0:7780"; $0.token = "short" }, "binds beyond loopback"),
            (flags { $0.replication.aggregate = "nats://h:0" }, "--aggregate"),
        ]
        for (f, message) in cases {
            let refusal = Self.refusal { try Self.resolve(nil, [:], f) }
            #expect(refusal?.contains(message) == true, "\(message): \(refusal ?? "accepted")")
        }
        #expect(Self.refusal { try Self.resolve(nil, [:], flags { $0.http = "0.0.0.0:7780"; $0.token = "sixteen-chars-ok" }) } == nil)

        let fileCases: [(String, String)] = [
            ("http = \"nohost\"", "grid-eventd.conf:1: http (http) must be HOST:PORT"),
            ("log_level = \"loud\"", "grid-eventd.conf:1: unknown log_level loud"),
            ("allow_uid = \"a,b\"", "grid-eventd.conf:1: allow_uid must be numbers"),
            ("allow_gid = -1", "grid-eventd.conf:1: allow_gid must be a uid or gid"),
            ("sync = \"fast\"", "grid-eventd.conf:1: sync must be batch, always or none"),
            ("max_bytes = \"-5\"", "grid-eventd.conf:1:"),
            ("retian = \"1d\"", "grid-eventd.conf:1: unknown key retian"),
        ]
        for (text, message) in fileCases {
            let refusal = Self.refusal { try Self.resolve(try Self.file(text)) }
            #expect(refusal?.contains(message) == true, "\(text): \(refusal ?? "accepted")")
        }
        // A file value is range-checked like the flag.
        #expect(Self.refusal { try Self.resolve(try Self.file("max_frame = 1000")) }?.contains("max frame") == true)
    }
}
