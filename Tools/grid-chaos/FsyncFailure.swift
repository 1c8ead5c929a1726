import Foundation

/// grid-eventd runs with an fdatasync failure injected through the engine's system-call layer
/// (`GRID_EVENTD_FAULTS`, test only). The store must fail closed: say so in the log, acknowledge nothing more,
/// keep running and answer every batch with "store unavailable" so producers spool. The operator's restart
/// (here: SIGTERM, then a start without the fault) recovers; every acknowledged event is there exactly once.
struct FsyncFailure: Scenario {
    let name = "fsync"

    func run(_ ctx: ChaosContext) throws -> ScenarioResult {
        var result = ScenarioResult(name: name)
        let dir = try ctx.directory(name)
        let cluster = Cluster(ctx, dir: dir)
        cluster.daemon.environment["GRID_EVENTD_FAULTS"] = "fdatasync:EIO:after=40"
        try cluster.daemon.start()
        try cluster.startEmitters(2, rate: max(1000, ctx.rate / 2))
        let failed = cluster.wait(30) { cluster.daemon.log().contains("failed closed") }
        result.check(failed, "grid-eventd did not say the store failed closed: \(cluster.daemon.logTail())")
        cluster.watch(0.5)
        let ackedAtFailure = cluster.acked
        cluster.watch(2.0)
        let ackedLater = cluster.acked
        result.check(ackedLater == ackedAtFailure, "acknowledgements continued after fdatasync failed (\(ackedAtFailure) -> \(ackedLater))")
        result.check(cluster.daemon.isRunning, "grid-eventd died instead of failing closed")
        let spooled = cluster.emitters.reduce(0) { $0 + $1.int("spooled") }
        result.check(spooled > 0, "producers did not spool while the store was failed closed")
        result.notes.append("failed closed after \(ackedAtFailure) acked event(s); producers spooled \(spooled) meanwhile")
        // The operator restarts the daemon.
        let status = cluster.daemon.stop()
        result.check(status == 0, "grid-eventd exited with \(status) on SIGTERM after failing closed")
        cluster.daemon.environment = [:]
        try cluster.daemon.start()
        let resumed = cluster.wait(30) { cluster.acked > ackedLater }
        result.check(resumed, "acknowledgements did not resume after the restart")
        cluster.watch(1.0)
        try cluster.finishAndVerify(&result)
        result.rounds = 1
        return result
    }
}
