import Foundation

/// Files for the targets that decode files (segments, spools): a per-process directory in /dev/shm when it exists
/// (no disk I/O per input), removed at exit.
enum Scratch {
    static let root: String = {
        let base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : NSTemporaryDirectory()
        let path = base + "/sge-fuzz-\(getpid())"
        mkdir(path, 0o700)
        atexit { Scratch.removeTree(Scratch.root) }
        return path
    }()

    /// An empty directory `root/name` (emptied if it exists).
    static func fresh(_ name: String) -> String {
        let path = root + "/" + name
        removeTree(path)
        mkdir(path, 0o700)
        return path
    }

    static func write(_ bytes: [UInt8], to path: String) {
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        check(fd >= 0, "cannot create \(path)")
        var done = 0
        while done < bytes.count {
            let n = bytes.withUnsafeBytes { pwrite(fd, $0.baseAddress! + done, $0.count - done, off_t(done)) }
            check(n > 0, "cannot write \(path)")
            done += n
        }
        close(fd)
    }

    static func read(_ path: String) -> [UInt8] {
        (try? Array(Data(contentsOf: URL(fileURLWithPath: path)))) ?? []
    }

    /// Removes `path` and, when a directory, the files and directories inside it.
    static func removeTree(_ path: String) {
        try? FileManager.default.removeItem(atPath: path)
    }
}
