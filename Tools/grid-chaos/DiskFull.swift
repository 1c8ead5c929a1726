import Foundation

/// The data directory on a small tmpfs. While producers stream, the file system is filled: grid-eventd must
/// refuse new writes with a clear error and acknowledge nothing it did not persist, the producers must spool,
/// and once the filler is deleted everything must flow again without restarting the daemon. Needs root (mount);
/// reported as skipped otherwise.
struct DiskFull: Scenario {
    let name = "disk-full"

    func run(_ ctx: ChaosContext) throws -> ScenarioResult {
        var result = ScenarioResult(name: name)
        let dir = try ctx.directory(name)
        let mountPoint = dir + "/fs"
        try FileManager.default.createDirectory(atPath: mountPoint, withIntermediateDirectories: true)
        let mount = runCommand("/bin/mount", ["-t", "tmpfs", "-o", "size=24m", "tmpfs", mountPoint])
        guard mount.status == 0 else {
            result.skipped = "cannot mount a tmpfs (\(mount.output.trimmingCharacters(in: .whitespacesAndNewlines))); run as root"
            return result
        }
        defer { runCommand("/bin/umount", ["-l", mountPoint]) }
        let cluster = Cluster(ctx, dir: dir, dataDir: mountPoint + "/data", daemonArguments: ["--segment-size", "\(1 << 20)"])
        try cluster.daemon.start()
        let rate = max(1000, ctx.rate / 2)
        try cluster.startEmitters(2, rate: rate)
        cluster.watch(1.5)
        let ackedBefore = cluster.acked
        result.check(ackedBefore > 0, "nothing acknowledged before the disk filled")

        // Fill the file system: the next segment cannot be created.
        let filler = mountPoint + "/filler"
        let fd = open(filler, O_CREAT | O_WRONLY, 0o600)
        var fs = statvfs()
        statvfs(mountPoint, &fs)
        let free = Int(fs.f_bavail) * Int(fs.f_frsize)
        _ = posix_fallocate(fd, 0, off_t(free))
        close(fd)
        let refused = cluster.wait(20) { cluster.daemon.log().contains("no space left") }
        result.check(refused, "grid-eventd did not report 'no space left' within 20 s: \(cluster.daemon.logTail())")
        // While full: nothing more is acknowledged (a second of grace for acks already on their way) and the
        // producers spool.
        cluster.watch(1.0)
        let ackedFull = cluster.acked
        let spooledFull = cluster.emitters.reduce(0) { $0 + $1.int("spooled") }
        cluster.watch(2.0)
        let ackedLater = cluster.acked
        let spooledLater = cluster.emitters.reduce(0) { $0 + $1.int("spooled") }
        result.check(ackedLater == ackedFull, "acknowledgements continued while the disk was full (\(ackedFull) -> \(ackedLater))")
        result.check(spooledLater > spooledFull, "producers did not spool while the disk was full (\(spooledFull) -> \(spooledLater))")
        result.check(cluster.daemon.isRunning, "grid-eventd died when the disk filled: \(cluster.daemon.logTail())")
        let refusals = cluster.emitters.reduce(0) { $0 + $1.int("store_refusals") }
        // Each producer backs off (doubling to 2 s) between refused attempts instead of retrying in a tight loop.
        result.check(refusals <= 2 * 40, "producers retried \(refusals) times while the disk was full: no backoff")
        result.notes.append("while full: acks stayed at \(ackedLater), producers spooled \(spooledLater) event(s), \(refusals) refusal(s) seen")

        // Free the space: the same daemon resumes.
        try? FileManager.default.removeItem(atPath: filler)
        let resumed = cluster.wait(30) { cluster.acked > ackedLater + rate }
        result.check(resumed, "acknowledgements did not resume within 30 s after space was freed: \(cluster.daemon.logTail())")
        result.check(cluster.daemon.starts == 1, "grid-eventd had to be restarted")
        result.check(cluster.daemon.log().contains("writes succeed again"), "grid-eventd did not say that writes succeed again")
        cluster.watch(1.0)
        try cluster.finishAndVerify(&result)
        result.rounds = 1
        return result
    }
}
