/// The posterior draw's arithmetic, written once over `Lanes` so every width computes the same
/// bits: z_0 = fma(exp(logvar / 2), ξ, mean).
public enum PosteriorMath<L: Lanes> {
    /// e^x in f32 (Cephes expf: x = n ln 2 + r, a degree-6 polynomial in r, scaled by 2^n), within
    /// about 2 ulp; x is clamped to [-87, 88] first (a NaN becomes -87), so the result is finite
    /// and normal.
    @inlinable @inline(__always)
    public static func exp(_ x: L.Floats) -> L.Floats {
        let clamped = L.minimum(L.maximum(x, L.floats(-87)), L.floats(88))
        // Adding 1.5 · 2^23 rounds x·log2(e) to an integer n, held in the low mantissa bits.
        let magic = L.floats(12_582_912)
        let shifted = L.fma(clamped, L.floats(1.442_695_04), magic)
        let n = L.add(shifted, L.floats(-12_582_912))
        var r = L.fma(n, L.floats(-0.693_359_375), clamped)
        r = L.fma(n, L.floats(2.121_944_40e-4), r)
        var p = L.floats(1.987_569_150_0e-4)
        p = L.fma(p, r, L.floats(1.398_199_950_7e-3))
        p = L.fma(p, r, L.floats(8.333_451_907_3e-3))
        p = L.fma(p, r, L.floats(4.166_579_589_4e-2))
        p = L.fma(p, r, L.floats(1.666_666_545_9e-1))
        p = L.fma(p, r, L.floats(5.000_000_120_1e-1))
        let y = L.add(L.fma(p, L.multiply(r, r), r), L.floats(1))
        let integer = L.subtract(L.bits(shifted), L.bits(magic))
        return L.multiply(y, L.floats(bits: L.shiftLeft(L.add(integer, L.ints(127)), 23)))
    }

    /// z_0 from one vector of mean, logvar and ξ.
    @inlinable @inline(__always)
    public static func sample(mean: L.Floats, logvar: L.Floats, xi: L.Floats) -> L.Floats {
        L.fma(exp(L.multiply(logvar, L.floats(0.5))), xi, mean)
    }
}
