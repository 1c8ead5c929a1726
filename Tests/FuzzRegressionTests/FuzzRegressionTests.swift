import EventStore
import Foundation
import FuzzTargets
import GridEvents
import XCTest

/// Replays every committed fuzz input (`Fuzz/Corpus/<target>/*` and `Fuzz/Regressions/<target>/*`) and every
/// generated seed through the same harnesses the libFuzzer executables run, without libFuzzer. An input that
/// breaks an invariant traps, failing the run. Set FUZZ_WRITE_CORPUS=1 to (re)write the seed corpus instead.
final class FuzzRegressionTests: XCTestCase {
    static let fuzzDirectory = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fuzz")

    func inputs(_ kind: String, _ target: FuzzTarget) -> [URL] {
        let dir = Self.fuzzDirectory.appendingPathComponent(kind).appendingPathComponent(target.name)
        let names = (try? FileManager.default.contentsOfDirectory(atPath: dir.path)) ?? []
        return names.filter { !$0.hasPrefix(".") }.sorted().map { dir.appendingPathComponent($0) }
    }

    func testEveryTargetHasACommittedCorpus() {
        for target in FuzzTargets.all {
            XCTAssertFalse(inputs("Corpus", target).isEmpty, "Fuzz/Corpus/\(target.name) is empty; run make fuzz-corpus")
        }
    }

    func testSeedsPass() {
        for target in FuzzTargets.all {
            let seeds = target.seeds()
            XCTAssertFalse(seeds.isEmpty, target.name)
            for seed in seeds {
                XCTAssertLessThanOrEqual(seed.count, target.maxLength, "a seed of \(target.name) exceeds its -max_len")
                target.run(seed)
            }
        }
    }

    func testCorpusAndRegressionsReplay() throws {
        var replayed = 0
        for target in FuzzTargets.all {
            for url in inputs("Corpus", target) + inputs("Regressions", target) {
                target.run(Array(try Data(contentsOf: url)))
                replayed += 1
            }
        }
        XCTAssertGreaterThan(replayed, 0)
    }

    /// `make fuzz-corpus`: writes each target's seeds to Fuzz/Corpus/<target>/seed-NN.
    func testWriteCorpus() throws {
        guard ProcessInfo.processInfo.environment["FUZZ_WRITE_CORPUS"] == "1" else { throw XCTSkip("FUZZ_WRITE_CORPUS not set") }
        for target in FuzzTargets.all {
            let dir = Self.fuzzDirectory.appendingPathComponent("Corpus").appendingPathComponent(target.name)
            try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
            for (i, seed) in target.seeds().enumerated() {
                let name = "seed-" + (i < 10 ? "0" : "") + String(i)
                try Data(seed).write(to: dir.appendingPathComponent(name))
            }
        }
    }
}

/// Fuzz/targets.tsv (what `make fuzz` runs, with -max_len) lists exactly the targets of FuzzTargets.all.
final class FuzzTargetListTests: XCTestCase {
    func testTargetsFileMatchesTheHarnesses() throws {
        let text = try String(
            contentsOf: FuzzRegressionTests.fuzzDirectory.appendingPathComponent("targets.tsv"), encoding: .utf8)
        let rows = text.split(separator: "\n").filter { !$0.hasPrefix("#") }.map { $0.split(separator: "\t") }
        XCTAssertEqual(rows.map { String($0[0]) }, FuzzTargets.all.map(\.name))
        XCTAssertEqual(rows.map { Int($0[1]) }, FuzzTargets.all.map(\.maxLength))
        let package = try String(
            contentsOf: FuzzRegressionTests.fuzzDirectory.appendingPathComponent("Package.swift"), encoding: .utf8)
        for t in FuzzTargets.all {
            XCTAssertTrue(package.contains("\"\(t.name)\""), "Fuzz/Package.swift does not list \(t.name)")
        }
    }
}

/// Crashes fuzzing found, pinned down as plain unit tests besides their inputs in Fuzz/Regressions.
final class FoundByFuzzingTests: XCTestCase {
    /// More than six fractional digits trapped (`digits..<6` with digits > 6): any HTTP `since=` or JSON timestamp
    /// could stop the daemon or the CLI. They are cut to microseconds now.
    func testTimeWithMoreThanSixFractionalDigits() {
        XCTAssertEqual(TimeFormat.parseRFC3339("2025-11-29T02:10:00.1234567Z"), TimeFormat.parseRFC3339("2025-11-29T02:10:00.123456Z"))
        XCTAssertEqual(TimeFormat.parseRFC3339("2025-11-29T02:10:00.123456789012345678Z"), 1_764_382_200_123_456)
        XCTAssertNil(TimeFormat.parseRFC3339("2025-11-29T02:10:00.1234700000abcd-2"))
    }

    /// A custom field named `id` (or `event_type`, `timestamp`, `entities`) was accepted, but the flat JSON form
    /// read it back as the event's own id: such names are refused now.
    func testCustomFieldsCannotTakeTheFlatFormsKeys() {
        for name in ["id", "event_type", "timestamp", "entities"] {
            let event = GridEvent(
                id: "event-deploy-00000000abcd-1", timestamp: 0,
                kind: .custom(name: "deploy", fields: [name: .int(1)], entities: []))
            XCTAssertThrowsError(try event.validate(), name)
        }
        let fine = GridEvent(
            id: "event-deploy-00000000abcd-1", timestamp: 0,
            kind: .custom(name: "deploy", fields: ["fields": .int(1), "ids": .int(2)], entities: []))
        XCTAssertNoThrow(try fine.validate())
    }
}
