import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A temporary directory removed when the value is released. On tmpfs (`/dev/shm`) when there is one: the
/// explorer's states are simulated, so real fsyncs would only cost time.
final class TempDir {
    let path: String

    init(_ label: String) {
        let parent = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp"
        var template = Array("\(parent)/sgev-\(label)-XXXXXX".utf8CString)
        let p = template.withUnsafeMutableBufferPointer { mkdtemp($0.baseAddress!) }
        path = String(cString: p!)
    }

    deinit { try? FileManager.default.removeItem(atPath: path) }
}

/// An integer from the environment, or nil.
func environmentInt(_ name: String) -> Int? {
    ProcessInfo.processInfo.environment[name].flatMap { Int($0) }
}

/// `seed` mixed with `name` the same way in every process (String.hashValue is seeded per process).
func stableSeed(_ seed: UInt64, _ name: String) -> UInt64 {
    var h: UInt64 = 0xcbf2_9ce4_8422_2325
    for b in name.utf8 { h = (h ^ UInt64(b)) &* 0x100_0000_01b3 }
    return seed ^ h
}
