import EventEmitter
import EventWire
import Foundation
import GridBase
import GridControl
import GridEvents
import Logging

/// Storage nodes as child processes: spawns them, notices a crash at once (Foundation reaps the child and calls
/// back), records the exit code or signal, restarts with backoff within the restart policy, and stops them with
/// SIGTERM, a grace period, then SIGKILL.
public final class NodeSupervisor: @unchecked Sendable {
    /// What the supervisor knows of a node is what the agent reports to the master.
    public typealias NodeInfo = NodeReport

    public struct SpawnError: Error, CustomStringConvertible, Sendable {
        public var description: String
    }

    /// Mutated only under the supervisor's lock.
    final class Node: @unchecked Sendable {
        var info: NodeInfo
        var memoryLimitMb: Int
        var process: Process?
        var stopping = false
        /// Set while `launch` runs: an exit then is reported by `launch` itself, not as a crash.
        var launching = false
        var restartTimes: [Date] = []
        init(info: NodeInfo, memoryLimitMb: Int) {
            self.info = info
            self.memoryLimitMb = memoryLimitMb
        }
    }

    let config: AgentConfig
    let events: EventEmitter
    let logger: Logger
    private let lock = ConditionLock()
    private var nodes: [String: Node] = [:]
    private let restarts = DispatchQueue(label: "grid-agent.restarts")

    /// Where nodes' data may go: `config.storageRoot`, created and resolved here.
    public let storageRoot: StorageRoot

    /// - Throws: `StorageRoot.Refusal` when `storage_root` cannot be created or resolved.
    public init(config: AgentConfig, events: EventEmitter, logger: Logger) throws {
        self.config = config
        self.events = events
        self.logger = logger
        self.storageRoot = try StorageRoot(config.storageRoot)
    }

    public var list: [NodeInfo] {
        lock.withLock { nodes.values.map(\.info).sorted { $0.nodeId < $1.nodeId } }
    }

    /// Starts a node with exactly the id and port asked for, on the storage path asked for as `StorageRoot.place`
    /// resolves it (below `storage_root`, or refused); returns its pid once it is up, and the path it uses.
    public func spawn(nodeId: String, port: Int, storagePath: String, memoryLimitMb: Int) throws -> (pid: Int, storagePath: String) {
        guard (config.portMin...config.portMax).contains(port) else {
            throw SpawnError(description: "port \(port) is outside this agent's range \(config.portMin)-\(config.portMax)")
        }
        let path: String
        do {
            path = try storageRoot.place(storagePath)
        } catch {
            throw SpawnError(description: error.description)
        }
        let node = Node(info: NodeInfo(nodeId: nodeId, port: port, storagePath: path, pid: nil, state: "starting", restartCount: 0),
                        memoryLimitMb: memoryLimitMb)
        // Check and reserve in one step, so two concurrent spawns cannot both pass.
        try lock.withLock { () throws -> Void in
            if nodes[nodeId] != nil { throw SpawnError(description: "node \(nodeId) already runs here") }
            if nodes.count >= config.maxStorageNodes { throw SpawnError(description: "this agent runs at most \(config.maxStorageNodes) nodes") }
            if nodes.values.contains(where: { $0.info.port == port }) { throw SpawnError(description: "port \(port) is used by another node") }
            nodes[nodeId] = node
        }
        guard FileManager.default.isWritableFile(atPath: path) else {
            _ = lock.withLock { nodes.removeValue(forKey: nodeId) }
            throw SpawnError(description: "storage path \(storagePath) (\(path)) is not writable")
        }
        do {
            let pid = try launch(node)
            return (pid, path)
        } catch {
            _ = lock.withLock { nodes.removeValue(forKey: nodeId) }
            throw error
        }
    }

    private func socketPath(_ node: Node) -> String {
        let p = node.info.storagePath + "/node.sock"
        return p.utf8.count < 100 ? p : "/tmp/grid-node-\(getpid())-\(node.info.port).sock"
    }

