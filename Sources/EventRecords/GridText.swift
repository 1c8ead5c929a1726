import EventStore
import GridEvents

// In EventRecords, beside the record mapping, because it joins the catalogue (GridEvents) to the store (EventStore).

/// The searchable text of grid events: the values of their string fields (a catalogue event's `error`, `reason`,
/// `agent_id`, `storage_path`, ...; a custom event's string fields), read straight from the concept record's payload
/// (the binary field encoding, docs/FORMAT.md "Event binary form") without decoding the event. The store is told how
/// with `StoreOptions.text = GridText.indexing`: it knows records, not the catalogue, so this is the layer that
/// says where the words are, and the store's tokenizer (`TextTokens`) and word index do the rest.
public enum GridText {
    /// The text scheme of this extractor: written into index files, so a store that changes which fields count as
    /// text rebuilds its word index instead of mixing two readings. Bump it when `forEachString` changes.
    public static let scheme: UInt32 = 2

    /// What a store of grid events indexes text with.
    public static let indexing = TextIndexing(scheme: scheme) { typeCode, payload, emit in
        forEachString(typeCode: typeCode, payload: payload, emit)
    }

    /// Store options with the word index of grid events.
    public static func options(_ base: StoreOptions = StoreOptions()) -> StoreOptions {
        var o = base
        o.text = indexing
        return o
    }

    /// Calls `emit` with the UTF-8 bytes of each string field value of an event of type `typeCode` whose fields
    /// payload is `payload`, in field order. Bounds-checked: damaged bytes end the walk, never trap. A custom
    /// event's name and entity ids are not fields (its entities are searchable as entities); field names are not
    /// text either. A `log` event's fixed fields and its metadata values are (scheme 2; scheme 1 read log events'
    /// metadata as if it were fixed fields).
    public static func forEachString(typeCode: UInt16, payload: UnsafeRawBufferPointer, _ emit: (UnsafeRawBufferPointer) -> Void) {
        var p = 0
        let n = payload.count
        func varint() -> UInt64? {
            var v: UInt64 = 0
            var shift: UInt64 = 0
            while p < n, shift < 64 {
                let b = payload[p]
                p += 1
                v |= UInt64(b & 0x7F) << shift
                if b & 0x80 == 0 { return v }
                shift += 7
            }
            return nil
        }
        /// Skips a string; its bytes, or nil when it overruns.
        func string() -> UnsafeRawBufferPointer? {
            guard let length = varint(), length <= UInt64(n - p) else { return nil }
            let s = UnsafeRawBufferPointer(rebasing: payload[p..<(p + Int(length))])
            p += Int(length)
            return s
        }
        /// One tagged value; false when the walk must stop.
        func value() -> Bool {
            guard p < n else { return false }
            let tag = payload[p]
            p += 1
            switch tag {
            case 0: return true
            case 1:
                guard let s = string() else { return false }
                emit(s)
                return true
            case 2, 5: return varint() != nil
            case 3:
                guard n - p >= 8 else { return false }
                p += 8
                return true
            case 4:
                guard p < n else { return false }
                p += 1
                return true
            default: return false
            }
        }
        guard n > 0, payload[0] == BinaryCodec.version else { return }
        p = 1
        if typeCode == EventType.log.rawValue {
            // The fixed fields (level, label, message, source, file, line), the entities (not text), then the
            // metadata as (name, value) pairs: the values are text when they are strings, the names are not.
            for _ in 0..<EventType.log.fields.count where !value() { return }
            guard let entities = varint(), entities <= 64 else { return }
            for _ in 0..<entities where string() == nil { return }
            guard let fields = varint(), fields <= 256 else { return }
            for _ in 0..<fields {
                guard string() != nil, value() else { return }
            }
            return
        }
        if typeCode == EventType.custom.rawValue {
            guard string() != nil, let entities = varint(), entities <= 64 else { return }
            for _ in 0..<entities where string() == nil { return }
            guard let fields = varint(), fields <= 256 else { return }
            for _ in 0..<fields {
                guard string() != nil, value() else { return }
            }
            return
        }
        while p < n {
            if !value() { return }
        }
    }

    /// The string field values of an event, as strings (the dashboard and tests).
    public static func strings(of event: GridEvent) -> [String] {
        var out: [String] = []
        let payload = BinaryCodec.encodeFields(event.kind)
        payload.withUnsafeBytes { buf in
            forEachString(typeCode: event.type.rawValue, payload: buf) { out.append(String(decoding: $0, as: UTF8.self)) }
        }
        return out
    }

    /// Whether a stored event's text matches `query` (every word, every phrase inside one field), compared on the
    /// event's own field values.
    public static func matches(_ query: TextQuery, typeCode: UInt16, payload: [UInt8]) -> Bool {
        payload.withUnsafeBytes { buf in
            query.matches { body in forEachString(typeCode: typeCode, payload: buf, body) }
        }
    }
}
