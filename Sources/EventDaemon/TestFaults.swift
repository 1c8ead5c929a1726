@_spi(Testing) import EventStore
#if canImport(Glibc)
import Glibc
#endif

// Compiled only with GRID_FAULT_INJECTION, which the manifest defines for debug (test) builds and `make chaos`
// passes to its own release build: a release binary of grid-eventd cannot be made to inject faults.
#if GRID_FAULT_INJECTION
/// Test only: the fault specification grid-eventd reads from `GRID_EVENTD_FAULTS`, so multi-process tests (the
/// chaos campaign) can make the real daemon's store see a failing system call. Never set it in production.
///
/// Syntax: rules separated by `,`, each `CALL:ERRNO[:after=N][:times=N]`, for example
/// `fdatasync:EIO:after=50` (the 51st fdatasync fails with EIO). CALL is open, write, fdatasync, preallocate,
/// truncate, mmap or rename; ERRNO is EIO, ENOSPC, EDQUOT, EACCES or a number. `times` defaults to 1.
@_spi(Testing) public enum TestFaults {
    public struct Invalid: Error, CustomStringConvertible {
        public var description: String
    }

    public static let environmentVariable = "GRID_EVENTD_FAULTS"

    public static func parse(_ spec: String) throws(Invalid) -> FaultInjector {
        let injector = FaultInjector()
        for rule in spec.split(separator: ",") {
            let parts = rule.split(separator: ":").map(String.init)
            guard parts.count >= 2 else { throw Invalid(description: "fault rule '\(rule)' needs CALL:ERRNO") }
            let calls: [String: FaultInjector.Call] = [
                "open": .open, "write": .write, "fdatasync": .fdatasync, "preallocate": .preallocate,
                "truncate": .truncate, "mmap": .mmap, "rename": .rename,
            ]
            guard let call = calls[parts[0]] else { throw Invalid(description: "unknown system call '\(parts[0])' in \(spec)") }
            let names: [String: Int32] = ["EIO": EIO, "ENOSPC": ENOSPC, "EDQUOT": EDQUOT, "EACCES": EACCES]
            guard let err = names[parts[1]] ?? Int32(parts[1]) else { throw Invalid(description: "unknown errno '\(parts[1])' in \(spec)") }
            var after = 0
            var times = 1
            for option in parts.dropFirst(2) {
                let kv = option.split(separator: "=", maxSplits: 1).map(String.init)
                guard kv.count == 2, let n = Int(kv[1]), n >= 0 else { throw Invalid(description: "bad option '\(option)' in \(spec)") }
                switch kv[0] {
                case "after": after = n
                case "times": times = n
                default: throw Invalid(description: "unknown option '\(kv[0])' in \(spec)")
                }
            }
            injector.fail(call, errno: err, after: after, times: times)
        }
        return injector
    }
}
#endif
