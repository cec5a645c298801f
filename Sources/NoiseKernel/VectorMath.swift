#if arch(x86_64)
import _Builtin_intrinsics.intel
#endif

/// Lane-wise operations that the standard library implements as per-lane loops which LLVM does not
/// reliably vectorise (fused multiply-add, conversion, square root, masked select); on x86_64 they
/// are AVX2 intrinsics (the per-lane forms are left to the SLP vectoriser, which splits them into
/// 128-bit and scalar pieces inside large functions), elsewhere portable per-lane code.
enum VectorMath {
    /// a * b + c with a single rounding per lane.
    @inline(__always)
    static func fma(_ a: SIMD8<Float>, _ b: SIMD8<Float>, _ c: SIMD8<Float>) -> SIMD8<Float> {
        #if arch(x86_64)
        _mm256_fmadd_ps(a, b, c)
        #else
        SIMD8(
            c[0].addingProduct(a[0], b[0]), c[1].addingProduct(a[1], b[1]),
            c[2].addingProduct(a[2], b[2]), c[3].addingProduct(a[3], b[3]),
            c[4].addingProduct(a[4], b[4]), c[5].addingProduct(a[5], b[5]),
            c[6].addingProduct(a[6], b[6]), c[7].addingProduct(a[7], b[7]))
        #endif
    }

    /// a * b per lane (the operator, feeding shuffles, is partly scalarised by LLVM).
    @inline(__always)
    static func multiply(_ a: SIMD8<Float>, _ b: SIMD8<Float>) -> SIMD8<Float> {
        #if arch(x86_64)
        _mm256_mul_ps(a, b)
        #else
        a * b
        #endif
    }

    /// Correctly rounded square root per lane.
    @inline(__always)
    static func squareRoot(_ x: SIMD8<Float>) -> SIMD8<Float> {
        #if arch(x86_64)
        // Float.squareRoot() goes through libm's sqrtf (errno path) and stays scalar.
        _mm256_sqrt_ps(x)
        #else
        x.squareRoot()
        #endif
    }

    /// max(a, b) per lane; a NaN in `a` gives `b` (vmaxps).
    @inline(__always)
    static func maximum(_ a: SIMD8<Float>, _ b: SIMD8<Float>) -> SIMD8<Float> {
        #if arch(x86_64)
        _mm256_max_ps(a, b)
        #else
        SIMD8((0..<8).map { a[$0] > b[$0] ? a[$0] : b[$0] })
        #endif
    }

    /// min(a, b) per lane; a NaN in `a` gives `b` (vminps).
    @inline(__always)
    static func minimum(_ a: SIMD8<Float>, _ b: SIMD8<Float>) -> SIMD8<Float> {
        #if arch(x86_64)
        _mm256_min_ps(a, b)
        #else
        SIMD8((0..<8).map { a[$0] < b[$0] ? a[$0] : b[$0] })
        #endif
    }

    /// Lanes of `ifSet` where `mask` is all ones, of `ifClear` where it is zero.
    @inline(__always)
    static func select(_ mask: SIMD8<UInt32>, _ ifSet: SIMD8<UInt32>, _ ifClear: SIMD8<UInt32>) -> SIMD8<UInt32> {
        #if arch(x86_64)
        // vblendvps takes each lane by the sign bit of the mask.
        bits(_mm256_blendv_ps(float(ifClear), float(ifSet), float(mask)))
        #else
        (ifSet & mask) | (ifClear & ~mask)
        #endif
    }

    // Shifts: the standard library's SIMD shifts are per-lane loops (with masking of the count)
    // that LLVM re-vectorises only in pieces. Counts here are in 0..<32.

    /// Logical right shift by a constant count.
    @inline(__always)
    static func shiftRight(_ x: SIMD8<UInt32>, _ count: Int32) -> SIMD8<UInt32> {
        #if arch(x86_64)
        unsafeBitCast(_mm256_srli_epi32(unsafeBitCast(x, to: SIMD4<Int64>.self), count), to: SIMD8<UInt32>.self)
        #else
        x &>> UInt32(count)
        #endif
    }

