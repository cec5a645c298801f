#if arch(x86_64)
import _Builtin_intrinsics.intel
import NoiseKernelCore

/// Sixteen f32/Int32 lanes in one 512-bit register.
///
/// Lane i of a Philox set holds group 4 (i mod 4) + i / 4 of a block (lanes 0, 1, 2, 3 hold
/// groups 0, 4, 8, 12): after the in-128-bit-lane interleave, output vector k holds groups
/// 4k ..< 4k + 4, i.e. elements 16k ..< 16k + 16.
enum Lanes16: Lanes {
    typealias Ints = SIMD16<Int32>
    typealias Floats = SIMD16<Float>
    typealias Words = (SIMD16<UInt32>, SIMD16<UInt32>, SIMD16<UInt32>, SIMD16<UInt32>)
    typealias Block = (SIMD16<Float>, SIMD16<Float>, SIMD16<Float>, SIMD16<Float>)

    /// 64 consecutive eps values for each of two blocks, from their Philox outputs, transformed
    /// in lockstep (`PairedLanes`).
    @inline(__always)
    static func transform(_ x: Words, _ y: Words) -> (Block, Block) {
        func pair(_ a: SIMD16<UInt32>, _ b: SIMD16<UInt32>) -> Pair<Ints> {
            Pair(unsafeBitCast(a, to: Ints.self), unsafeBitCast(b, to: Ints.self))
        }
        let (a, b, c, d) = BoxMuller<PairedLanes<Lanes16>>.components(pair(x.0, y.0), pair(x.1, y.1), pair(x.2, y.2), pair(x.3, y.3))
        return (interleaveGroups(a.first, b.first, c.first, d.first), interleaveGroups(a.second, b.second, c.second, d.second))
    }

    /// Interleaves the four components of each lane's group into consecutive elements (eight
    /// in-128-bit-lane shuffles, as in the 256-bit kernel).
    @inline(__always)
    static func interleaveGroups(_ a: Floats, _ b: Floats, _ c: Floats, _ d: Floats) -> Block {
        let abLow = _mm512_castps_pd(_mm512_unpacklo_ps(a, b)), cdLow = _mm512_castps_pd(_mm512_unpacklo_ps(c, d))
        let abHigh = _mm512_castps_pd(_mm512_unpackhi_ps(a, b)), cdHigh = _mm512_castps_pd(_mm512_unpackhi_ps(c, d))
        return (
            _mm512_castpd_ps(_mm512_unpacklo_pd(abLow, cdLow)),
            _mm512_castpd_ps(_mm512_unpackhi_pd(abLow, cdLow)),
            _mm512_castpd_ps(_mm512_unpacklo_pd(abHigh, cdHigh)),
            _mm512_castpd_ps(_mm512_unpackhi_pd(abHigh, cdHigh))
        )
    }

    @inline(__always) static func words(_ x: Ints) -> SIMD8<Int64> { unsafeBitCast(x, to: SIMD8<Int64>.self) }
    @inline(__always) static func int(_ x: SIMD8<Int64>) -> Ints { unsafeBitCast(x, to: Ints.self) }

    @inline(__always) static func shiftRightLogical(_ a: Ints, _ count: Int32) -> Ints {
        int(_mm512_srli_epi32(words(a), UInt32(count)))
    }
    @inline(__always) static func shiftRightArithmetic(_ a: Ints, _ count: Int32) -> Ints {
        int(_mm512_srai_epi32(words(a), UInt32(count)))
    }
    @inline(__always) static func shiftLeft(_ a: Ints, _ count: Int32) -> Ints {
        int(_mm512_slli_epi32(words(a), UInt32(count)))
    }
    @inline(__always) static func shiftLeft(_ a: Ints, by counts: Ints) -> Ints {
        int(_mm512_sllv_epi32(words(a), words(counts)))
    }
    @inline(__always) static func converted(_ a: Ints) -> Floats { _mm512_cvtepi32_ps(words(a)) }
    @inline(__always) static func bits(_ a: Floats) -> Ints { int(_mm512_castps_si512(a)) }
    @inline(__always) static func floats(bits: Ints) -> Floats { _mm512_castsi512_ps(words(bits)) }
    @inline(__always) static func add(_ a: Floats, _ b: Floats) -> Floats { _mm512_add_ps(a, b) }
    @inline(__always) static func multiply(_ a: Floats, _ b: Floats) -> Floats { _mm512_mul_ps(a, b) }
    @inline(__always) static func fma(_ a: Floats, _ b: Floats, _ c: Floats) -> Floats { _mm512_fmadd_ps(a, b, c) }
    @inline(__always) static func squareRoot(_ a: Floats) -> Floats { _mm512_sqrt_ps(a) }
    @inline(__always) static func maximum(_ a: Floats, _ b: Floats) -> Floats { _mm512_max_ps(a, b) }
    @inline(__always) static func minimum(_ a: Floats, _ b: Floats) -> Floats { _mm512_min_ps(a, b) }
}
#endif
