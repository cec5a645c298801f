#if arch(x86_64)
import _Builtin_intrinsics.intel

/// Noise stream v1's Box-Muller transform on 16 lanes: lane for lane the same operations, in the
/// same order, as the 256-bit kernel's `BoxMuller` (see docs/noise-stream.md), so the bits agree.
///
/// Lane i holds group 4 (i mod 4) + i / 4 of a block (lanes 0, 1, 2, 3 hold groups 0, 4, 8, 12):
/// after the in-128-bit-lane interleave, output vector k then holds groups 4k ..< 4k + 4, i.e.
/// elements 16k ..< 16k + 16.
enum BoxMuller16 {
    typealias Words = (SIMD16<UInt32>, SIMD16<UInt32>, SIMD16<UInt32>, SIMD16<UInt32>)
    typealias Block = (SIMD16<Float>, SIMD16<Float>, SIMD16<Float>, SIMD16<Float>)

    /// 64 consecutive eps values for each of two blocks, from their Philox outputs. The two are
    /// computed in lockstep, each step on both, so that the core always has an independent
    /// instruction beside every long dependency chain (log polynomial, square root).
    @inline(__always)
    static func transform(_ x: Words, _ y: Words) -> (Block, Block) {
        let r0 = radius(Two(x.0, y.0)), r1 = radius(Two(x.2, y.2))
        let (cos0, sin0) = cosSinPi(Two(x.1, y.1))
        let (cos1, sin1) = cosSinPi(Two(x.3, y.3))
        let a = r0.with(cos0, _mm512_mul_ps), b = r0.with(sin0, _mm512_mul_ps)
        let c = r1.with(cos1, _mm512_mul_ps), d = r1.with(sin1, _mm512_mul_ps)
        return (interleaveGroups(a.first, b.first, c.first, d.first),
                interleaveGroups(a.second, b.second, c.second, d.second))
    }

    /// sqrt(-2 ln u) for u = N * 2^-25, N = 2(x >> 8) + 1, reduced exactly from the integer N.
    @inline(__always)
    static func radius(_ x: Two<SIMD16<UInt32>>) -> Two<SIMD16<Float>> {
        let n = x.map { int(_mm512_srli_epi32(words($0), 7)) | SIMD16(repeating: 1) }
        let nF = n.map { _mm512_cvtepi32_ps(words($0)) }
        let shiftedBits = nF.map { int(_mm512_castps_si512($0)) &+ SIMD16(repeating: 0x3f80_0000 - 0x3f35_04f3) }
        let e = shiftedBits.map { int(_mm512_srai_epi32(words($0), 23)) &- SIMD16(repeating: 127) }
        let inverseScale = e.map { _mm512_castsi512_ps(_mm512_slli_epi32(words(SIMD16(repeating: 127) &- $0), 23)) }
        let powerOfTwo = e.map { int(_mm512_sllv_epi32(words(SIMD16<Int32>(repeating: 1)), words($0))) }
        let mantissa = n.with(powerOfTwo) { _mm512_cvtepi32_ps(words($0 &- $1)) }
        let f = mantissa.with(inverseScale, _mm512_mul_ps)
        let eF = e.map { _mm512_cvtepi32_ps(words($0 &- SIMD16(repeating: 25))) }
        let f2 = f.map { _mm512_mul_ps($0, $0) }
        var p = Two(SIMD16<Float>(repeating: 7.0376836292e-2))
        for coefficient: Float in [-1.1514610310e-1, 1.1676998740e-1, -1.2420140846e-1, 1.4249322787e-1,
                                   -1.6668057665e-1, 2.0000714765e-1, -2.4999993993e-1, 3.3333331174e-1] {
            p = p.with(f) { _mm512_fmadd_ps($0, $1, SIMD16(repeating: coefficient)) }
        }
        var y = p.with(f, _mm512_mul_ps).with(f2, _mm512_mul_ps)
        y = eF.with(y) { _mm512_fmadd_ps($0, SIMD16(repeating: -2.12194440e-4), $1) }
        y = f2.with(y) { _mm512_fmadd_ps($0, SIMD16(repeating: -0.5), $1) }
        let sum = f.with(y, _mm512_add_ps)
        let logU = eF.with(sum) { _mm512_fmadd_ps($0, SIMD16(repeating: 0.693359375), $1) }
        let square = logU.map { _mm512_mul_ps($0, SIMD16(repeating: -2)) }
        return square.map { _mm512_sqrt_ps($0) }
    }

