#if arch(x86_64)
import _Builtin_intrinsics.intel
import NoiseKernelCore

/// Philox4x32-10 on the 32 counter blocks of two 64-element blocks of noise stream v1 (or of one
/// block under two keys), as four sets of eight (`PhiloxWords<Wide8>`).
enum Philox16 {
    /// Group offsets of the two sets of one block, in the low words of the 64-bit lanes: packed,
    /// set a lands in the even lanes and set b in the odd ones, so that lane i holds the group
    /// `Lanes16` expects there, 4 (i mod 4) + i / 4.
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
        // Sets a and b hold the first block's groups, c and d the second's.
        var a = set(first, setAGroups, groupHigh, idLow, idHigh), b = set(first, setBGroups, groupHigh, idLow, idHigh)
        var c = set(second, setAGroups, groupHigh, idLow, idHigh), d = set(second, setBGroups, groupHigh, idLow, idHigh)
        PhiloxRoundKey<Wide8>.tenRounds(key: key) { k in
            a.round(k)
            b.round(k)
            c.round(k)
            d.round(k)
        }
        return (words(a, b), words(c, d))
    }

    /// One block's words under two keys (two streams, one counter), worked in lockstep as
    /// `twoBlocks` works two blocks.
    @inline(__always)
    static func oneBlock(
        _ first: UInt32, groupHigh: UInt32, idLow: UInt32, idHigh: UInt32, keys: (SIMD2<UInt32>, SIMD2<UInt32>)
    ) -> (Words, Words) {
        var a = set(first, setAGroups, groupHigh, idLow, idHigh), b = set(first, setBGroups, groupHigh, idLow, idHigh)
        var c = a, d = b
        PhiloxRoundKey<Wide8>.tenRounds(keys: keys.0, keys.1) { k, l in
            a.round(k)
            b.round(k)
            c.round(l)
            d.round(l)
        }
        return (words(a, b), words(c, d))
    }

    @inline(__always)
    private static func set(_ start: UInt32, _ groups: SIMD16<Int32>, _ groupHigh: UInt32, _ idLow: UInt32, _ idHigh: UInt32)
        -> PhiloxWords<Wide8> {
        PhiloxWords(groups: _mm512_add_epi32(Wide8.splat(start), unsafeBitCast(groups, to: SIMD8<Int64>.self)),
                    groupHigh: groupHigh, idLow: idLow, idHigh: idHigh)
    }

    /// One set's words into the even 32-bit lanes, the other's into the odd ones.
    @inline(__always)
    private static func words(_ a: PhiloxWords<Wide8>, _ b: PhiloxWords<Wide8>) -> Words {
        func pack(_ a: SIMD8<Int64>, _ b: SIMD8<Int64>) -> SIMD16<UInt32> {
            unsafeBitCast(_mm512_mask_blend_epi32(0xAAAA, a, _mm512_slli_epi64(b, 32)), to: SIMD16<UInt32>.self)
        }
        return (pack(a.w0, b.w0), pack(a.w1, b.w1), pack(a.w2, b.w2), pack(a.w3, b.w3))
    }
}

/// Eight 64-bit lanes, each holding a 32-bit Philox word in its low half (AVX-512).
enum Wide8: WideLanes {
    typealias Wide = SIMD8<Int64>
    @inline(__always) static func splat(_ x: UInt32) -> Wide { _mm512_set1_epi32(Int32(bitPattern: x)) }
    @inline(__always) static func multiply(_ a: Wide, _ b: Wide) -> Wide { _mm512_mul_epu32(a, b) }
    @inline(__always) static func high(_ a: Wide) -> Wide { _mm512_srli_epi64(a, 32) }
}

#endif
