import GridEvents

/// The control plane's shared token, with the rules of grid-eventd's `--token`: when set, every request to the
/// master's or an agent's API must carry `Authorization: Bearer <token>` (compared in constant time, 401
/// `unauthorized` otherwise); a server that listens beyond loopback must have one of 16 characters or more. The
/// master sends it when it calls agents, agents send it when they call the master, grid-cli sends `--token`.
public enum ControlToken {
    /// The environment variable grid-master, grid-agent and grid-cli's master commands read it from.
    public static let environmentVariable = "GRID_MASTER_TOKEN"
    /// Read when `environmentVariable` is not set: grid-eventd's token, so one token can serve a whole grid (and
    /// grid-master's `/metrics`, which it guarded before, stays guarded).
    public static let fallbackVariable = "GRID_EVENTS_TOKEN"
    /// The shortest token accepted by a server that listens beyond loopback.
    public static let minimumLength = 16

    /// The answer to a request whose `Authorization` header does not carry `token`; nil when it does.
    public static func refusal(authorization: String?, token: String) -> ControlError? {
        if let authorization, constantTimeEqual(authorization, "Bearer " + token) { return nil }
        return ControlError(status: 401, code: "unauthorized", message: "send Authorization: Bearer <token> with the control plane's token (grid-cli: --token or $GRID_MASTER_TOKEN)")
    }

    /// Why a server may not listen on `host` with `token` (nil when it may): beyond loopback it needs a token of
    /// `minimumLength` characters or more.
    public static func listenProblem(host: String, token: String?) -> String? {
        if isLoopbackHost(host) { return nil }
        if let token, token.count >= minimumLength { return nil }
        return "binds beyond loopback (\(host)): a token of \(minimumLength) characters or more is required"
    }

    /// `value`, else `$GRID_MASTER_TOKEN`, else `$GRID_EVENTS_TOKEN`; an empty one counts as none.
    public static func resolve(_ value: String?, environment: [String: String]) -> String? {
        for candidate in [value, environment[environmentVariable], environment[fallbackVariable]] {
            if let candidate, !candidate.isEmpty { return candidate }
        }
        return nil
    }
}
