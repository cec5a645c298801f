/// SplitMix64: the tests' one small fixed-seed generator, independent of the daemon's Philox
/// streams, so test data, generated configs and statistical samples are the same on every run.
public struct SplitMix64: RandomNumberGenerator {
    public var state: UInt64

    public init(seed: UInt64) { state = seed }

    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// A uniform in the open interval (0, 1): 53 random bits, centred in their cell.
    public mutating func uniform() -> Double {
        (Double(next() >> 11) + 0.5) * 0x1p-53
    }

    /// A uniform f32 in [0, 1) on a 2^-24 grid.
    public mutating func uniformFloat() -> Float { Float(next() >> 40) * 0x1p-24 }

    /// A whole number in 0..<n (with the small modulo bias tests can ignore).
    public mutating func below(_ n: Int) -> Int { Int(next() % UInt64(n)) }
}
