/// Access checks the HTTP servers share (grid-eventd's API, grid-master's /metrics).

/// Whether two strings are equal, in time that depends on their lengths only (no early exit at the first
/// differing byte, so response times do not reveal how much of a guessed token was right).
public func constantTimeEqual(_ a: String, _ b: String) -> Bool {
    let x = Array(a.utf8)
    let y = Array(b.utf8)
    var diff = UInt8(x.count == y.count ? 0 : 1)
    for i in 0..<min(x.count, y.count) { diff |= x[i] ^ y[i] }
    return diff == 0
}

/// Whether a listening host (as `--http`/`--listen` give it) is loopback only: `localhost`, `::1` or 127.x.x.x.
/// A server bound anywhere else needs a token.
public func isLoopbackHost(_ host: String) -> Bool {
    host == "127.0.0.1" || host == "localhost" || host == "::1" || host.hasPrefix("127.")
}
