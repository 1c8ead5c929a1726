/// Group commit: many appenders wait for one fdatasync. The first waiter whose batch is not yet durable becomes
/// the leader and syncs; the others wait for its result. A sync failure is sticky: every later waiter gets it.
final class GroupCommit: @unchecked Sendable {
    private let lock = ConditionLock()
    private var durable: UInt64 = 0
    private var syncing = false
    private var failure: StoreError?

    /// Returns once a sync covering `sequence` has completed. `sync` flushes and returns the highest sequence it
    /// covered; it runs without the lock so appends continue meanwhile.
    func waitDurable(_ sequence: UInt64, sync: () throws(StoreError) -> UInt64) throws(StoreError) {
        lock.lock()
        defer { lock.unlock() }
        while durable < sequence {
            if let failure { throw failure }
            if syncing {
                lock.wait()
                continue
            }
            syncing = true
            lock.unlock()
            let result: Result<UInt64, StoreError>
            do throws(StoreError) {
                result = .success(try sync())
            } catch {
                result = .failure(error)
            }
            lock.lock()
            syncing = false
            switch result {
            case .success(let upTo): durable = max(durable, upTo)
            case .failure(let error): failure = error
            }
            lock.broadcast()
        }
    }

    /// Records that everything up to `sequence` is durable (after a sync made outside the group, e.g. at a roll).
    func markDurable(_ sequence: UInt64) {
        lock.withLock {
            durable = max(durable, sequence)
            lock.broadcast()
        }
    }
}
