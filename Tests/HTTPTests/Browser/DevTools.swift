import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Headless Chromium driven through the Chrome DevTools protocol: `--remote-debugging-port=0`, the port and the
/// browser's WebSocket path read from `DevToolsActivePort` in a fresh profile directory, one page target attached
/// with a flat session. Blocking; call it from a thread of its own, not from Swift concurrency's pool.
final class HeadlessChromium {
    static let path = ["/usr/bin/chromium", "/usr/bin/chromium-browser"].first { FileManager.default.isExecutableFile(atPath: $0) }

    struct Failure: Error, CustomStringConvertible { var description: String }

    let process = Process()
    let profile: String
    let socket: WebSocketClient
    private var nextId = 0
    /// Session of the attached page.
    private var session = ""
    /// JavaScript exceptions and console errors the page reported.
    private(set) var pageErrors: [String] = []

    init(width: Int = 1280, height: Int = 800) throws {
        guard let path = Self.path else { throw Failure(description: "no chromium") }
        profile = NSTemporaryDirectory() + "cdp-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        try FileManager.default.createDirectory(atPath: profile, withIntermediateDirectories: true)
        // The umask is the process's, and a daemon starting in a test running beside this one sets it to 0117 while
        // it binds its socket (GridEventDaemon.start): a directory made then has no search bit, and Chromium, which
        // inherits the umask, cannot write its profile (it never wrote DevToolsActivePort). So: the profile's mode
        // set outright, and Chromium started through a shell that sets its own umask.
        try FileManager.default.setAttributes([.posixPermissions: 0o700], ofItemAtPath: profile)
        process.executableURL = URL(fileURLWithPath: "/bin/sh")
        process.arguments = ["-c", "umask 077; exec \"$0\" \"$@\"", path, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
                             "--no-default-browser-check", "--disable-extensions", "--disable-background-networking",
                             "--remote-debugging-port=0", "--user-data-dir=" + profile, "--window-size=\(width),\(height)",
                             "about:blank"]
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        // Chromium writes "PORT\n/devtools/browser/ID" once it listens.
        let file = profile + "/DevToolsActivePort"
        let deadline = Date().addingTimeInterval(30)
        var lines: [Substring] = []
        while Date() < deadline {
            if let text = try? String(contentsOfFile: file, encoding: .utf8) {
                lines = text.split(separator: "\n")
                if lines.count >= 2 { break }
            }
            usleep(50_000)
        }
        guard lines.count >= 2, let port = Int(lines[0]) else {
            process.terminate()
            throw Failure(description: "chromium wrote no DevToolsActivePort within 30 s")
        }
        socket = try WebSocketClient(port: port, path: String(lines[1]))
        let target = try call("Target.createTarget", ["url": "about:blank"], inSession: false)
        let attached = try call("Target.attachToTarget", ["targetId": target["targetId"] as? String ?? "", "flatten": true], inSession: false)
        session = attached["sessionId"] as? String ?? ""
        _ = try call("Runtime.enable")
        _ = try call("Page.enable")
        try viewport(width: width, height: height)
    }

    deinit { quit() }

    func quit() {
        if process.isRunning {
            process.terminate()
            process.waitUntilExit()
        }
        try? FileManager.default.removeItem(atPath: profile)
    }

