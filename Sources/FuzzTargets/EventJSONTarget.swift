import EventStore
import GridEvents

extension FuzzTargets {
    /// JSON events as `grid-cli emit` reads them (the flat form; the API form with `fields` too): `JSONValue.parse`
    /// then `GridEvent.parseJSON`. Invariants: an accepted event, given an id and time, written back in the flat
    /// and in the API form parses to the same event.
    public static let eventJSON = FuzzTarget(name: "event-json", maxLength: 4096, run: { bytes in
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

    static func eventJSONSeeds() -> [[UInt8]] {
        var seeds = SampleGrid.oneOfEach().map { Array($0.flatJSON.utf8) }
        seeds += SampleGrid.oneOfEach().suffix(3).map { Array($0.apiJSON.utf8) }
        seeds.append(Array(#"{"event_type": "spawn_failed", "node_id": "node-7", "agent_id": "agent-001", "error": "disk full"}"#.utf8))
        seeds.append(Array(#"{"event_type": "deploy", "entities": ["svc-1"], "n": 1.5e3, "ok": false, "x": null}"#.utf8))
        return seeds
    }
}
