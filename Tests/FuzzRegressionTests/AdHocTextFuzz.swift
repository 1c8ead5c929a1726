import FuzzTargets
import XCTest

/// Not committed: random inputs through the text-tokens target.
final class AdHocTextFuzz: XCTestCase {
    func testRandomTextInputs() {
        guard ProcessInfo.processInfo.environment["ADHOC_TEXT_FUZZ"] == "1" else { return }
        let target = FuzzTargets.named("text-tokens")!
        let pieces: [[UInt8]] = ["a", "Z", "9", " ", "\"", "-", "_", "İ", "ẞ", "Σ", "ς", "ǅ", "\u{0301}", "\u{0345}", "٣", "Ⅻ", "½", "😀", "ﬁ", "ŉ", "ΐ", "\u{0130}stanbul", "K", "Å", "ß", "\u{1E9E}"].map { Array($0.utf8) }
            + [[0xFF], [0xC3], [0xE2, 0x82], [0xED, 0xA0, 0x80], [0xF4, 0x90, 0x80, 0x80], [0xC0, 0xAF], [0x80], [0x00]]
        var rng = SystemRandomNumberGenerator()
        let n = Int(ProcessInfo.processInfo.environment["ADHOC_N"] ?? "200000")!
        for i in 0..<n {
            var input: [UInt8] = [UInt8.random(in: 0...255, using: &rng)]
            let parts = Int.random(in: 0...20, using: &rng)
            for _ in 0..<parts {
                if Int.random(in: 0..<10, using: &rng) == 0 {
                    input.append(UInt8.random(in: 0...255, using: &rng))
                } else {
                    input += pieces.randomElement(using: &rng)!
                }
            }
            if i % 50_000 == 0 { print("adhoc \(i)") }
            target.run(input)
        }
    }
}