    /// Starts the node's process and waits until it listens (its socket and its HTTP port accept), at most 8 s.
    private func launch(_ node: Node) throws -> Int {
        lock.withLock { node.launching = true }
        defer { lock.withLock { node.launching = false } }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: config.nodeBinary)
        let socket = socketPath(node)
        unlink(socket)  // a SIGKILLed node leaves its socket file; the check below must see the new one
        process.arguments = ["--data-dir", node.info.storagePath, "--socket", socket, "--http", "127.0.0.1:\(node.info.port)",
                             "--metrics-interval", "3600"]
        var env = ProcessInfo.processInfo.environment
        env.removeValue(forKey: "EVENT_STORAGE")
        process.environment = env
        let logPath = node.info.storagePath + "/node.log"
        FileManager.default.createFile(atPath: logPath, contents: nil)
        if let log = FileHandle(forWritingAtPath: logPath) {
            log.seekToEndOfFile()
            process.standardError = log
            process.standardOutput = log
        }
        process.terminationHandler = { [weak self] p in self?.exited(node.info.nodeId, p) }
        do {
            try process.run()
        } catch {
            throw SpawnError(description: "cannot start \(config.nodeBinary): \((error as NSError).localizedDescription)")
        }
        let abandoned = lock.withLock { () -> Bool in
            node.process = process
            node.info.pid = Int(process.processIdentifier)
            return node.stopping || nodes[node.info.nodeId] !== node
        }
        func kill9() {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
        }
        if abandoned {
            kill9()
            throw SpawnError(description: "node \(node.info.nodeId) was stopped while starting")
        }
        let deadline = Date().addingTimeInterval(8)
        while Date() < deadline {
            if !process.isRunning {
                let tail = (try? String(contentsOfFile: logPath, encoding: .utf8)).map { String($0.suffix(300)) } ?? ""
                throw SpawnError(description: "node exited during start (status \(process.terminationStatus)): \(tail.trimmingCharacters(in: .whitespacesAndNewlines))")
            }
            // The producer socket listens first, its HTTP port a moment later: up means both accept.
            if FileManager.default.fileExists(atPath: socket), NodeSupervisor.answersUnix(socket), NodeSupervisor.answers(port: node.info.port) {
                let stoppedMeanwhile = lock.withLock { () -> Bool in
                    node.info.state = node.info.restartCount > 0 ? "restarted" : "running"
                    return node.stopping || nodes[node.info.nodeId] !== node
                }
                if stoppedMeanwhile {
                    kill9()
                    throw SpawnError(description: "node \(node.info.nodeId) was stopped while starting")
                }
                return Int(process.processIdentifier)
            }
            usleep(20_000)
        }
        kill9()
        throw SpawnError(description: "node did not start listening within 8 s")
    }

    /// A child exited: expected (stop) or a crash, which is reported and restarted within the policy.
    private func exited(_ nodeId: String, _ process: Process) {
        let (node, expected) = lock.withLock { () -> (Node?, Bool) in
            guard let node = nodes[nodeId], node.process === process else { return (nil, true) }
            if node.launching { return (nil, true) }  // launch reports this itself
            if node.stopping {
                node.info.state = "stopped"
                lock.broadcast()
                return (node, true)
            }
            node.info.state = "crashed"
            node.info.pid = nil
            return (node, false)
        }
        guard let node, !expected else { return }
        let signal = process.terminationReason == .uncaughtSignal ? Int(process.terminationStatus) : nil
        let code = signal == nil ? Int(process.terminationStatus) : nil
        events.emit(.nodeCrashed(nodeId: nodeId, agentId: config.agentId, exitCode: code, signal: signal))
        logger.warning("node \(nodeId) crashed (\(signal.map { "signal \($0)" } ?? "exit \(code ?? 0)"))")
        let now = Date()
        let (allowed, attempt) = lock.withLock { () -> (Bool, Int) in
            node.restartTimes = node.restartTimes.filter { now.timeIntervalSince($0) < config.restartWindowSeconds }
            return (node.restartTimes.count < config.maxRestarts, node.restartTimes.count)
        }
        guard allowed else {
            let reason = "restart limit reached: \(config.maxRestarts) restarts within \(Int(config.restartWindowSeconds)) s; giving up"
            events.emit(.spawnFailed(nodeId: nodeId, agentId: config.agentId, error: reason))
            logger.error("node \(nodeId): \(reason)")
            lock.withLock { node.info.state = "failed" }
            return
        }
        let delay = min(30, config.restartBackoffSeconds * pow(2, Double(attempt)))
        restarts.asyncAfter(deadline: .now() + delay) { [weak self] in
            guard let self else { return }
            let proceed = self.lock.withLock { () -> Bool in
                guard self.nodes[nodeId] === node, !node.stopping else { return false }
                node.restartTimes.append(Date())
                node.info.restartCount += 1
                return true
            }
            guard proceed else { return }
            do {
                // The path is checked again: a symlink planted since the spawn is refused, not followed.
                do throws(StorageRoot.Refusal) {
                    _ = try self.storageRoot.place(node.info.storagePath)
                } catch {
                    throw SpawnError(description: error.description)
                }
                let pid = try self.launch(node)
                self.events.emit(.nodeRestarted(nodeId: nodeId, agentId: self.config.agentId, restartCount: node.info.restartCount, newPid: pid))
                self.logger.info("node \(nodeId) restarted, pid \(pid)")
            } catch {
                self.events.emit(.spawnFailed(nodeId: nodeId, agentId: self.config.agentId, error: "restart failed: \(error)"))
                self.lock.withLock { node.info.state = "failed" }
            }
        }
    }

    /// Stops a node: SIGTERM, up to `stopGraceSeconds`, then SIGKILL.
    public func stop(nodeId: String) throws {
        let node = try lock.withLock { () throws -> Node in
            guard let node = nodes[nodeId] else { throw SpawnError(description: "node \(nodeId) is not running on this agent") }
            node.stopping = true
            node.info.state = "stopping"
            return node
        }
        if let p = node.process, p.isRunning {
            kill(p.processIdentifier, SIGTERM)
            let deadline = Date().addingTimeInterval(config.stopGraceSeconds)
            while p.isRunning, Date() < deadline { usleep(20_000) }
            if p.isRunning {
                kill(p.processIdentifier, SIGKILL)
                p.waitUntilExit()
            }
        }
        _ = lock.withLock { nodes.removeValue(forKey: nodeId) }
    }

    /// Every `monitor_interval`: a running node must still answer on its port; one that does not is logged
    /// (its process is alive, or reaping would already have reported it).
    public func monitor() {
        for n in list where n.state == "running" || n.state == "restarted" {
            if !NodeSupervisor.answers(port: n.port) {
                logger.warning("node \(n.nodeId) (pid \(n.pid ?? 0)) does not answer on port \(n.port)")
            }
        }
    }

    /// True when something accepts connections on the Unix socket at `path`.
    static func answersUnix(_ path: String) -> Bool { UnixSocket.isListening(path) }

    static func answers(port: Int) -> Bool {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = in_port_t(UInt16(port).bigEndian)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        return withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0 }
        }
    }

    public func stopAll() {
        for n in list { try? stop(nodeId: n.nodeId) }
    }
}
