import Testing
@testable import EventStore

@Suite("SortedList against a sorted array")
struct SortedListTests {
    @Test(arguments: [0, 1, 100, 5_000])
    func randomInsertsMatchModel(disorder: Int) {
        var rng = SystemRandomNumberGenerator()
        let list = SortedList<EventPosition>()
        var model: [EventPosition] = []
        for i in 0..<6_000 {
            // Mostly increasing timestamps with bounded (or large) disorder, like several producers.
            let ts = Int64(i) - (disorder == 0 ? 0 : Int64.random(in: 0...Int64(disorder), using: &rng))
            let p = EventPosition(timestamp: ts, location: UInt64(i))
            list.insert(p)
            model.append(p)
        }
        model.sort()
        #expect(list.count == model.count)
        var ascending: [EventPosition] = []
        list.forEachAscending(from: 0) { ascending.append($0); return true }
        #expect(ascending == model)
        var descending: [EventPosition] = []
        list.forEachDescending(before: list.count) { descending.append($0); return true }
        #expect(descending == model.reversed())
        for _ in 0..<200 {
            let probe = EventPosition(timestamp: Int64.random(in: -6000...7000, using: &rng), location: 0)
            let expected = model.firstIndex { !($0 < probe) } ?? model.count
            #expect(list.lowerBound(probe) == expected)
            if expected < model.count { #expect(list[expected] == model[expected]) }
        }
        var partial: [EventPosition] = []
        list.forEachDescending(before: 3000) { partial.append($0); return partial.count < 10 }
        #expect(partial == Array(model[2990..<3000].reversed()))
    }
}
