/// What opening a store does with the files it finds, decided from the directory listing and the manifest
/// alone, before any file is read: a pure function, so every case is unit-tested without a disk. The store then
/// carries the plan out (and checks each file's contents as it opens it). The cases are one table, `rules`,
/// checked in order, and the same table is in docs/FORMAT.md ("Recovery plan").
public struct RecoveryPlan: Equatable, Sendable {
    /// What becomes of one segment id.
    public enum Action: Equatable, Sendable {
        /// Every file of the segment is removed: retention deleted it (the manifest's first segment is above it).
        case deleteAll
        /// Open the segment file; `deleteCompacted`: a compacted file the manifest does not name is left over
        /// from a compaction that did not finish and is removed.
        case openRaw(deleteCompacted: Bool)
        /// Open the compacted file; `deleteRaw`: the segment file is left over from a finished compaction.
        case openCompacted(deleteRaw: Bool)
        /// An index file whose segment has no data: removed.
        case deleteIndex
    }

    /// One segment id's files, as the listing shows them.
    public struct Files: Equatable, Sendable {
        public var raw = false
        public var compacted = false
        public var index = false
        /// The manifest names the segment compacted.
        public var named = false
        /// The segment lies below the manifest's first segment.
        public var belowFirst = false

        public init(raw: Bool = false, compacted: Bool = false, index: Bool = false, named: Bool = false, belowFirst: Bool = false) {
            self.raw = raw
            self.compacted = compacted
            self.index = index
            self.named = named
            self.belowFirst = belowFirst
        }
    }

    /// One row of the table: when `holds`, `action`.
    public struct Rule: Sendable {
        public let when: String
        public let holds: @Sendable (Files) -> Bool
        public let action: Action
    }

    /// The cases, first match wins.
    public static let rules: [Rule] = [
        Rule(when: "below the manifest's first segment", holds: { $0.belowFirst }, action: .deleteAll),
        Rule(when: "compacted, named by the manifest, segment file still there", holds: { $0.compacted && $0.named && $0.raw },
             action: .openCompacted(deleteRaw: true)),
        Rule(when: "compacted, named by the manifest", holds: { $0.compacted && $0.named }, action: .openCompacted(deleteRaw: false)),
        Rule(when: "compacted, not named, segment file there", holds: { $0.compacted && $0.raw },
             action: .openRaw(deleteCompacted: true)),
        Rule(when: "compacted, not named, no segment file (the manifest was lost)", holds: { $0.compacted },
             action: .openCompacted(deleteRaw: false)),
        Rule(when: "segment file only", holds: { $0.raw }, action: .openRaw(deleteCompacted: false)),
        Rule(when: "index file only", holds: { $0.index }, action: .deleteIndex),
    ]

    /// Each segment id with its files and action, in id order.
    public var segments: [(id: UInt64, files: Files, action: Action)] = []
    /// Temporary files of an unfinished create, compaction or write: removed.
    public var deleteTemporary: [String] = []

    public static func == (a: RecoveryPlan, b: RecoveryPlan) -> Bool {
        a.deleteTemporary == b.deleteTemporary && a.segments.elementsEqual(b.segments) { $0.id == $1.id && $0.files == $1.files && $0.action == $1.action }
    }

    /// The ids whose data is opened (raw or compacted), in order: the last of them is the one recovery scans
    /// (it may be the active segment).
    public var opened: [UInt64] {
        segments.compactMap { s in
            switch s.action {
            case .openRaw, .openCompacted: return s.id
            case .deleteAll, .deleteIndex: return nil
            }
        }
    }

    /// The plan for a directory holding `names`, under a manifest whose first segment is `firstSegment` and which
    /// names `compacted` as compacted.
    public static func make(names: [String], firstSegment: UInt64, compacted: Set<UInt64>) -> RecoveryPlan {
        var plan = RecoveryPlan()
        var files: [UInt64: Files] = [:]
        for name in names.sorted() {
            if name.hasSuffix(".tmp") {
                plan.deleteTemporary.append(name)
            } else if let id = Format.segmentId(name, suffix: ".sgs") {
                files[id, default: Files()].raw = true
            } else if let id = Format.segmentId(name, suffix: ".sgc") {
                files[id, default: Files()].compacted = true
            } else if let id = Format.segmentId(name, suffix: ".sgi") {
                files[id, default: Files()].index = true
            }
        }
        for id in files.keys.sorted() {
            var f = files[id]!
            f.named = compacted.contains(id)
            f.belowFirst = id < firstSegment
            guard let rule = rules.first(where: { $0.holds(f) }) else { continue }
            plan.segments.append((id, f, rule.action))
        }
        return plan
    }
}
