import GridEvents

/// Test-only access to the spool's file format, for the fuzz targets and their regression tests
/// (`Sources/FuzzTargets`). Not part of the emitter's API.
@_spi(Testing) public enum SpoolFuzzing {
    /// One record read back from a spool file.
    public struct Record: Sendable, Equatable {
        public var producer: String
        public var sequence: UInt64
        public var event: GridEvent
        /// Spool offset just past the record.
        public var end: UInt64
    }

    /// What reading a whole spool found.
    public struct Contents: Sendable {
        public var records: [Record]
        /// Where reading stopped (the spool's write offset unless a limit was hit).
        public var end: UInt64
        /// The spool's size when opened (its write offset).
        public var writeOffset: UInt64
        /// Regions skipped because they failed their checksum.
        public var corruptions: [(offset: UInt64, bytes: UInt64)]
    }

    /// Opens the spool `name` in `directory` as the emitter does at start and reads every record from its read
    /// offset. Nil when the spool cannot be opened.
    public static func read(
        directory: String, name: String, maxEvents: Int = 100_000, maxBytes: Int = 1 << 26, faults: SpoolFaults? = nil
    ) -> Contents? {
        guard let spool = Spool(directory: directory, name: name, limit: Int.max, faults: faults, notice: { _ in }) else { return nil }
        let (records, end) = spool.read(maxEvents: maxEvents, maxBytes: maxBytes)
        return Contents(
            records: records.map { Record(producer: $0.producer, sequence: $0.sequence, event: $0.event, end: $0.end) },
            end: end, writeOffset: spool.writeOffset, corruptions: spool.corruptions)
    }

    /// Appends `records` (producer, sequence, event) to the spool `name` in `directory`, creating it; returns how
    /// many were written. Used to make seed spools from real encodings.
    @discardableResult
    public static func write(directory: String, name: String, _ records: [(String, UInt64, GridEvent)]) -> Int {
        guard let spool = Spool(directory: directory, name: name, limit: 1 << 30, notice: { _ in }) else { return 0 }
        return spool.append(records.map { SpoolRecord(producer: $0.0, sequence: $0.1, event: $0.2) })
    }
}
