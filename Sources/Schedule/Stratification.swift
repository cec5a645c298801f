/// Stratified batches: B uniforms moved into the B strata [j/B, (j+1)/B) of [0, 1), one each,
/// with the strata assigned to samples by a random permutation. Each sample's uniform stays
/// uniform on [0, 1) (a uniform stratum plus a uniform offset within it), while the batch covers
/// [0, 1) evenly, so the variance of batch means (of sigma, of the loss) drops.
public enum Stratification {
    /// u'_b = (π(b) + u_b)/B, π drawn from `seed` by Fisher–Yates over SplitMix64. The daemon
    /// passes the samples' own uniforms and a seed derived from the batch, so the result is a pure
    /// function of the batch.
    public static func stratify(_ uniforms: [Double], permutation seed: UInt64) -> [Double] {
        let count = uniforms.count
        guard count > 1 else { return uniforms }
        var strata = Array(0..<count)
        var generator = SplitMix64(seed: seed)
        for i in stride(from: count - 1, to: 0, by: -1) {
            strata.swapAt(i, Int(generator.next(below: UInt64(i + 1))))
        }
        let size = Double(count)
        // (B - 1 + u)/B can round up to 1 for u just below 1; keep it in [0, 1).
        return zip(strata, uniforms).map { min((Double($0) + $1) / size, 1.0.nextDown) }
    }
}

/// SplitMix64 (Steele, Lea and Flood 2014): a small, fast, fixed generator for permutations.
struct SplitMix64 {
    private var state: UInt64

    init(seed: UInt64) { state = seed }

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// Uniform in 0..<bound without modulo bias (Lemire's multiply-and-reject).
    mutating func next(below bound: UInt64) -> UInt64 {
        var product = next().multipliedFullWidth(by: bound)
        if product.low < bound {
            let threshold = (0 &- bound) % bound
            while product.low < threshold { product = next().multipliedFullWidth(by: bound) }
        }
        return product.high
    }
}
