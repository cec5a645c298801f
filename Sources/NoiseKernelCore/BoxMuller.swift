/// Noise stream v1's Box–Muller transform, with integer range reduction so that the f32 result
/// stays within a few 1e-7 of exact math (docs/noise-stream.md). Written once over `Lanes`; the
/// kernels differ only in how Philox words reach it and how its outputs are interleaved.
public enum BoxMuller<L: Lanes> {
    /// The four eps components of each lane's group, from its Philox words (x0, x1, x2, x3):
    /// (r0 cos(pi a0), r0 sin(pi a0), r1 cos(pi a1), r1 sin(pi a1)).
    @inlinable @inline(__always)
    public static func components(_ x0: L.Ints, _ x1: L.Ints, _ x2: L.Ints, _ x3: L.Ints)
        -> (L.Floats, L.Floats, L.Floats, L.Floats) {
        let r0 = radius(x0), r1 = radius(x2)
        let (cos0, sin0) = cosSinPi(x1)
        let (cos1, sin1) = cosSinPi(x3)
        return (L.multiply(r0, cos0), L.multiply(r0, sin0), L.multiply(r1, cos1), L.multiply(r1, sin1))
    }

    /// r = sqrt(-2 ln u) for u = ((x >> 8) + 0.5) * 2^-24 = N * 2^-25 with N = 2(x >> 8) + 1.
    /// u itself is not representable in f32 near 1, so ln u is reduced exactly from the integer N:
    /// N = 2^e * (1 + f) with 1 + f in [sqrt(1/2), sqrt(2)), ln u = (e - 25) ln 2 + log1p(f).
    @inlinable @inline(__always)
    public static func radius(_ x: L.Ints) -> L.Floats {
        let n = L.or(L.shiftRightLogical(x, 7), L.ints(1))
        let shiftedBits = L.add(L.bits(L.converted(n)), L.ints(NoiseStreamV1.radiusBoundaryOffset))
        let e = L.subtract(L.shiftRightArithmetic(shiftedBits, 23), L.ints(127))
        let inverseScale = L.floats(bits: L.shiftLeft(L.subtract(L.ints(127), e), 23))  // 2^-e
        // Exact: |N - 2^e| < 2^24.
        let f = L.multiply(L.converted(L.subtract(n, L.shiftLeft(L.ints(1), by: e))), inverseScale)
        let eF = L.converted(L.subtract(e, L.ints(25)))
        let f2 = L.multiply(f, f)
        let c = NoiseStreamV1.log1pCoefficients
        var p = L.floats(c.0)
        p = L.fma(p, f, L.floats(c.1))
        p = L.fma(p, f, L.floats(c.2))
        p = L.fma(p, f, L.floats(c.3))
        p = L.fma(p, f, L.floats(c.4))
        p = L.fma(p, f, L.floats(c.5))
        p = L.fma(p, f, L.floats(c.6))
        p = L.fma(p, f, L.floats(c.7))
        p = L.fma(p, f, L.floats(c.8))
        var y = L.multiply(L.multiply(p, f), f2)
        y = L.fma(eF, L.floats(NoiseStreamV1.ln2Low), y)
        y = L.fma(f2, L.floats(-0.5), y)
        let logU = L.fma(eF, L.floats(NoiseStreamV1.ln2High), L.add(f, y))
        return L.squareRoot(L.multiply(logU, L.floats(-2)))
    }

    /// (cos(pi a), sin(pi a)) for a = x * 2^-31. Reduced with integers to the nearest quarter
    /// turn q, y = a - q/2 in [-1/4, 1/4]; then rotated by q mod 4 with bit operations.
    @inlinable @inline(__always)
    public static func cosSinPi(_ x: L.Ints) -> (cos: L.Floats, sin: L.Floats) {
        // Wrapping is harmless: for x near 2^31 q comes out as -2 instead of 2, the same mod 4.
        let q = L.shiftRightArithmetic(L.add(x, L.ints(1 << 29)), 30)
        let y = L.multiply(L.converted(L.subtract(x, L.shiftLeft(q, 30))), L.floats(0x1p-31))
        let y2 = L.multiply(y, y)
        let sk = NoiseStreamV1.sinPiCoefficients, ck = NoiseStreamV1.cosPiCoefficients
        var s = L.floats(sk.0)
        s = L.fma(s, y2, L.floats(sk.1))
        s = L.fma(s, y2, L.floats(sk.2))
        s = L.fma(s, y2, L.floats(sk.3))
        s = L.fma(s, y2, L.floats(sk.4))
        s = L.multiply(s, y)
        var c = L.floats(ck.0)
        c = L.fma(c, y2, L.floats(ck.1))
        c = L.fma(c, y2, L.floats(ck.2))
        c = L.fma(c, y2, L.floats(ck.3))
        c = L.fma(c, y2, L.floats(ck.4))
        // Rotation by q quarter turns: odd q swaps cos and sin; cos is negated for q mod 4 in
        // {1, 2}, sin for q mod 4 in {2, 3}.
        let swap = L.subtract(L.ints(0), L.and(q, L.ints(1)))
        let cosSign = L.shiftLeft(L.and(L.add(q, L.ints(1)), L.ints(2)), 30)
        let sinSign = L.shiftLeft(L.and(q, L.ints(2)), 30)
        let cBits = L.bits(c), sBits = L.bits(s)
        // The swap as an exchange of the differing bits (cheaper than two variable blends).
        let exchange = L.and(L.xor(cBits, sBits), swap)
        return (L.floats(bits: L.xor(L.xor(cBits, exchange), cosSign)),
                L.floats(bits: L.xor(L.xor(sBits, exchange), sinSign)))
    }
}

/// How a sample's z_t is formed: z_t = fma(sigma, eps, (1 - sigma) * z_0), with sigma 0 and 1
/// exact copies. Chosen once per sample; a payload-free mode (an enum carrying the vectors is
/// copied through out-of-line value witnesses at every use).
public struct Blend<L: Lanes> {
    public enum Mode { case keepClean, copyNoise, mix }
    public let mode: Mode
    public let sigma: L.Floats
    public let complement: L.Floats

    @inlinable @inline(__always)
    public init(sigma: Float) {
        mode = sigma == 0 ? .keepClean : sigma == 1 ? .copyNoise : .mix
        self.sigma = L.floats(sigma)
        complement = L.floats(1 - sigma)
    }

    @inlinable @inline(__always)
    public func apply(clean: L.Floats, noise: L.Floats) -> L.Floats {
        switch mode {
        case .keepClean: clean
        case .copyNoise: noise
        case .mix: L.fma(sigma, noise, L.multiply(complement, clean))
        }
    }
}