    /// Arithmetic right shift by a constant count.
    @inline(__always)
    static func shiftRight(_ x: SIMD8<Int32>, _ count: Int32) -> SIMD8<Int32> {
        #if arch(x86_64)
        unsafeBitCast(_mm256_srai_epi32(unsafeBitCast(x, to: SIMD4<Int64>.self), count), to: SIMD8<Int32>.self)
        #else
        x &>> count
        #endif
    }

    /// Left shift by a constant count.
    @inline(__always)
    static func shiftLeft(_ x: SIMD8<Int32>, _ count: Int32) -> SIMD8<Int32> {
        #if arch(x86_64)
        unsafeBitCast(_mm256_slli_epi32(unsafeBitCast(x, to: SIMD4<Int64>.self), count), to: SIMD8<Int32>.self)
        #else
        x &<< count
        #endif
    }

    /// Left shift of each lane by its own count.
    @inline(__always)
    static func shiftLeft(_ x: SIMD8<Int32>, by counts: SIMD8<Int32>) -> SIMD8<Int32> {
        #if arch(x86_64)
        unsafeBitCast(
            _mm256_sllv_epi32(unsafeBitCast(x, to: SIMD4<Int64>.self), unsafeBitCast(counts, to: SIMD4<Int64>.self)),
            to: SIMD8<Int32>.self)
        #else
        x &<< counts
        #endif
    }

    /// Same bits as Int32 lanes (the generic truncatingIfNeeded initializers are per-lane loops that
    /// LLVM splits into pieces).
    @inline(__always)
    static func signed(_ x: SIMD8<UInt32>) -> SIMD8<Int32> {
        unsafeBitCast(x, to: SIMD8<Int32>.self)
    }

    @inline(__always)
    static func unsigned(_ x: SIMD8<Int32>) -> SIMD8<UInt32> {
        unsafeBitCast(x, to: SIMD8<UInt32>.self)
    }

    @inline(__always)
    static func bits(_ x: SIMD8<Float>) -> SIMD8<UInt32> {
        unsafeBitCast(x, to: SIMD8<UInt32>.self)
    }

    @inline(__always)
    static func float(_ bits: SIMD8<UInt32>) -> SIMD8<Float> {
        unsafeBitCast(bits, to: SIMD8<Float>.self)
    }

    /// The full 64-bit products a * m per lane, split into high and low halves: even and odd lanes
    /// are multiplied as 64-bit lanes with 32-bit operands (two vpmuludq), and on x86_64 both halves
    /// are picked out of those two products with in-half shuffles (no separate low multiply).
    @inline(__always)
    static func multiplyFull(_ a: SIMD8<UInt32>, _ m: UInt32) -> (high: SIMD8<UInt32>, low: SIMD8<UInt32>) {
        #if arch(x86_64)
        let words = unsafeBitCast(a, to: SIMD4<Int64>.self)
        let multiplier = _mm256_set1_epi32(Int32(bitPattern: m))
        let even = _mm256_mul_epu32(words, multiplier)
        let odd = _mm256_mul_epu32(_mm256_srli_epi64(words, 32), multiplier)
        // Per 128-bit half, even = (e0, e2) and odd = (o1, o3) as 64-bit products; interleaving
        // their 32-bit words gives (e0 lo, o1 lo, e0 hi, o1 hi) and the same for e2, o3.
        let first = _mm256_unpacklo_epi32(even, odd), second = _mm256_unpackhi_epi32(even, odd)
        return (unsafeBitCast(_mm256_unpackhi_epi64(first, second), to: SIMD8<UInt32>.self),
                unsafeBitCast(_mm256_unpacklo_epi64(first, second), to: SIMD8<UInt32>.self))
        #else
        let oddLanes = SIMD8<UInt32>(0, ~0, 0, ~0, 0, ~0, 0, ~0)
        let pairs = unsafeBitCast(a, to: SIMD4<UInt64>.self)
        let even = (pairs & 0xffff_ffff) &* UInt64(m)
        let odd = (pairs &>> 32) &* UInt64(m)
        let high = unsafeBitCast(even &>> 32, to: SIMD8<UInt32>.self) | (unsafeBitCast(odd, to: SIMD8<UInt32>.self) & oddLanes)
        return (high, a &* m)
        #endif
    }

