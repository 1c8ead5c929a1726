import Foundation
import StoreFixtures
import Testing
@_spi(Testing) import EventStore

/// A temporary directory removed when the value is released.
final class TempDir {
    let path: String

    init(_ label: String = "store") {
        var template = Array("/tmp/sgev-\(label)-XXXXXX".utf8CString)
        let p = template.withUnsafeMutableBufferPointer { mkdtemp($0.baseAddress!) }
        path = String(cString: p!)
    }

    deinit { try? FileManager.default.removeItem(atPath: path) }

    func file(_ name: String) -> String { path + "/" + name }
}

/// Directory that holds the package's built executables (next to the test bundle).
func builtProductsDirectory() -> URL {
    let exe = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath()
    return exe.deletingLastPathComponent()
}

func productPath(_ name: String) -> String {
    builtProductsDirectory().appendingPathComponent(name).path
}

/// Runs a built executable to completion and returns its status and output.
@discardableResult
func runProduct(_ name: String, _ arguments: [String]) throws -> (status: Int32, stdout: String, stderr: String) {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: productPath(name))
    process.arguments = arguments
    let out = Pipe()
    let err = Pipe()
    process.standardOutput = out
    process.standardError = err
    try process.run()
    let outData = out.fileHandleForReading.readDataToEndOfFile()
    let errData = err.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    return (process.terminationStatus, String(decoding: outData, as: UTF8.self), String(decoding: errData, as: UTF8.self))
}

func open(_ dir: TempDir, durability: Durability = .batch, capacity: Int = 64 << 10, faults: FaultInjector? = nil,
          readOnly: Bool = false) throws -> EventStore {
    var options = StoreOptions(durability: durability, segmentCapacity: capacity, readOnly: readOnly)
    options.faults = faults
    options.backgroundMaintenance = false  // deterministic: tests that want maintenance ask for it
    return try EventStore.open(at: dir.path, options: options)
}

/// Every event in the store, checked against the synthetic generator; returns ids.
func allSyntheticIds(_ store: EventStore) -> (ids: [String], problems: [String]) {
    var ids: [String] = []
    var problems: [String] = []
    store.forEachEvent { e in
        ids.append(e.id)
        if let p = SyntheticEvents.check(e) { problems.append(p) }
        return true
    }
    return (ids, problems)
}

func expectStoreError(_ code: StoreError.Code, _ body: () throws -> Void, sourceLocation: SourceLocation = #_sourceLocation) {
    do {
        try body()
        Issue.record("expected StoreError.\(code), nothing was thrown", sourceLocation: sourceLocation)
    } catch let error as StoreError {
        #expect(error.code == code, "got \(error)", sourceLocation: sourceLocation)
    } catch {
        Issue.record("expected StoreError.\(code), got \(error)", sourceLocation: sourceLocation)
    }
}

/// The StoreError that `body` throws, or nil.
func caughtStoreError(_ body: () throws -> Void) -> StoreError? {
    do {
        try body()
        return nil
    } catch {
        return error as? StoreError
    }
}
