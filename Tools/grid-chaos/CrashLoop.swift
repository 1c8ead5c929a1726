import Foundation

/// Producers stream at a steady rate while grid-eventd is SIGKILLed at random moments and restarted, `rounds`
/// times. Then every acknowledged event must be served exactly once, in per-producer order, segdump --verify
/// must be clean, and every restart must have come up.
///
/// The crash-compaction and crash-retention scenarios are this loop with a daemon that compacts (or expires)
/// segments continuously.
struct CrashLoop: Scenario {
    enum KillMoment {
        /// Uniformly random within `min...max` seconds after the daemon listens.
        case random(min: Double, max: Double)
        /// As soon as the daemon's log gains a line containing the text (then a random 0-50 ms more).
        case logLine(String, timeout: Double)
    }

    var name = "crash-loop"
    var daemonArguments: [String] = ["--segment-size", "\(1 << 20)"]
    var killWhen = KillMoment.random(min: 0.02, max: 0.45)
    /// Retention runs: acknowledged events may be missing from the start of each producer's sequence.
    var allowExpiry = false

    func run(_ ctx: ChaosContext) throws -> ScenarioResult {
        var result = ScenarioResult(name: name)
        let dir = try ctx.directory(name)
        let cluster = Cluster(ctx, dir: dir, daemonArguments: daemonArguments)
        try cluster.daemon.start()
        try cluster.startEmitters(ctx.emitters, rate: ctx.rate)
        var rng = SystemRandomNumberGenerator()
        var restartFailures = 0
        var slowestRestart = 0.0
        for round in 1...ctx.rounds {
            switch killWhen {
            case .random(let lo, let hi):
                cluster.watch(Double.random(in: lo...hi, using: &rng))
            case .logLine(let text, let timeout):
                let before = cluster.daemon.log().components(separatedBy: text).count
                _ = cluster.wait(timeout) { cluster.daemon.log().components(separatedBy: text).count > before }
                usleep(UInt32.random(in: 0...50_000, using: &rng))
            }
            cluster.daemon.kill9()
            let t0 = Date()
            do {
                try cluster.daemon.start()
            } catch {
                restartFailures += 1
                result.failures.append("round \(round): restart failed: \(error)")
                // One more try so the rest of the campaign can still check the store.
                try cluster.daemon.start()
            }
            slowestRestart = max(slowestRestart, Date().timeIntervalSince(t0))
            result.rounds = round
        }
        cluster.watch(0.5)
        try cluster.finishAndVerify(&result, allowExpiry: allowExpiry)
        result.check(restartFailures == 0, "\(restartFailures) restart(s) failed")
        result.notes.append(String(format: "%d kills, slowest restart %.2f s, %d producers at %d events/s each", ctx.rounds, slowestRestart, ctx.emitters, ctx.rate))
        return result
    }
}