    /// (cos(pi a), sin(pi a)) for a = Int32(bitPattern: x) * 2^-31, reduced to the nearest quarter turn.
    @inline(__always)
    static func cosSinPi(_ x: Two<SIMD16<UInt32>>) -> (cos: Two<SIMD16<Float>>, sin: Two<SIMD16<Float>>) {
        let xi = x.map { unsafeBitCast($0, to: SIMD16<Int32>.self) }
        let q = xi.map { int(_mm512_srai_epi32(words($0 &+ SIMD16(repeating: 1 << 29)), 30)) }
        let reduced = xi.with(q) { $0 &- int(_mm512_slli_epi32(words($1), 30)) }
        let y = reduced.map { _mm512_mul_ps(_mm512_cvtepi32_ps(words($0)), SIMD16(repeating: 0x1p-31)) }
        let y2 = y.map { _mm512_mul_ps($0, $0) }
        var s = Two(SIMD16<Float>(repeating: 0.08214588661112819))
        var c = Two(SIMD16<Float>(repeating: 0.23533063035889312))
        for (sk, ck): (Float, Float) in [(-0.5992645293207919, -1.3352627688545893), (2.550164039877345, 4.058712126416768),
                                         (-5.167712780049969, -4.934802200544679), (3.141592653589793, 1)] {
            s = s.with(y2) { _mm512_fmadd_ps($0, $1, SIMD16(repeating: sk)) }
            c = c.with(y2) { _mm512_fmadd_ps($0, $1, SIMD16(repeating: ck)) }
        }
        s = s.with(y, _mm512_mul_ps)
        let swap = q.map { SIMD16<Int32>.zero &- ($0 & SIMD16(repeating: 1)) }
        let cosSign = q.map { int(_mm512_slli_epi32(words(($0 &+ SIMD16(repeating: 1)) & SIMD16(repeating: 2)), 30)) }
        let sinSign = q.map { int(_mm512_slli_epi32(words($0 & SIMD16(repeating: 2)), 30)) }
        let cBits = c.map { int(_mm512_castps_si512($0)) }, sBits = s.map { int(_mm512_castps_si512($0)) }
        let exchange = cBits.with(sBits) { $0 ^ $1 }.with(swap) { $0 & $1 }
        let cosBits = cBits.with(exchange) { $0 ^ $1 }.with(cosSign) { $0 ^ $1 }
        let sinBits = sBits.with(exchange) { $0 ^ $1 }.with(sinSign) { $0 ^ $1 }
        return (cosBits.map { _mm512_castsi512_ps(words($0)) }, sinBits.map { _mm512_castsi512_ps(words($0)) })
    }

    /// Interleaves the four components of each lane's group into consecutive elements (eight
    /// in-128-bit-lane shuffles, as in the 256-bit kernel).
    @inline(__always)
    static func interleaveGroups(
        _ a: SIMD16<Float>, _ b: SIMD16<Float>, _ c: SIMD16<Float>, _ d: SIMD16<Float>
    ) -> (SIMD16<Float>, SIMD16<Float>, SIMD16<Float>, SIMD16<Float>) {
        let abLow = _mm512_castps_pd(_mm512_unpacklo_ps(a, b)), cdLow = _mm512_castps_pd(_mm512_unpacklo_ps(c, d))
        let abHigh = _mm512_castps_pd(_mm512_unpackhi_ps(a, b)), cdHigh = _mm512_castps_pd(_mm512_unpackhi_ps(c, d))
        return (
            _mm512_castpd_ps(_mm512_unpacklo_pd(abLow, cdLow)),
            _mm512_castpd_ps(_mm512_unpackhi_pd(abLow, cdLow)),
            _mm512_castpd_ps(_mm512_unpacklo_pd(abHigh, cdHigh)),
            _mm512_castpd_ps(_mm512_unpackhi_pd(abHigh, cdHigh))
        )
    }

    @inline(__always)
    static func words<T>(_ x: SIMD16<T>) -> SIMD8<Int64> { unsafeBitCast(x, to: SIMD8<Int64>.self) }

    @inline(__always)
    static func int(_ x: SIMD8<Int64>) -> SIMD16<Int32> { unsafeBitCast(x, to: SIMD16<Int32>.self) }
}

/// The same value for two blocks, each step applied to both one after the other.
struct Two<T> {
    var first: T
    var second: T

    @inline(__always) init(_ first: T, _ second: T) { (self.first, self.second) = (first, second) }
    @inline(__always) init(_ both: T) { (first, second) = (both, both) }

    @inline(__always) func map<U>(_ step: (T) -> U) -> Two<U> { Two<U>(step(first), step(second)) }

    @inline(__always) func with<U, V>(_ other: Two<U>, _ step: (T, U) -> V) -> Two<V> {
        Two<V>(step(first, other.first), step(second, other.second))
    }
}
#endif
