import Foundation
import GridEvents
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// The one JSON-over-HTTP client of the grid: master <-> agents, grid-cli -> master and grid-cli -> grid-eventd.
/// A timeout per request, an optional bearer token, and errors that say what happened.
public struct ControlClient: Sendable {
    public struct Failure: Error, CustomStringConvertible, Sendable {
        /// HTTP status, or 0 when the server could not be reached or did not answer in time.
        public var status: Int
        public var code: String
        public var message: String
        /// What the server suggests trying instead (grid-eventd's question endpoint sends some).
        public var suggestions: [String] = []
        public var description: String { message }
    }

    public var timeoutSeconds: Double
    /// Sent as `Authorization: Bearer <token>` when set.
    public var token: String?
    /// Largest answer parsed, in bytes.
    public var answerLimit: Int

    public init(timeoutSeconds: Double = 10, token: String? = nil, answerLimit: Int = 16 << 20) {
        self.timeoutSeconds = timeoutSeconds
        self.token = token
        self.answerLimit = answerLimit
    }

    /// Sends `body` (a JSON text) and returns the parsed JSON answer; throws `Failure` for transport errors,
    /// timeouts and 4xx/5xx answers (with the server's error code and message).
    public func call(_ method: String, _ url: String, body: String? = nil) async throws(Failure) -> JSONValue {
        guard let u = URL(string: url) else { throw Failure(status: 0, code: "bad_url", message: "bad URL \(url)") }
        var request = URLRequest(url: u, timeoutInterval: timeoutSeconds)
        request.httpMethod = method
        if let body {
            request.httpBody = Data(body.utf8)
            request.setValue("application/json", forHTTPHeaderField: "Content-Type")
        }
        if let token { request.setValue("Bearer " + token, forHTTPHeaderField: "Authorization") }
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
        let value = (try? JSONValue.parse(Array(data), limit: answerLimit)) ?? .null
        guard (200..<300).contains(status) else {
            var suggestions: [String] = []
            if case .array(let s)? = value["error"]?["suggestions"] { suggestions = s.compactMap(\.stringValue) }
            throw Failure(status: status, code: value["error"]?["code"]?.stringValue ?? "http_\(status)",
                          message: value["error"]?["message"]?.stringValue ?? "HTTP \(status) from \(url)",
                          suggestions: suggestions)
        }
        return value
    }

    /// `call` for synchronous command-line code: blocks the calling thread until the answer or the timeout.
    /// Never call it on an event loop or from async code.
    public func callBlocking(_ method: String, _ url: String, body: String? = nil) throws(Failure) -> JSONValue {
        let done = DispatchSemaphore(value: 0)
        nonisolated(unsafe) var result: Result<JSONValue, Failure> = .failure(Failure(status: 0, code: "unreachable", message: url))
        Task {
            do throws(Failure) {
                result = .success(try await call(method, url, body: body))
            } catch {
                result = .failure(error)
            }
            done.signal()
        }
        done.wait()
        return try result.get()
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
