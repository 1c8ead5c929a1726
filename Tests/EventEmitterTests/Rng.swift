/// A small seeded generator for the randomised tests (a linear congruential generator): the same seed, the same
/// run, so a failing seed can be replayed.
struct Rng {
    var state: UInt64
    /// A number in 0..<n.
    mutating func next(_ n: Int) -> Int {
        state = state &* 6364136223846793005 &+ 1442695040888963407
        return Int((state >> 33) % UInt64(n))
    }
}
