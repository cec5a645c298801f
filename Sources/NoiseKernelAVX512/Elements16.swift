#if arch(x86_64)
import _Builtin_intrinsics.intel
import CCPUFeatures

/// Compile-time element type of the 512-bit kernel (one specialisation per input/output pair, so
/// no per-element dtype dispatch). Each store rounds once, to nearest even, as the 256-bit kernel.
/// Stores take 32 elements (two vectors), which lets bf16 pack them with one shuffle pair.
protocol Element16 {
    static var byteCount: Int { get }
    /// Sixteen consecutive elements (unaligned) widened to f32.
    static func load16(_ base: UnsafeRawPointer, _ index: Int) -> SIMD16<Float>
    /// Stores 32 consecutive elements (unaligned), `low` first.
    static func store32(_ low: SIMD16<Float>, _ high: SIMD16<Float>, _ base: UnsafeMutableRawPointer, _ index: Int)
    /// The same for values known not to be NaN (eps): no NaN handling needed.
    static func storeFinite32(_ low: SIMD16<Float>, _ high: SIMD16<Float>, _ base: UnsafeMutableRawPointer, _ index: Int)
}

extension Element16 {
    @inline(__always)
    static func storeFinite32(_ low: SIMD16<Float>, _ high: SIMD16<Float>, _ base: UnsafeMutableRawPointer, _ index: Int) {
        store32(low, high, base, index)
    }
}

enum F32x16: Element16 {
    static var byteCount: Int { 4 }
    @inline(__always) static func load16(_ base: UnsafeRawPointer, _ index: Int) -> SIMD16<Float> {
        base.loadUnaligned(fromByteOffset: index &* 4, as: SIMD16<Float>.self)
    }
    @inline(__always)
    static func store32(_ low: SIMD16<Float>, _ high: SIMD16<Float>, _ base: UnsafeMutableRawPointer, _ index: Int) {
        base.storeBytes(of: low, toByteOffset: index &* 4, as: SIMD16<Float>.self)
        base.storeBytes(of: high, toByteOffset: index &* 4 &+ 64, as: SIMD16<Float>.self)
    }
}

enum F16x16: Element16 {
    static var byteCount: Int { 2 }
    @inline(__always) static func load16(_ base: UnsafeRawPointer, _ index: Int) -> SIMD16<Float> {
        _mm512_cvtph_ps(base.loadUnaligned(fromByteOffset: index &* 2, as: SIMD4<Int64>.self))
    }
    /// vcvtps2ph on whole vectors (Swift's SIMD16 conversion is an out-of-line call, and its
    /// SIMD8 one converts a half at a time).
    @inline(__always)
    static func store32(_ low: SIMD16<Float>, _ high: SIMD16<Float>, _ base: UnsafeMutableRawPointer, _ index: Int) {
        let offset = index &* 2
        base.storeBytes(of: noised_f16_round(low), toByteOffset: offset, as: SIMD4<Int64>.self)
        base.storeBytes(of: noised_f16_round(high), toByteOffset: offset &+ 32, as: SIMD4<Int64>.self)
    }
}

enum BF16x16: Element16 {
    static var byteCount: Int { 2 }
    @inline(__always) static func load16(_ base: UnsafeRawPointer, _ index: Int) -> SIMD16<Float> {
        let bits = base.loadUnaligned(fromByteOffset: index &* 2, as: SIMD4<Int64>.self)
        return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(bits), 16))
    }

    /// Round to nearest even on the bit pattern (not vcvtneps2bf16, which flushes subnormals to
    /// zero); a NaN stays a quiet NaN.
    @inline(__always)
    static func store32(_ low: SIMD16<Float>, _ high: SIMD16<Float>, _ base: UnsafeMutableRawPointer, _ index: Int) {
        store(keepingNaN(low), keepingNaN(high), base, index)
    }

    /// Rounding alone is exact for every value but NaN.
    @inline(__always)
    static func storeFinite32(_ low: SIMD16<Float>, _ high: SIMD16<Float>, _ base: UnsafeMutableRawPointer, _ index: Int) {
        store(rounded(_mm512_castps_si512(low)), rounded(_mm512_castps_si512(high)), base, index)
    }

    /// The upper 16 bits of bits + 0x7fff + (the lowest kept bit): round to nearest, ties to even.
    @inline(__always)
    private static func rounded(_ bits: SIMD8<Int64>) -> SIMD8<Int64> {
        let lowestKept = _mm512_and_si512(_mm512_srli_epi32(bits, 16), _mm512_set1_epi32(1))
        return _mm512_srli_epi32(_mm512_add_epi32(_mm512_add_epi32(bits, _mm512_set1_epi32(0x7fff)), lowestKept), 16)
    }

    @inline(__always)
    private static func keepingNaN(_ value: SIMD16<Float>) -> SIMD8<Int64> {
        let bits = _mm512_castps_si512(value)
        // |bits| above infinity's pattern (NaN, whose payload rounding could carry into the sign):
        // the sign bit of infinity - |bits|.
        let isNaN = _mm512_movepi32_mask(
            _mm512_sub_epi32(_mm512_set1_epi32(0x7f80_0000), _mm512_and_si512(bits, _mm512_set1_epi32(0x7fff_ffff))))
        return _mm512_mask_or_epi32(rounded(bits), isNaN, _mm512_srli_epi32(bits, 16), _mm512_set1_epi32(0x0040))
    }

    /// Packs two vectors of 16-bit values held in 32-bit lanes into 32 consecutive elements:
    /// vpackusdw interleaves them per 128-bit lane, one vpermq puts the quarters in order.
    @inline(__always)
    private static func store(_ low: SIMD8<Int64>, _ high: SIMD8<Int64>, _ base: UnsafeMutableRawPointer, _ index: Int) {
        let packed = _mm512_packus_epi32(low, high)
        let ordered = _mm512_permutexvar_epi64(SIMD8<Int64>(0, 2, 4, 6, 1, 3, 5, 7), packed)
        base.storeBytes(of: ordered, toByteOffset: index &* 2, as: SIMD8<Int64>.self)
    }
}

/// bf16 rounded and packed by one vcvtne2ps2bf16, which gives the bits of BF16x16's integer
/// rounding for every value but subnormals (it flushes them to zero). Only on CPUs with
/// AVX512_BF16.
enum BF16x16Native: Element16 {
    static var byteCount: Int { 2 }
    @inline(__always) static func load16(_ base: UnsafeRawPointer, _ index: Int) -> SIMD16<Float> {
        BF16x16.load16(base, index)
    }
    /// NaN comes out of the instruction as out of the integer path (the upper half, quieted);
    /// 32 values with a subnormal among them, rare, take the integer path.
    @inline(__always)
    static func store32(_ low: SIMD16<Float>, _ high: SIMD16<Float>, _ base: UnsafeMutableRawPointer, _ index: Int) {
        if noised_subnormal_lanes(low) | noised_subnormal_lanes(high) == 0 {
            base.storeBytes(of: noised_bf16_round_pack(low, high), toByteOffset: index &* 2, as: SIMD8<Int64>.self)
        } else {
            BF16x16.store32(low, high, base, index)
        }
    }
    /// eps is never subnormal.
    @inline(__always)
    static func storeFinite32(_ low: SIMD16<Float>, _ high: SIMD16<Float>, _ base: UnsafeMutableRawPointer, _ index: Int) {
        base.storeBytes(of: noised_bf16_round_pack(low, high), toByteOffset: index &* 2, as: SIMD8<Int64>.self)
    }
}
#endif
