#if arch(x86_64)
import _Builtin_intrinsics.intel

/// Philox4x32-10 (Random123 constants, as `Philox4x32_10` in NoiseKernel; the tests compare the
/// two) on the 32 counter blocks of two 64-element blocks of noise stream v1, as four sets of
/// eight with each 32-bit word in the low half of a 64-bit lane: vpmuludq then gives whole
/// products whose halves are one shift apart (no shuffles, no separate low multiply), the same
/// scheme as the 256-bit kernel's `WidePhilox` at twice the width.
enum Philox16 {
    static let multiplier0: UInt32 = 0xD251_1F53
    static let multiplier1: UInt32 = 0xCD9E_8D57
    static let keyBump0: UInt32 = 0x9E37_79B9
    static let keyBump1: UInt32 = 0xBB67_AE85

    /// Group offsets of the two sets of one block, in the low words of the 64-bit lanes: packed,
    /// set a lands in the even lanes and set b in the odd ones, so that lane i holds the group
    /// `BoxMuller16` expects there, 4 (i mod 4) + i / 4.
    static var setAGroups: SIMD16<Int32> { SIMD16<Int32>(0, 0, 8, 0, 1, 0, 9, 0, 2, 0, 10, 0, 3, 0, 11, 0) }
    static var setBGroups: SIMD16<Int32> { SIMD16<Int32>(4, 0, 12, 0, 5, 0, 13, 0, 6, 0, 14, 0, 7, 0, 15, 0) }

    typealias Words = (SIMD16<UInt32>, SIMD16<UInt32>, SIMD16<UInt32>, SIMD16<UInt32>)

    /// The four output words of two blocks of 16 groups: counters (first + g, groupHigh, idLow,
    /// idHigh) and (second + g, ...), g in 0..<16, word j of every group in vector j. Two blocks
    /// at once give eight independent multiply chains per round, which hides the multiplies'
    /// latency (one block alone leaves the core waiting on its dependency chains).
    @inline(__always)
    static func twoBlocks(
        first: UInt32, second: UInt32, groupHigh: UInt32, idLow: UInt32, idHigh: UInt32, key: SIMD2<UInt32>
    ) -> (Words, Words) {
        func splat(_ x: UInt32) -> SIMD8<Int64> { _mm512_set1_epi32(Int32(bitPattern: x)) }
        let setA = unsafeBitCast(setAGroups, to: SIMD8<Int64>.self), setB = unsafeBitCast(setBGroups, to: SIMD8<Int64>.self)
        // Sets a and b hold the first block's groups, c and d the second's.
        var a0 = _mm512_add_epi32(splat(first), setA), b0 = _mm512_add_epi32(splat(first), setB)
        var c0 = _mm512_add_epi32(splat(second), setA), d0 = _mm512_add_epi32(splat(second), setB)
        var a1 = splat(groupHigh), b1 = a1, c1 = a1, d1 = a1
        var a2 = splat(idLow), b2 = a2, c2 = a2, d2 = a2
        var a3 = splat(idHigh), b3 = a3, c3 = a3, d3 = a3
        let m0 = splat(multiplier0), m1 = splat(multiplier1)
        let bump0 = splat(keyBump0), bump1 = splat(keyBump1)
        var k0 = splat(key.x), k1 = splat(key.y)
        @inline(__always)
        func round() {
            let pa0 = _mm512_mul_epu32(a0, m0), pa1 = _mm512_mul_epu32(a2, m1)
            let pb0 = _mm512_mul_epu32(b0, m0), pb1 = _mm512_mul_epu32(b2, m1)
            let pc0 = _mm512_mul_epu32(c0, m0), pc1 = _mm512_mul_epu32(c2, m1)
            let pd0 = _mm512_mul_epu32(d0, m0), pd1 = _mm512_mul_epu32(d2, m1)
            // Each pair of xors becomes one vpternlog.
            a0 = _mm512_xor_si512(_mm512_xor_si512(_mm512_srli_epi64(pa1, 32), a1), k0)
            a2 = _mm512_xor_si512(_mm512_xor_si512(_mm512_srli_epi64(pa0, 32), a3), k1)
            b0 = _mm512_xor_si512(_mm512_xor_si512(_mm512_srli_epi64(pb1, 32), b1), k0)
            b2 = _mm512_xor_si512(_mm512_xor_si512(_mm512_srli_epi64(pb0, 32), b3), k1)
            c0 = _mm512_xor_si512(_mm512_xor_si512(_mm512_srli_epi64(pc1, 32), c1), k0)
            c2 = _mm512_xor_si512(_mm512_xor_si512(_mm512_srli_epi64(pc0, 32), c3), k1)
            d0 = _mm512_xor_si512(_mm512_xor_si512(_mm512_srli_epi64(pd1, 32), d1), k0)
            d2 = _mm512_xor_si512(_mm512_xor_si512(_mm512_srli_epi64(pd0, 32), d3), k1)
            (a1, a3, b1, b3) = (pa1, pa0, pb1, pb0)
            (c1, c3, d1, d3) = (pc1, pc0, pd1, pd0)
        }
        @inline(__always)
        func bumpKey() {
            k0 = _mm512_add_epi32(k0, bump0)
            k1 = _mm512_add_epi32(k1, bump1)
        }
        // Ten rounds written out: unrolled, the key schedule no longer depends on the loop and
        // the compiler hoists it out of the caller's loop over blocks (LLVM leaves a loop here
        // rolled, with register copies for the rotation of the words).
        round(); bumpKey(); round(); bumpKey(); round(); bumpKey(); round(); bumpKey(); round(); bumpKey()
        round(); bumpKey(); round(); bumpKey(); round(); bumpKey(); round(); bumpKey(); round()
        // One set's words into the even 32-bit lanes, the other's into the odd ones.
        func pack(_ a: SIMD8<Int64>, _ b: SIMD8<Int64>) -> SIMD16<UInt32> {
            unsafeBitCast(_mm512_mask_blend_epi32(0xAAAA, a, _mm512_slli_epi64(b, 32)), to: SIMD16<UInt32>.self)
        }
        return ((pack(a0, b0), pack(a1, b1), pack(a2, b2), pack(a3, b3)),
                (pack(c0, d0), pack(c1, d1), pack(c2, d2), pack(c3, d3)))
    }
}
#endif
