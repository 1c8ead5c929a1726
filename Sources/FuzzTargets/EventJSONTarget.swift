import EventStore
import GridEvents
import GridFixtures

extension FuzzTargets {
    /// JSON events as `grid-cli emit` reads them (the flat form; the API form with `fields` too): `JSONValue.parse`
    /// then `GridEvent.parseJSON`, and `FlatEventDecoder` beside it. Invariants: the two decoders agree
    /// (`compareEventDecoders`); an accepted event, given an id and time, written back in the flat and in the API
    /// form parses to the same event.
    public static let eventJSON = FuzzTarget(name: "event-json", maxLength: 4096, run: { bytes in
        compareEventDecoders(bytes)
        guard let value = try? JSONValue.parse(bytes, limit: 1 << 16), let draft = try? GridEvent.parseJSON(value)
        else { return }
        let id = draft.id ?? GridEvent.makeId(typeName: draft.kind.typeName, producerTag: "00000000abcd", sequence: 1)
        let event = GridEvent(id: id, timestamp: draft.timestamp ?? 1_764_374_400_000_000, kind: draft.kind)
        guard (try? event.validate()) != nil else { return }
        for (form, text) in [("flat", event.flatJSON), ("API", event.apiJSON)] {
            let back: GridEvent.Draft
            do throws(EventError) {
                back = try GridEvent.parseJSON(try JSONValue.parse(Array(text.utf8)))
            } catch {
                fatalError("the \(form) form \(text) does not parse: \(error)")
            }
            check(back.kind == event.kind, "\(form) form changes the event: \(event.kind) became \(back.kind)")
            check(back.id == event.id && back.timestamp == event.timestamp, "\(form) form changes id or time: \(text)")
        }
    }, seeds: { eventJSONSeeds() })

    /// The byte-level decoder (`FlatEventDecoder`, what `grid-cli emit` uses) against the Foundation-based one on
    /// the same input: both accept with the same draft, or both refuse, with the same message unless the JSON
    /// syntax is what is wrong. The deliberate differences, which only Foundation accepts: a trailing comma, a
    /// malformed value of a repeated key (Foundation drops it unread), UTF-16 or UTF-32 text.
    static func compareEventDecoders(_ bytes: [UInt8]) {
        let old: Result<GridEvent.Draft, EventError> = Result { () throws(EventError) in
            try GridEvent.parseJSON(try JSONValue.parse(bytes, limit: 1 << 16))
        }
        let new: Result<GridEvent.Draft, EventError> = Result { () throws(EventError) in
            try FlatEventDecoder.decode(bytes, limit: 1 << 16)
        }
        switch (old, new) {
        case (.success(let a), .success(let b)):
            check(a == b, "the decoders give different drafts: \(a) / \(b)")
        case (.failure(let a), .failure(let b)):
            // The deliberate differences: Foundation may have refused something after them.
            if isDeliberateDifference(b.message) { return }
            if a.message.hasPrefix("malformed JSON") {
                check(b.message.hasPrefix("malformed JSON"), "Foundation found a syntax error, the byte decoder: \(b.message)")
            } else {
                check(a.message == b.message, "different refusals: \(a.message) / \(b.message)")
            }
        case (.success, .failure(let b)):
            check(isDeliberateDifference(b.message), "only Foundation accepts it; the byte decoder says \(b.message)")
        case (.failure(let a), .success):
            fatalError("only the byte decoder accepts it; Foundation says \(a.message)")
        }
    }

    /// The byte decoder's refusals of what only Foundation accepts (FlatEventDecoder's documentation).
    static func isDeliberateDifference(_ message: String) -> Bool {
        message.contains("a trailing comma") || message.contains("repeated key") || message.contains("only UTF-8 is read")
    }

    static func eventJSONSeeds() -> [[UInt8]] {
        var seeds = SampleGrid.oneOfEach().map { Array($0.flatJSON.utf8) }
        seeds += SampleGrid.oneOfEach().suffix(3).map { Array($0.apiJSON.utf8) }
        seeds.append(Array(#"{"event_type": "spawn_failed", "node_id": "node-7", "agent_id": "agent-001", "error": "disk full"}"#.utf8))
        seeds.append(Array(#"{"event_type": "deploy", "entities": ["svc-1"], "n": 1.5e3, "ok": false, "x": null}"#.utf8))
        // Where the two decoders could part: escapes and surrogates, number limits, duplicates, a trailing comma.
        seeds.append(Array(#"{"event_type":"deploy","s":"caf\u00e9 \ud83d\ude00 \/\b","n":-9223372036854775809,"m":1e-400}"#.utf8))
        seeds.append(Array(#"{"event_type":"spawn_failed","node_id":"n","agent_id":"a","error":"e","error":"f","x":[1,]}"#.utf8))
        return seeds
    }
}
