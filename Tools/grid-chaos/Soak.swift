import Foundation

/// A steady high rate for `soakSeconds`: the daemon's resident memory and the producers' queues are sampled and
/// must stay bounded (queues under the emitter's capacity, no drops; the daemon's memory within
/// `rssLimit`), and everything must arrive exactly once.
struct Soak: Scenario {
    let name = "soak"
    /// The daemon's anonymous resident memory (heap) must stay below this (its in-memory indexes grow with the
    /// store); VmRSS also counts mapped segment pages, which are page cache.
    var anonLimit = 1024 << 20

    func run(_ ctx: ChaosContext) throws -> ScenarioResult {
        var result = ScenarioResult(name: name)
        let dir = try ctx.directory(name)
        let cluster = Cluster(ctx, dir: dir)
        try cluster.daemon.start()
        try cluster.startEmitters(ctx.emitters, rate: ctx.rate)
        let start = Date()
        var samples: [(t: Double, rss: Int, acked: Int)] = []
        while Date().timeIntervalSince(start) < ctx.soakSeconds {
            cluster.watch(1.0)
            cluster.daemon.sample()
            samples.append((Date().timeIntervalSince(start), residentBytes(cluster.daemon.pid ?? 0, field: "RssAnon:"), cluster.acked))
        }
        let elapsed = Date().timeIntervalSince(start)
        try cluster.finishAndVerify(&result)
        // The steady rate: between the first and the last sample (the producers' start-up left out).
        let rate = samples.count > 1
            ? Double(samples.last!.acked - samples[0].acked) / (samples.last!.t - samples[0].t)
            : Double(samples.last?.acked ?? 0) / elapsed
        result.rounds = 1
        let maxAnon = cluster.daemon.maxAnon
        let maxQueued = result.maxQueued
        result.check(maxAnon < anonLimit, "grid-eventd used \(maxAnon >> 20) MiB of heap (limit \(anonLimit >> 20) MiB)")
        result.check(maxQueued < 100_000, "a producer queue reached \(maxQueued) events (capacity 100,000)")
        let offered = Double(ctx.emitters * ctx.rate)
        result.check(rate > offered * 0.85, String(format: "acknowledged %.0f events/s of %.0f offered", rate, offered))
        let mid = samples.count / 2
        if mid > 0, let last = samples.last, last.acked > samples[mid].acked {
            let perEvent = Double(last.rss - samples[mid].rss) / Double(last.acked - samples[mid].acked)
            result.notes.append(String(format: "%.0f s at %.0f acked events/s; daemon RSS max %d MiB of which heap %d MiB (the rest mapped segment pages), heap growth in the second half %.0f bytes per stored event (in-memory indexes); producer queue max %d",
                                       elapsed, rate, result.maxDaemonRSS >> 20, maxAnon >> 20, perEvent, result.maxQueued))
        }
        return result
    }
}
