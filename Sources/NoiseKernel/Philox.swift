/// Philox4x32-10 (Salmon et al. 2011) with the Random123 constants.
public enum Philox4x32_10 {
    static let multiplier0: UInt32 = 0xD251_1F53
    static let multiplier1: UInt32 = 0xCD9E_8D57
    static let keyBump0: UInt32 = 0x9E37_79B9
    static let keyBump1: UInt32 = 0xBB67_AE85

    /// One block: four 32-bit outputs for a 128-bit counter under a 64-bit key.
    public static func block(counter: SIMD4<UInt32>, key: SIMD2<UInt32>) -> SIMD4<UInt32> {
        var x = counter
        var k = key
        for round in 0..<10 {
            if round > 0 {
                k.x &+= keyBump0
                k.y &+= keyBump1
            }
            let p0 = UInt64(multiplier0) &* UInt64(x.x)
            let p1 = UInt64(multiplier1) &* UInt64(x.z)
            x = SIMD4(
                UInt32(truncatingIfNeeded: p1 >> 32) ^ x.y ^ k.x,
                UInt32(truncatingIfNeeded: p1),
                UInt32(truncatingIfNeeded: p0 >> 32) ^ x.w ^ k.y,
                UInt32(truncatingIfNeeded: p0)
            )
        }
        return x
    }

    /// Eight blocks at once, one per lane; the key is shared. Whole-vector rounds: the 32x32->64
    /// products on SIMD8<UInt64> lower to vpmuludq.
    @inline(__always)
    static func block8(
        _ c0: SIMD8<UInt32>, _ c1: SIMD8<UInt32>, _ c2: SIMD8<UInt32>, _ c3: SIMD8<UInt32>,
        key: SIMD2<UInt32>
    ) -> (SIMD8<UInt32>, SIMD8<UInt32>, SIMD8<UInt32>, SIMD8<UInt32>) {
        var (x0, x1, x2, x3) = (c0, c1, c2, c3)
        var k0 = key.x
        var k1 = key.y
        let m0 = SIMD8<UInt64>(repeating: UInt64(multiplier0))
        let m1 = SIMD8<UInt64>(repeating: UInt64(multiplier1))
        for round in 0..<10 {
            if round > 0 {
                k0 &+= keyBump0
                k1 &+= keyBump1
            }
            let p0 = SIMD8<UInt64>(truncatingIfNeeded: x0) &* m0
            let p1 = SIMD8<UInt64>(truncatingIfNeeded: x2) &* m1
            let next0 = SIMD8<UInt32>(truncatingIfNeeded: p1 &>> 32) ^ x1 ^ SIMD8(repeating: k0)
            let next2 = SIMD8<UInt32>(truncatingIfNeeded: p0 &>> 32) ^ x3 ^ SIMD8(repeating: k1)
            x1 = SIMD8<UInt32>(truncatingIfNeeded: p1)
            x3 = SIMD8<UInt32>(truncatingIfNeeded: p0)
            x0 = next0
            x2 = next2
        }
        return (x0, x1, x2, x3)
    }
}
