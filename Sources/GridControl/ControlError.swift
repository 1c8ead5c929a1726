/// An operator-facing error of the control plane: an HTTP status, a code and a message. The master answers with
/// it (and emits the matching failure event); the agent and grid-cli read it back through `ControlClient.Failure`.
public struct ControlError: Error, Sendable {
    public var status: Int
    public var code: String
    public var message: String

    public init(status: Int, code: String, message: String) {
        self.status = status
        self.code = code
        self.message = message
    }
}
