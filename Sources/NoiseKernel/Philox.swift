import NoiseKernelCore

extension Philox4x32_10 {
    /// The 16 blocks with counters (g, groupHigh, idLow, idHigh) for g = groupLow + 0..<16
    /// (groupLow a multiple of 16), as two sets of eight: lane i of set s is group
    /// groupLow + 8 s + `NoiseBlockGenerator.laneGroups[i]`.
    @inline(__always)
    package static func sixteenBlocks(
        groupLow: UInt32, groupHigh: UInt32, idLow: UInt32, idHigh: UInt32, key: SIMD2<UInt32>
    ) -> (Counters8, Counters8) {
        #if arch(x86_64)
        return (WidePhilox.eightBlocks(groupLow, groupHigh, idLow, idHigh, key: key),
                WidePhilox.eightBlocks(groupLow &+ 8, groupHigh, idLow, idHigh, key: key))
        #else
        let low = SIMD8(repeating: groupLow) &+ NoiseBlockGenerator.laneGroups
        let shared = (SIMD8(repeating: groupHigh), SIMD8(repeating: idLow), SIMD8(repeating: idHigh))
        return block8x2(
            Counters8(x0: low, x1: shared.0, x2: shared.1, x3: shared.2),
            Counters8(x0: low &+ SIMD8(repeating: 8), x1: shared.0, x2: shared.1, x3: shared.2),
            key: key)
        #endif
    }
}

/// Philox state of eight blocks, word j of every block in vector j.
package struct Counters8 {
    package var x0, x1, x2, x3: SIMD8<UInt32>

    package init(x0: SIMD8<UInt32>, x1: SIMD8<UInt32>, x2: SIMD8<UInt32>, x3: SIMD8<UInt32>) {
        (self.x0, self.x1, self.x2, self.x3) = (x0, x1, x2, x3)
    }
}

#if arch(x86_64)
import _Builtin_intrinsics.intel

/// Four 64-bit lanes, each holding a 32-bit Philox word in its low half (AVX2).
enum Wide4: WideLanes {
    typealias Wide = SIMD4<Int64>
    @inline(__always) static func splat(_ x: UInt32) -> Wide { _mm256_set1_epi32(Int32(bitPattern: x)) }
    @inline(__always) static func multiply(_ a: Wide, _ b: Wide) -> Wide { _mm256_mul_epu32(a, b) }
    @inline(__always) static func high(_ a: Wide) -> Wide { _mm256_srli_epi64(a, 32) }
}

/// Philox on eight blocks held as two sets of four.
enum WidePhilox {
    /// Blocks for groups first + (0, 2, 4, 6, 1, 3, 5, 7), packed into eight lanes in that order.
    @inline(__always)
    static func eightBlocks(
        _ first: UInt32, _ groupHigh: UInt32, _ idLow: UInt32, _ idHigh: UInt32, key: SIMD2<UInt32>
    ) -> Counters8 {
        // Packing below interleaves the 64-bit lanes of the two sets (a0 b0 a1 b1 | a2 b2 a3 b3),
        // so set a holds groups (0, 4, 1, 5) and set b groups (2, 6, 3, 7).
        let base = Wide4.splat(first)
        func groups(_ offsets: SIMD8<Int32>) -> SIMD4<Int64> { _mm256_add_epi32(base, unsafeBitCast(offsets, to: SIMD4<Int64>.self)) }
        var a = PhiloxWords<Wide4>(groups: groups(SIMD8(0, 0, 4, 0, 1, 0, 5, 0)), groupHigh: groupHigh, idLow: idLow, idHigh: idHigh)
        var b = PhiloxWords<Wide4>(groups: groups(SIMD8(2, 0, 6, 0, 3, 0, 7, 0)), groupHigh: groupHigh, idLow: idLow, idHigh: idHigh)
        PhiloxRoundKey<Wide4>.tenRounds(key: key) { k in
            a.round(k)
            b.round(k)
        }
        func pack(_ a: SIMD4<Int64>, _ b: SIMD4<Int64>) -> SIMD8<UInt32> {
            let lowWords = unsafeBitCast(SIMD8<Int32>(-1, 0, -1, 0, -1, 0, -1, 0), to: SIMD4<Int64>.self)
            return unsafeBitCast(
                _mm256_or_si256(_mm256_and_si256(a, lowWords), _mm256_slli_epi64(b, 32)), to: SIMD8<UInt32>.self)
        }
        return Counters8(x0: pack(a.w0, b.w0), x1: pack(a.w1, b.w1), x2: pack(a.w2, b.w2), x3: pack(a.w3, b.w3))
    }
}
#endif

extension Philox4x32_10 {
    /// Eight blocks per lane set, two independent sets interleaved so that the multiply latency
    /// of one hides behind the other; the key is shared: the portable form (x86_64 uses
    /// WidePhilox). Kept out of line: inlined into the kernel loop, LLVM scalarises parts of the
    /// rounds.
    @inline(never)
    package static func block8x2(_ a: Counters8, _ b: Counters8, key: SIMD2<UInt32>) -> (Counters8, Counters8) {
        var a = a, b = b
        var k0 = key.x
        var k1 = key.y
        for round in 0..<10 {
            if round > 0 {
                k0 &+= NoiseStreamV1.keyBump0
                k1 &+= NoiseStreamV1.keyBump1
            }
            a.round(k0, k1)
            b.round(k0, k1)
        }
        return (a, b)
    }
}

extension Counters8 {
    @inline(__always)
    mutating func round(_ k0: UInt32, _ k1: UInt32) {
        let p0 = VectorMath.multiplyFull(x0, NoiseStreamV1.multiplier0)
        let p1 = VectorMath.multiplyFull(x2, NoiseStreamV1.multiplier1)
        x0 = p1.high ^ x1 ^ SIMD8(repeating: k0)
        x2 = p0.high ^ x3 ^ SIMD8(repeating: k1)
        x1 = p1.low
        x3 = p0.low
    }
}
