/// The duplicate-id index: whether an event is already stored, so a batch resent after a lost ack is stored once.
/// A resent event keeps its timestamp, so only the segments whose time span holds it are asked (plain values,
/// compared for every event appended), then the segment's id index with a full-id compare.
extension EventStore {
    func isKnown(_ view: ConceptView, indexing segment: Segment) -> Bool {
        let h = view.idHash
        if sameIdIndexed(view, hash: h, in: segment) { return true }
        for s in segments(spanning: view.timestamp) where s !== segment {
            if let mapped = s.mappedIndex, mapped.verifyIds() != nil { repairIndex(s) }
            if sameIdIndexed(view, hash: h, in: s) { return true }
        }
        return false
    }

    /// The sealed segments whose time span holds `timestamp`, newest first, found by comparing plain values (a
    /// store may have thousands of segments; this runs for every event appended). The active segment, whose
    /// span still grows, is not included.
    func segments(spanning timestamp: Int64) -> [Segment] {
        if spansGeneration != segmentsGeneration {
            spans = segments.enumerated().map { (i, s) in (s.index.minTimestamp, s.index.maxTimestamp, i) }
            spansGeneration = segmentsGeneration
        }
        var out: [Segment] = []
        for span in spans.reversed() where span.min <= timestamp && timestamp <= span.max {
            let s = segments[span.position]
            if s !== active { out.append(s) }
        }
        return out
    }

    func sameIdIndexed(_ view: ConceptView, hash: UInt64, in segment: Segment) -> Bool {
        var found = false
        segment.index.forEachOffset(hash: hash) { offset in
            if let existing = conceptView(Location(segment: segment.id, offset: offset)),
                existing.idBytes.elementsEqual(view.idBytes)
            {
                found = true
            }
            return !found
        }
        return found
    }

    /// Replaces a mapped index whose sections failed their checksums by one rebuilt from the segment.
}
