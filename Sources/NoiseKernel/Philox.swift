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
    /// one hides behind the other; the key is shared. The portable form (x86_64 uses WidePhilox). Kept out of line: inlined into the kernel
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

extension Philox4x32_10 {
    /// The 16 blocks with counters (g, groupHigh, idLow, idHigh) for g = groupLow + 0..<16
    /// (groupLow a multiple of 16), as two sets of eight: lane i of set s is group
    /// groupLow + 8 s + laneOrder[i].
    @inline(__always)
    package static func sixteenBlocks(
        groupLow: UInt32, groupHigh: UInt32, idLow: UInt32, idHigh: UInt32, key: SIMD2<UInt32>,
        laneOrder: SIMD8<UInt32>
    ) -> (Counters8, Counters8) {
        #if arch(x86_64)
        precondition(laneOrder == SIMD8(0, 2, 4, 6, 1, 3, 5, 7), "sixteenBlocks: unsupported lane order")
        return (
            WidePhilox.eightBlocks(groupLow, groupHigh, idLow, idHigh, key: key),
            WidePhilox.eightBlocks(groupLow &+ 8, groupHigh, idLow, idHigh, key: key)
        )
        #else
        let low = SIMD8(repeating: groupLow) &+ laneOrder
        let shared = (SIMD8(repeating: groupHigh), SIMD8(repeating: idLow), SIMD8(repeating: idHigh))
        return block8x2(
            Counters8(x0: low, x1: shared.0, x2: shared.1, x3: shared.2),
            Counters8(x0: low &+ SIMD8(repeating: 8), x1: shared.0, x2: shared.1, x3: shared.2),
            key: key)
        #endif
    }
}

#if arch(x86_64)
import _Builtin_intrinsics.intel

/// Philox on eight blocks held as two sets of four, each 32-bit word in the low half of a 64-bit
/// lane (the high half is don't-care): vpmuludq then gives whole products, whose halves are one
/// shift apart, so a round needs no lane shuffles and no separate low multiply.
enum WidePhilox {
    /// Blocks for groups first + (0, 2, 4, 6, 1, 3, 5, 7), packed into eight lanes in that order.
    @inline(__always)
    static func eightBlocks(
        _ first: UInt32, _ groupHigh: UInt32, _ idLow: UInt32, _ idHigh: UInt32, key: SIMD2<UInt32>
    ) -> Counters8 {
        func splat(_ x: UInt32) -> SIMD4<Int64> { _mm256_set1_epi32(Int32(bitPattern: x)) }
        // Packing below interleaves the 64-bit lanes of the two sets (a0 b0 a1 b1 | a2 b2 a3 b3),
        // so set a holds groups (0, 4, 1, 5) and set b groups (2, 6, 3, 7).
        let base = splat(first)
        var a0 = _mm256_add_epi32(base, unsafeBitCast(SIMD8<Int32>(0, 0, 4, 0, 1, 0, 5, 0), to: SIMD4<Int64>.self))
        var b0 = _mm256_add_epi32(base, unsafeBitCast(SIMD8<Int32>(2, 0, 6, 0, 3, 0, 7, 0), to: SIMD4<Int64>.self))
        var a1 = splat(groupHigh), b1 = a1
        var a2 = splat(idLow), b2 = a2
        var a3 = splat(idHigh), b3 = a3
        let m0 = splat(Philox4x32_10.multiplier0), m1 = splat(Philox4x32_10.multiplier1)
        var k0 = splat(key.x), k1 = splat(key.y)
        let bump0 = splat(Philox4x32_10.keyBump0), bump1 = splat(Philox4x32_10.keyBump1)
        for round in 0..<10 {
            if round > 0 {
                k0 = _mm256_add_epi32(k0, bump0)
                k1 = _mm256_add_epi32(k1, bump1)
            }
            let pa0 = _mm256_mul_epu32(a0, m0), pa1 = _mm256_mul_epu32(a2, m1)
            let pb0 = _mm256_mul_epu32(b0, m0), pb1 = _mm256_mul_epu32(b2, m1)
            a0 = _mm256_xor_si256(_mm256_xor_si256(_mm256_srli_epi64(pa1, 32), a1), k0)
            a2 = _mm256_xor_si256(_mm256_xor_si256(_mm256_srli_epi64(pa0, 32), a3), k1)
            b0 = _mm256_xor_si256(_mm256_xor_si256(_mm256_srli_epi64(pb1, 32), b1), k0)
            b2 = _mm256_xor_si256(_mm256_xor_si256(_mm256_srli_epi64(pb0, 32), b3), k1)
            (a1, a3, b1, b3) = (pa1, pa0, pb1, pb0)
        }
        func pack(_ a: SIMD4<Int64>, _ b: SIMD4<Int64>) -> SIMD8<UInt32> {
            let lowWords = unsafeBitCast(SIMD8<Int32>(-1, 0, -1, 0, -1, 0, -1, 0), to: SIMD4<Int64>.self)
            return unsafeBitCast(
                _mm256_or_si256(_mm256_and_si256(a, lowWords), _mm256_slli_epi64(b, 32)), to: SIMD8<UInt32>.self)
        }
        return Counters8(x0: pack(a0, b0), x1: pack(a1, b1), x2: pack(a2, b2), x3: pack(a3, b3))
    }
}
#endif

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
