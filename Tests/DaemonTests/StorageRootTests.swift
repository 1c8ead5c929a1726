import Foundation
import GridAgent
import GridControl
import Testing

/// `StorageRoot.place`: where a node's data may go on an agent (storage_root), each refusal and what is accepted.
@Suite("An agent's storage_root")
struct StorageRootTests {
    /// A temporary root and a temporary directory outside it.
    final class Setup {
        let top = TempDir("sroot")
        let root: StorageRoot
        var outside: String { top.file("outside") }
        init() throws {
            try FileManager.default.createDirectory(atPath: top.file("outside"), withIntermediateDirectories: true)
            root = try StorageRoot(top.file("root"))
        }
        func exists(_ path: String) -> Bool { FileManager.default.fileExists(atPath: path) }
        func refusal(_ path: String) -> String? {
            do {
                let placed = try root.place(path)
                Issue.record("\(path) was accepted as \(placed)")
                return nil
            } catch {
                return error.description
            }
        }
    }

    @Test func legitimatePathsAreCreatedBelowTheRoot() throws {
        let s = try Setup()
        #expect(s.exists(s.top.file("root")), "the root is created at start")
        let relative = try s.root.place("node-1")
        #expect(relative == s.root.real + "/node-1")
        #expect(s.exists(relative))
        let nested = try s.root.place(s.top.file("root") + "/group/node-2")
        #expect(nested == s.root.real + "/group/node-2")
        var st = stat()
        #expect(stat(nested, &st) == 0 && st.st_mode & S_IFMT == S_IFDIR)
        #expect(st.st_mode & 0o007 == 0, "created closed to others (mode 0750 before the umask)")
        #expect(try s.root.place("node-1") == relative, "an existing directory is accepted again")
        // `..` that stays inside is taken as written, and a symlink that stays inside is resolved.
        #expect(try s.root.place("group/../node-3") == s.root.real + "/node-3")
        #expect(symlink(s.root.real + "/group", s.root.real + "/alias") == 0)
        #expect(try s.root.place("alias/node-4") == s.root.real + "/group/node-4")
        #expect(s.exists(s.root.real + "/group/node-4"))
    }

    @Test func aPathOutsideTheRootIsRefused() throws {
        let s = try Setup()
        let message = try #require(s.refusal(s.outside + "/node-x"))
        #expect(message.contains("is outside storage_root \(s.root.configured)"), "\(message)")
        #expect(!s.exists(s.outside + "/node-x"), "nothing is created outside")
        #expect(s.refusal("/etc/node-x")?.contains("is outside storage_root") == true)
        // A sibling whose name starts like the root is outside too.
        #expect(s.refusal(s.top.file("root-evil") + "/n")?.contains("is outside storage_root") == true)
        #expect(!s.exists(s.top.file("root-evil")))
        #expect(s.refusal(s.top.file("root"))?.contains("is storage_root") == true, "the root itself is no node's directory")
        #expect(s.refusal("")?.contains("non-empty") == true)
        #expect(s.refusal("node\u{0}x")?.contains("control characters") == true)
    }

    @Test func dotDotThatClimbsOutIsRefused() throws {
        let s = try Setup()
        for path in ["../outside/node-x", "a/../../outside/node-x", s.top.file("root") + "/../outside/node-x", "./../../../../etc/x"] {
            let message = try #require(s.refusal(path), "\(path)")
            #expect(message.contains("climbs out of storage_root") && message.contains("'..'"), "\(path): \(message)")
        }
        #expect(!s.exists(s.outside + "/node-x"))
        #expect(!s.exists(s.root.real + "/a"), "nothing is created on the way")
    }

    @Test func aSymlinkThatLeadsOutIsRefused() throws {
        let s = try Setup()
        // A directory symlink inside the root pointing outside, on the way and as the node's directory itself.
        #expect(symlink(s.outside, s.root.real + "/escape") == 0)
        let through = try #require(s.refusal("escape/node-x"))
        #expect(through.contains("through the symlink \(s.root.configured)/escape -> \(s.outside)"), "\(through)")
        #expect(s.refusal(s.top.file("root") + "/escape")?.contains("through the symlink") == true)
        #expect(!s.exists(s.outside + "/node-x"), "nothing is created where the symlink points")
        // Deeper: a symlink below an ordinary directory, and one whose target does not exist yet.
        _ = try s.root.place("group")
        #expect(symlink("/etc", s.root.real + "/group/etc") == 0)
        #expect(s.refusal("group/etc/node-y")?.contains("through the symlink") == true)
        #expect(symlink(s.outside + "/later", s.root.real + "/dangling") == 0)
        let dangling = try #require(s.refusal("dangling/node-z"))
        #expect(dangling.contains("symlink"), "\(dangling)")
        #expect(!s.exists(s.outside + "/later"), "a dangling symlink's target is not created")
        // A file where a directory is needed.
        FileManager.default.createFile(atPath: s.root.real + "/file", contents: Data())
        #expect(s.refusal("file/node")?.contains("not a directory") == true)
    }

    @Test func agentConfigNamesTheRootAndTheToken() throws {
        let c = try AgentConfig.parse("storage_root = \"/srv/nodes\"\ntoken = \"0123456789abcdef0\"")
        #expect(c.storageRoot == "/srv/nodes")
        #expect(c.token == "0123456789abcdef0")
        #expect(try AgentConfig.parse("data_root = \"/old/name\"").storageRoot == "/old/name", "data_root is its old name")
        #expect(try AgentConfig.parse("token = \"\"").token == nil, "an empty token is no token")
        #expect(AgentConfig().storageRoot == "./data/nodes")
        #expect(AgentConfig().token == nil)
    }

    @Test func tokenRules() {
        #expect(ControlToken.listenProblem(host: "127.0.0.1", token: nil) == nil)
        #expect(ControlToken.listenProblem(host: "localhost", token: nil) == nil)
        #expect(ControlToken.listenProblem(host: "0.0.0.0", token: nil)?.contains("beyond loopback") == true)
        #expect(ControlToken.listenProblem(host: "0.0.0.0", token: "short") != nil, "16 characters or more")
        #expect(ControlToken.listenProblem(host: "10.1.2.3", token: "0123456789abcdef") == nil)
        #expect(ControlToken.refusal(authorization: "Bearer 0123456789abcdef", token: "0123456789abcdef") == nil)
        #expect(ControlToken.refusal(authorization: "Bearer 0123456789abcdeX", token: "0123456789abcdef")?.status == 401)
        #expect(ControlToken.refusal(authorization: nil, token: "0123456789abcdef")?.code == "unauthorized")
        #expect(ControlToken.resolve(nil, environment: ["GRID_MASTER_TOKEN": "m", "GRID_EVENTS_TOKEN": "e"]) == "m")
        #expect(ControlToken.resolve("f", environment: ["GRID_MASTER_TOKEN": "m"]) == "f")
        #expect(ControlToken.resolve(nil, environment: ["GRID_MASTER_TOKEN": "", "GRID_EVENTS_TOKEN": "e"]) == "e")
        #expect(ControlToken.resolve(nil, environment: [:]) == nil)
    }
}
