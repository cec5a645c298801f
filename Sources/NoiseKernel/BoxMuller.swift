/// The vectorised Box-Muller transform of noise stream v1, with integer range reduction so that
/// the f32 result stays within a few 1e-7 of exact math (see docs/noise-stream.md).
enum BoxMuller {
    /// r = sqrt(-2 ln u) for u = ((x >> 8) + 0.5) * 2^-24 = N * 2^-25 with N = 2(x >> 8) + 1.
    /// u itself is not representable in f32 near 1, so ln u is reduced exactly from the integer N:
    /// N = 2^e * (1 + f) with 1 + f in [sqrt(1/2), sqrt(2)), ln u = (e - 25) ln 2 + log1p(f).
    @inline(__always)
    static func radius(_ x: SIMD8<UInt32>) -> SIMD8<Float> {
        let n = VectorMath.signed(VectorMath.shiftRight(x, 7) | SIMD8(repeating: 1))
        // Adding (1 - sqrt(1/2)) in the f32 bit domain moves the exponent boundary to sqrt(1/2).
        let shiftedBits = unsafeBitCast(VectorMath.float(n), to: SIMD8<Int32>.self) &+ SIMD8(repeating: 0x3f80_0000 - 0x3f35_04f3)
        let e = VectorMath.shiftRight(shiftedBits, 23) &- SIMD8(repeating: 127)
        let inverseScale = unsafeBitCast(VectorMath.shiftLeft(SIMD8(repeating: 127) &- e, 23), to: SIMD8<Float>.self)  // 2^-e
        let f = VectorMath.float(n &- VectorMath.shiftLeft(SIMD8(repeating: 1), by: e)) * inverseScale  // exact: |N - 2^e| < 2^24
        let eF = VectorMath.float(e &- SIMD8(repeating: 25))
        // log1p(f) on [sqrt(1/2) - 1, sqrt(2) - 1]: the Cephes logf polynomial (relative error ~1e-7),
        // f - f^2/2 + f^3 P(f); ln 2 split in two so that (e - 25) * ln2High is exact.
        let f2 = f * f
        var p = SIMD8<Float>(repeating: 7.0376836292e-2)
        p = VectorMath.fma(p, f, SIMD8(repeating: -1.1514610310e-1))
        p = VectorMath.fma(p, f, SIMD8(repeating: 1.1676998740e-1))
        p = VectorMath.fma(p, f, SIMD8(repeating: -1.2420140846e-1))
        p = VectorMath.fma(p, f, SIMD8(repeating: 1.4249322787e-1))
        p = VectorMath.fma(p, f, SIMD8(repeating: -1.6668057665e-1))
        p = VectorMath.fma(p, f, SIMD8(repeating: 2.0000714765e-1))
        p = VectorMath.fma(p, f, SIMD8(repeating: -2.4999993993e-1))
        p = VectorMath.fma(p, f, SIMD8(repeating: 3.3333331174e-1))
        var y = p * f * f2
        y = VectorMath.fma(eF, SIMD8(repeating: -2.12194440e-4), y)
        y = VectorMath.fma(f2, SIMD8(repeating: -0.5), y)
        let logU = VectorMath.fma(eF, SIMD8(repeating: 0.693359375), f + y)
        return VectorMath.squareRoot(logU * SIMD8(repeating: -2))
    }

    /// (cos(pi a), sin(pi a)) for a = Int32(bitPattern: x) * 2^-31. Reduced with integers to the
    /// nearest quarter turn q, y = a - q/2 in [-1/4, 1/4]; then rotated by q mod 4 with selects.
    @inline(__always)
    static func cosSinPi(_ x: SIMD8<UInt32>) -> (cos: SIMD8<Float>, sin: SIMD8<Float>) {
        let xi = VectorMath.signed(x)
        // Wrapping is harmless: for x near 2^31 q comes out as -2 instead of 2, the same mod 4.
        let q = VectorMath.shiftRight(xi &+ SIMD8(repeating: 1 << 29), 30)
        let y = VectorMath.float(xi &- VectorMath.shiftLeft(q, 30)) * SIMD8(repeating: 0x1p-31)
        let y2 = y * y
        // Taylor polynomials of sin(pi y) and cos(pi y); truncation error < 3e-8 on |y| <= 1/4.
        var s = SIMD8<Float>(repeating: 0.08214588661112819)
        s = VectorMath.fma(s, y2, SIMD8(repeating: -0.5992645293207919))
        s = VectorMath.fma(s, y2, SIMD8(repeating: 2.550164039877345))
        s = VectorMath.fma(s, y2, SIMD8(repeating: -5.167712780049969))
        s = VectorMath.fma(s, y2, SIMD8(repeating: 3.141592653589793))
        s *= y
        var c = SIMD8<Float>(repeating: 0.23533063035889312)
        c = VectorMath.fma(c, y2, SIMD8(repeating: -1.3352627688545893))
        c = VectorMath.fma(c, y2, SIMD8(repeating: 4.058712126416768))
        c = VectorMath.fma(c, y2, SIMD8(repeating: -4.934802200544679))
        c = VectorMath.fma(c, y2, SIMD8(repeating: 1))
        // Rotation by q quarter turns: odd q swaps cos and sin; cos is negated for q mod 4 in {1, 2},
        // sin for q mod 4 in {2, 3}.
        let swap = VectorMath.unsigned(SIMD8.zero &- (q & SIMD8(repeating: 1)))
        let cosSign = VectorMath.unsigned(VectorMath.shiftLeft((q &+ SIMD8(repeating: 1)) & SIMD8(repeating: 2), 30))
        let sinSign = VectorMath.unsigned(VectorMath.shiftLeft(q & SIMD8(repeating: 2), 30))
        let cBits = VectorMath.bits(c), sBits = VectorMath.bits(s)
        // The swap as an exchange of the differing bits (cheaper than two variable blends).
        let exchange = (cBits ^ sBits) & swap
        return (
            VectorMath.float(cBits ^ exchange ^ cosSign),
            VectorMath.float(sBits ^ exchange ^ sinSign)
        )
    }
}
