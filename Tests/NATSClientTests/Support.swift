import Foundation
import Logging
import NATSClient
import NATSTestSupport
import NIOCore

/// Options tuned for tests: fast reconnects and short timeouts, so every test is bounded in seconds.
func testOptions(_ urls: String, _ edit: (inout NATSOptions) -> Void = { _ in }) throws -> NATSOptions {
    var o = try NATSOptions(urls: urls)
    o.reconnectInitialDelay = .milliseconds(50)
    o.reconnectMaxDelay = .milliseconds(500)
    o.connectTimeout = .seconds(2)
    o.requestTimeout = .seconds(5)
    o.authErrorRetryDelay = .seconds(1)
    var logger = Logger(label: "nats-test")
    logger.logLevel = .warning
    o.logger = logger
    edit(&o)
    return o
}

/// Repeats `body` until it returns without throwing, for at most `seconds` (cluster elections take a few seconds).
func eventually<T>(_ seconds: Double = 20, _ body: () async throws -> T) async throws -> T {
    let deadline = Date().addingTimeInterval(seconds)
    var last: Error?
    while Date() < deadline {
        do { return try await body() } catch { last = error }
        try await Task.sleep(for: .milliseconds(200))
    }
    throw last ?? NATSTestError("timed out")
}

/// Waits until `condition` holds, for at most `seconds`; returns whether it did.
func waitFor(_ seconds: Double, _ condition: () -> Bool) async -> Bool {
    let deadline = Date().addingTimeInterval(seconds)
    while Date() < deadline {
        if condition() { return true }
        try? await Task.sleep(for: .milliseconds(20))
    }
    return condition()
}

let natsMissing = "nats-server is not installed: apt-get install nats-server (make test installs it)"