    /// Int32 -> Float per lane (vcvtdq2ps); the generic initializer stays an out-of-line call.
    @inline(__always)
    static func float(_ x: SIMD8<Int32>) -> SIMD8<Float> {
        #if arch(x86_64)
        _mm256_cvtepi32_ps(unsafeBitCast(x, to: SIMD4<Int64>.self))
        #else
        SIMD8(Float(x[0]), Float(x[1]), Float(x[2]), Float(x[3]), Float(x[4]), Float(x[5]), Float(x[6]), Float(x[7]))
        #endif
    }

    /// Zero-extends 16-bit lanes (vpmovzxwd).
    @inline(__always)
    static func widen(_ x: SIMD8<UInt16>) -> SIMD8<UInt32> {
        #if arch(x86_64)
        unsafeBitCast(_mm256_cvtepu16_epi32(unsafeBitCast(x, to: SIMD2<Int64>.self)), to: SIMD8<UInt32>.self)
        #else
        SIMD8(UInt32(x[0]), UInt32(x[1]), UInt32(x[2]), UInt32(x[3]), UInt32(x[4]), UInt32(x[5]), UInt32(x[6]), UInt32(x[7]))
        #endif
    }

    /// Keeps the low 16 bits of each lane; the lanes must already be below 2^16.
    @inline(__always)
    static func narrow(_ x: SIMD8<UInt32>) -> SIMD8<UInt16> {
        #if arch(x86_64)
        // Saturating pack per 128-bit half (exact for lanes below 2^16), then gather the two halves'
        // first 64 bits into the low 128 bits.
        let words = unsafeBitCast(x, to: SIMD4<Int64>.self)
        let packed = _mm256_packus_epi32(words, words)
        let joined = _mm256_permutevar8x32_epi32(packed, unsafeBitCast(SIMD8<Int32>(0, 1, 4, 5, 0, 1, 4, 5), to: SIMD4<Int64>.self))
        return unsafeBitCast(_mm256_castsi256_si128(joined), to: SIMD8<UInt16>.self)
        #else
        SIMD8(UInt16(truncatingIfNeeded: x[0]), UInt16(truncatingIfNeeded: x[1]),
              UInt16(truncatingIfNeeded: x[2]), UInt16(truncatingIfNeeded: x[3]),
              UInt16(truncatingIfNeeded: x[4]), UInt16(truncatingIfNeeded: x[5]),
              UInt16(truncatingIfNeeded: x[6]), UInt16(truncatingIfNeeded: x[7]))
        #endif
    }

    /// Interleaves four per-group components into consecutive elements, groups laid out as in
    /// `NoiseBlockGenerator.laneGroups`: output k holds groups 2k (lanes k of each input, low half)
    /// and 2k + 1 (lanes k + 4, high half), each as (a, b, c, d).
    @inline(__always)
    static func interleaveGroups(
        _ a: SIMD8<Float>, _ b: SIMD8<Float>, _ c: SIMD8<Float>, _ d: SIMD8<Float>
    ) -> (SIMD8<Float>, SIMD8<Float>, SIMD8<Float>, SIMD8<Float>) {
        #if arch(x86_64)
        // Per 128-bit half: unpack pairs (a, b) and (c, d) of the same group, then join the pairs
        // as 64-bit units; eight in-half shuffles in all.
        let abLow = _mm256_unpacklo_ps(a, b), cdLow = _mm256_unpacklo_ps(c, d)
        let abHigh = _mm256_unpackhi_ps(a, b), cdHigh = _mm256_unpackhi_ps(c, d)
        func pairs(_ x: SIMD8<Float>) -> SIMD4<Double> { unsafeBitCast(x, to: SIMD4<Double>.self) }
        func floats(_ x: SIMD4<Double>) -> SIMD8<Float> { unsafeBitCast(x, to: SIMD8<Float>.self) }
        return (
            floats(_mm256_unpacklo_pd(pairs(abLow), pairs(cdLow))),
            floats(_mm256_unpackhi_pd(pairs(abLow), pairs(cdLow))),
            floats(_mm256_unpacklo_pd(pairs(abHigh), pairs(cdHigh))),
            floats(_mm256_unpackhi_pd(pairs(abHigh), pairs(cdHigh)))
        )
        #else
        func output(_ k: Int) -> SIMD8<Float> {
            SIMD8(a[k], b[k], c[k], d[k], a[k + 4], b[k + 4], c[k + 4], d[k + 4])
        }
        return (output(0), output(1), output(2), output(3))
        #endif
    }
}