    /// Calls a DevTools method and returns its result; events that arrive meanwhile are looked at for page errors.
    @discardableResult
    func call(_ method: String, _ params: [String: Any] = [:], inSession: Bool = true, timeout: Double = 30) throws -> [String: Any] {
        nextId += 1
        let id = nextId
        var message: [String: Any] = ["id": id, "method": method, "params": params]
        if inSession { message["sessionId"] = session }
        try socket.send(text: String(decoding: try JSONSerialization.data(withJSONObject: message), as: UTF8.self))
        let deadline = Date().addingTimeInterval(timeout)
        while true {
            let text = try socket.receive(deadline: deadline)
            guard let object = try? JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any] else { continue }
            if let rid = object["id"] as? Int, rid == id {
                if let error = object["error"] { throw Failure(description: "\(method): \(error)") }
                return object["result"] as? [String: Any] ?? [:]
            }
            note(event: object)
        }
    }

    private func note(event: [String: Any]) {
        guard let method = event["method"] as? String, let params = event["params"] as? [String: Any] else { return }
        if method == "Runtime.exceptionThrown", let d = params["exceptionDetails"] as? [String: Any] {
            let ex = (d["exception"] as? [String: Any])?["description"] as? String
            pageErrors.append(ex ?? (d["text"] as? String) ?? "\(d)")
        } else if method == "Runtime.consoleAPICalled", params["type"] as? String == "error" {
            let args = (params["args"] as? [[String: Any]] ?? []).map { "\($0["value"] ?? $0["description"] ?? "")" }
            pageErrors.append("console.error: " + args.joined(separator: " "))
        }
    }

    /// Evaluates `expression` in the page (promises awaited) and returns its value, JSON-decoded.
    func evaluate(_ expression: String, timeout: Double = 30) throws -> Any? {
        let r = try call("Runtime.evaluate", ["expression": "Promise.resolve(" + expression + ").then((v) => JSON.stringify(v))", "returnByValue": true,
                                              "awaitPromise": true], timeout: timeout)
        if let d = r["exceptionDetails"] as? [String: Any] {
            throw Failure(description: "evaluating \(expression.prefix(200)): \((d["exception"] as? [String: Any])?["description"] ?? d)")
        }
        guard let json = (r["result"] as? [String: Any])?["value"] as? String else { return nil }
        return try JSONSerialization.jsonObject(with: Data(json.utf8), options: [.fragmentsAllowed])
    }

    func string(_ expression: String) throws -> String? { try evaluate(expression) as? String }
    func number(_ expression: String) throws -> Double? { (try evaluate(expression) as? NSNumber)?.doubleValue }
    func strings(_ expression: String) throws -> [String] { try evaluate(expression) as? [String] ?? [] }

    /// Polls `expression` every 50 ms until it is truthy; returns the seconds waited, or nil at the timeout.
    @discardableResult
    func waitFor(_ expression: String, timeout: Double = 15) throws -> Double? {
        let start = Date()
        while Date().timeIntervalSince(start) < timeout {
            if try evaluate("!!(" + expression + ")") as? Bool == true { return Date().timeIntervalSince(start) }
            usleep(50_000)
        }
        return nil
    }

    /// Loads `url` and waits for the document to finish loading.
    func navigate(_ url: String) throws {
        try call("Page.navigate", ["url": url])
        _ = try waitFor("document.readyState === 'complete' && location.href.startsWith('http')", timeout: 30)
    }

    func viewport(width: Int, height: Int) throws {
        try call("Emulation.setDeviceMetricsOverride", ["width": width, "height": height, "deviceScaleFactor": 1, "mobile": width < 600])
    }

    /// A PNG of the viewport, written to `path`.
    func screenshot(_ path: String) throws {
        let r = try call("Page.captureScreenshot", ["format": "png"], timeout: 60)
        guard let b64 = r["data"] as? String, let data = Data(base64Encoded: b64) else { throw Failure(description: "no screenshot data") }
        try data.write(to: URL(fileURLWithPath: path))
    }

    /// A real mouse click (move, press, release) at the centre of the first element matching `selector`.
    func click(_ selector: String) throws {
        let js = "(() => { const e = document.querySelector(\(jsString(selector))); if (!e) return null; e.scrollIntoView({block: 'center'});"
            + " const r = e.getBoundingClientRect(); return [r.left + r.width / 2, r.top + r.height / 2]; })()"
        guard let xy = try evaluate(js) as? [NSNumber], xy.count == 2 else { throw Failure(description: "nothing matches \(selector)") }
        let x = xy[0].doubleValue, y = xy[1].doubleValue
        try call("Input.dispatchMouseEvent", ["type": "mouseMoved", "x": x, "y": y])
        try call("Input.dispatchMouseEvent", ["type": "mousePressed", "x": x, "y": y, "button": "left", "clickCount": 1])
        try call("Input.dispatchMouseEvent", ["type": "mouseReleased", "x": x, "y": y, "button": "left", "clickCount": 1])
    }

    /// Moves the mouse over the centre of the first element matching `selector` (hover).
    func hover(_ selector: String) throws {
        let js = "(() => { const e = document.querySelector(\(jsString(selector))); if (!e) return null;"
            + " const r = e.getBoundingClientRect(); return [r.left + r.width / 2, r.top + r.height / 2]; })()"
        guard let xy = try evaluate(js) as? [NSNumber], xy.count == 2 else { throw Failure(description: "nothing matches \(selector)") }
        try call("Input.dispatchMouseEvent", ["type": "mouseMoved", "x": xy[0].doubleValue, "y": xy[1].doubleValue])
    }

    /// Presses and releases a key as a keyboard would (Enter, Escape, ArrowRight, Tab, "/").
    func press(_ key: String) throws {
        let codes: [String: (String, Int, String?)] = [
            "Enter": ("Enter", 13, "\r"), "Escape": ("Escape", 27, nil), "Tab": ("Tab", 9, nil),
            "ArrowRight": ("ArrowRight", 39, nil), "ArrowLeft": ("ArrowLeft", 37, nil), "ArrowDown": ("ArrowDown", 40, nil),
            "ArrowUp": ("ArrowUp", 38, nil), "/": ("Slash", 191, "/"), "End": ("End", 35, nil), "Home": ("Home", 36, nil),
        ]
        let (code, keyCode, text) = codes[key] ?? (key, 0, key)
        var down: [String: Any] = ["type": text == nil ? "rawKeyDown" : "keyDown", "key": key, "code": code, "windowsVirtualKeyCode": keyCode]
        if let text { down["text"] = text }
        try call("Input.dispatchKeyEvent", down)
        try call("Input.dispatchKeyEvent", ["type": "keyUp", "key": key, "code": code, "windowsVirtualKeyCode": keyCode])
    }

    /// Types `text` into the focused element.
    func type(_ text: String) throws {
        try call("Input.insertText", ["text": text])
    }
}

/// `s` as a JavaScript string literal.
func jsString(_ s: String) -> String {
    String(decoding: (try? JSONSerialization.data(withJSONObject: [s]))?.dropFirst().dropLast() ?? [], as: UTF8.self)
}

/// Runs blocking work (the browser session) on a thread of its own and awaits its result, so Swift concurrency's
/// few threads stay free for the HTTP server under test.
func onThread<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { (c: CheckedContinuation<T, Error>) in
        let t = Thread { c.resume(with: Result { try body() }) }
        t.stackSize = 16 << 20
        t.start()
    }
}

/// What a browser session found: failed checks (with what was seen) and measurements, reported by the test.
final class Findings: @unchecked Sendable {
    private(set) var failures: [String] = []
    private(set) var notes: [String] = []
    var checks = 0

    func check(_ condition: Bool, _ message: @autoclosure () throws -> String) {
        checks += 1
        if !condition { failures.append((try? message()) ?? "(the page could not be read for the message)") }
    }

    func note(_ text: String) {
        notes.append(text)
        print("[dashboard] " + text)
    }
}
