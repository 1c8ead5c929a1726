/// A place in the store's arrival order that a live-stream client resumes from: batch frame `sequence`, after
/// its first `skip` events. It is the SSE `id:` of every event the stream sends (the position just after that
/// event), written `<sequence>:<skip>`.
///
/// Frame sequences are store-wide, increase with every frame written and are kept in the frames themselves, so a
/// position means the same after a daemon restart, after compaction (which keeps frames whole) and while new
/// events arrive; events that arrive late with older timestamps still come after it. A position names nothing
/// but the order: it stays valid after retention deleted the frames before it.
public struct StreamPosition: Comparable, Hashable, Sendable, CustomStringConvertible {
    /// The frame to resume in.
    public var sequence: UInt64
    /// Events of that frame already delivered.
    public var skip: Int

    public init(sequence: UInt64, skip: Int) {
        self.sequence = sequence
        self.skip = skip
    }

    /// The position just after event `index` (from 0) of frame `sequence`.
    public static func after(frame sequence: UInt64, event index: Int) -> StreamPosition {
        StreamPosition(sequence: sequence, skip: index + 1)
    }

    public static func < (a: StreamPosition, b: StreamPosition) -> Bool {
        a.sequence != b.sequence ? a.sequence < b.sequence : a.skip < b.skip
    }

    public var description: String { "\(sequence):\(skip)" }

    /// Parses `<sequence>:<skip>`; nil for anything else.
    public init?(_ text: String) {
        let parts = text.split(separator: ":", omittingEmptySubsequences: false)
        guard parts.count == 2, parts[0].count <= 20, parts[1].count <= 10,
            let s = UInt64(parts[0]), let k = Int(parts[1]), k >= 0
        else { return nil }
        self.init(sequence: s, skip: k)
    }
}
