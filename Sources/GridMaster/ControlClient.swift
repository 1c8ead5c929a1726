import Foundation
import GridEvents
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// A small JSON-over-HTTP client for the control plane (master <-> agents, grid-cli -> master), with a timeout
/// per request and errors that say what happened.
public struct ControlClient: Sendable {
    public struct Failure: Error, CustomStringConvertible, Sendable {
        /// HTTP status, or 0 when the server could not be reached or did not answer in time.
        public var status: Int
        public var code: String
        public var message: String
        public var description: String { message }
    }

    public var timeoutSeconds: Double

    public init(timeoutSeconds: Double = 10) {
        self.timeoutSeconds = timeoutSeconds
    }

    /// Sends `body` (a JSON text) and returns the parsed JSON answer; throws `Failure` for transport errors,
    /// timeouts and 4xx/5xx answers (with the server's error code and message).
    public func call(_ method: String, _ url: String, body: String? = nil) async throws -> JSONValue {
        guard let u = URL(string: url) else { throw Failure(status: 0, code: "bad_url", message: "bad URL \(url)") }
        var request = URLRequest(url: u, timeoutInterval: timeoutSeconds)
        request.httpMethod = method
        if let body {
            request.httpBody = Data(body.utf8)
            request.setValue("application/json", forHTTPHeaderField: "Content-Type")
        }
        let data: Data
        let response: URLResponse
        do {
            (data, response) = try await URLSession.shared.data(for: request)
        } catch {
            let timedOut = (error as? URLError)?.code == .timedOut
            throw Failure(status: 0, code: timedOut ? "timeout" : "unreachable",
                          message: timedOut ? "\(url) did not answer within \(timeoutSeconds) s" : "cannot reach \(url): \(error.localizedDescription)")
        }
        let status = (response as? HTTPURLResponse)?.statusCode ?? 0
        let value = (try? JSONValue.parse(Array(data), limit: 16 << 20)) ?? .null
        guard (200..<300).contains(status) else {
            throw Failure(status: status, code: value["error"]?["code"]?.stringValue ?? "http_\(status)",
                          message: value["error"]?["message"]?.stringValue ?? "HTTP \(status) from \(url)")
        }
        return value
    }
}

/// JSON object text from key/value pairs (values already JSON-encoded by the helpers below).
public func jsonObject(_ pairs: [(String, String)]) -> String {
    var w = JSONWriter()
    w.raw("{")
    for (i, (k, v)) in pairs.enumerated() {
        if i > 0 { w.raw(",") }
        w.string(k)
        w.raw(":" + v)
    }
    w.raw("}")
    return w.text
}

public func jsonString(_ s: String) -> String {
    var w = JSONWriter()
    w.string(s)
    return w.text
}

public func jsonStringOrNull(_ s: String?) -> String { s.map(jsonString) ?? "null" }
public func jsonIntOrNull(_ i: Int?) -> String { i.map(String.init) ?? "null" }
