/// Where a reader that follows the store in arrival order (the daemon's live stream with `since=`) starts.
extension EventStore {
    /// The sequence of the first batch frame of the oldest segment that holds an event at or after `since`
    /// (microseconds): reading `committedFrames(after:)` from just before it and skipping older events yields every
    /// event with a timestamp at or after `since`, however late it arrived. When no segment holds one, the sequence
    /// the next frame will have.
    /// - Complexity: one look at each segment's time span, then the first frame's header of one segment.
    public func firstFrameSequence(holdingEventsSince since: Int64) -> UInt64 {
        let snap = snapshot()
        for v in snap.views {
            guard v.index.hasTimeRange, v.index.maxTimestamp >= since else { continue }
            let first: FrameEntry?
            if v.isActive {
                first = activeLock.withLock { (v.index as? MemoryIndex)?.frames.first }
            } else {
                let index = readableIndex(v, snap)
                first = index.frameCount > 0 ? index.frame(at: 0) : nil
            }
            // A first frame whose header cannot be read (damage): start from the beginning rather than miss events.
            if let first { return frameSequence(v, first) ?? 1 }
        }
        return lastWrittenSequence + 1
    }
}
