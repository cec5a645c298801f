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

    /// Eight blocks per lane set, two independent sets interleaved so that the multiply latency of
    /// one hides behind the other; the key is shared. Kept out of line: inlined into the kernel
    /// loop, LLVM scalarises parts of the rounds.
    @inline(never)
    package static func block8x2(_ a: Counters8, _ b: Counters8, key: SIMD2<UInt32>) -> (Counters8, Counters8) {
        var a = a, b = b
        var k0 = key.x
        var k1 = key.y
        for round in 0..<10 {
            if round > 0 {
                k0 &+= keyBump0
                k1 &+= keyBump1
            }
            a.round(k0, k1)
            b.round(k0, k1)
        }
        return (a, b)
    }
}

/// Philox state of eight blocks, word j of every block in vector j.
package struct Counters8 {
    package var x0, x1, x2, x3: SIMD8<UInt32>

    package init(x0: SIMD8<UInt32>, x1: SIMD8<UInt32>, x2: SIMD8<UInt32>, x3: SIMD8<UInt32>) {
        (self.x0, self.x1, self.x2, self.x3) = (x0, x1, x2, x3)
    }

    @inline(__always)
    mutating func round(_ k0: UInt32, _ k1: UInt32) {
        let p0 = VectorMath.multiplyFull(x0, Philox4x32_10.multiplier0)
        let p1 = VectorMath.multiplyFull(x2, Philox4x32_10.multiplier1)
        x0 = p1.high ^ x1 ^ SIMD8(repeating: k0)
        x2 = p0.high ^ x3 ^ SIMD8(repeating: k1)
        x1 = p1.low
        x3 = p0.low
    }
}
