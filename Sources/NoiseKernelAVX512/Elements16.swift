#if arch(x86_64)
import _Builtin_intrinsics.intel

/// Compile-time element type of the 512-bit kernel (one specialisation per input/output pair, so
/// no per-element dtype dispatch). Each store rounds once, to nearest even, as the 256-bit kernel.
protocol Element16 {
    static var byteCount: Int { get }
    /// Sixteen consecutive elements (unaligned) widened to f32.
    static func load16(_ base: UnsafeRawPointer, _ index: Int) -> SIMD16<Float>
    /// Stores sixteen consecutive elements (unaligned).
    static func store16(_ value: SIMD16<Float>, _ base: UnsafeMutableRawPointer, _ index: Int)
}

enum F32x16: Element16 {
    static var byteCount: Int { 4 }
    @inline(__always) static func load16(_ base: UnsafeRawPointer, _ index: Int) -> SIMD16<Float> {
        base.loadUnaligned(fromByteOffset: index &* 4, as: SIMD16<Float>.self)
    }
    @inline(__always) static func store16(_ value: SIMD16<Float>, _ base: UnsafeMutableRawPointer, _ index: Int) {
        base.storeBytes(of: value, toByteOffset: index &* 4, as: SIMD16<Float>.self)
    }
}

enum F16x16: Element16 {
    static var byteCount: Int { 2 }
    @inline(__always) static func load16(_ base: UnsafeRawPointer, _ index: Int) -> SIMD16<Float> {
        _mm512_cvtph_ps(base.loadUnaligned(fromByteOffset: index &* 2, as: SIMD4<Int64>.self))
    }
    /// In two halves: the generic SIMD16 conversion stays an out-of-line call, the SIMD8 one
    /// becomes vcvtps2ph (rounding to nearest even).
    @inline(__always) static func store16(_ value: SIMD16<Float>, _ base: UnsafeMutableRawPointer, _ index: Int) {
        base.storeBytes(of: SIMD8<Float16>(value.lowHalf), toByteOffset: index &* 2, as: SIMD8<Float16>.self)
        base.storeBytes(of: SIMD8<Float16>(value.highHalf), toByteOffset: index &* 2 &+ 16, as: SIMD8<Float16>.self)
    }
}

enum BF16x16: Element16 {
    static var byteCount: Int { 2 }
    @inline(__always) static func load16(_ base: UnsafeRawPointer, _ index: Int) -> SIMD16<Float> {
        let bits = base.loadUnaligned(fromByteOffset: index &* 2, as: SIMD4<Int64>.self)
        return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(bits), 16))
    }
    /// Round to nearest even on the bit pattern; NaN stays a quiet NaN (not vcvtneps2bf16, which
    /// flushes subnormals to zero).
    @inline(__always) static func store16(_ value: SIMD16<Float>, _ base: UnsafeMutableRawPointer, _ index: Int) {
        let bits = _mm512_castps_si512(value)
        let one = _mm512_set1_epi32(1)
        let high = _mm512_srli_epi32(bits, 16)
        let rounded = _mm512_srli_epi32(
            _mm512_add_epi32(_mm512_add_epi32(bits, _mm512_set1_epi32(0x7fff)), _mm512_and_si512(high, one)), 16)
        let quietNaN = _mm512_or_si512(high, _mm512_set1_epi32(0x0040))
        // Sign bit set exactly where |bits| > infinity (NaN): the borrow of infinity - |bits|.
        let isNaN = _mm512_movepi32_mask(
            _mm512_sub_epi32(_mm512_set1_epi32(0x7f80_0000), _mm512_and_si512(bits, _mm512_set1_epi32(0x7fff_ffff))))
        let halves = _mm512_cvtepi32_epi16(_mm512_mask_blend_epi32(isNaN, rounded, quietNaN))
        base.storeBytes(of: halves, toByteOffset: index &* 2, as: SIMD4<Int64>.self)
    }
}
#endif
