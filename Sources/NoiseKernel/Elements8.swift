#if arch(x86_64)
import _Builtin_intrinsics.intel
import CCPUFeatures
#endif
import NoiseKernelCore

extension BFloat16Bits {
    /// The same rounding on eight lanes.
    @inline(__always) static func rounding(_ value: SIMD8<Float>) -> SIMD8<UInt16> {
        let bits = unsafeBitCast(value, to: SIMD8<UInt32>.self)
        let rounded = VectorMath.shiftRight(bits &+ 0x7fff &+ (VectorMath.shiftRight(bits, 16) & 1), 16)
        let quietNaN = VectorMath.shiftRight(bits, 16) | 0x0040
        // All ones exactly where |bits| > infinity (NaN): the borrow of infinity - |bits|.
        let isNaN = VectorMath.unsigned(VectorMath.shiftRight(VectorMath.signed(0x7f80_0000 &- (bits & 0x7fff_ffff)), 31))
        return VectorMath.narrow(VectorMath.select(isNaN, quietNaN, rounded))
    }
}

/// Compile-time element type of the kernel: the generic kernel is specialised per (input, output)
/// pair, so there is no per-element dtype dispatch.
protocol KernelElement {
    static var elementType: ElementType { get }
    /// Loads eight consecutive elements (unaligned) widened to f32.
    static func load8(_ base: UnsafeRawPointer, _ index: Int) -> SIMD8<Float>
    /// Stores eight consecutive elements (unaligned), each rounded once to nearest even.
    static func store8(_ value: SIMD8<Float>, _ base: UnsafeMutableRawPointer, _ index: Int)
}

enum F32Element: KernelElement {
    static var elementType: ElementType { .f32 }
    @inline(__always) static func load8(_ base: UnsafeRawPointer, _ index: Int) -> SIMD8<Float> {
        base.loadUnaligned(fromByteOffset: index &* 4, as: SIMD8<Float>.self)
    }
    @inline(__always) static func store8(_ value: SIMD8<Float>, _ base: UnsafeMutableRawPointer, _ index: Int) {
        base.storeBytes(of: value, toByteOffset: index &* 4, as: SIMD8<Float>.self)
    }
}

enum F16Element: KernelElement {
    static var elementType: ElementType { .f16 }
    /// vcvtph2ps and vcvtps2ph on whole vectors: Swift's SIMD8 conversions are out-of-line calls
    /// once the fused loop grows past the inliner's limits.
    @inline(__always) static func load8(_ base: UnsafeRawPointer, _ index: Int) -> SIMD8<Float> {
        #if arch(x86_64)
        _mm256_cvtph_ps(base.loadUnaligned(fromByteOffset: index &* 2, as: SIMD2<Int64>.self))
        #else
        SIMD8<Float>(base.loadUnaligned(fromByteOffset: index &* 2, as: SIMD8<Float16>.self))
        #endif
    }
    @inline(__always) static func store8(_ value: SIMD8<Float>, _ base: UnsafeMutableRawPointer, _ index: Int) {
        #if arch(x86_64)
        base.storeBytes(of: noised_f16_round8(value), toByteOffset: index &* 2, as: SIMD2<Int64>.self)
        #else
        base.storeBytes(of: SIMD8<Float16>(value), toByteOffset: index &* 2, as: SIMD8<Float16>.self)
        #endif
    }
}

enum BF16Element: KernelElement {
    static var elementType: ElementType { .bf16 }
    @inline(__always) static func load8(_ base: UnsafeRawPointer, _ index: Int) -> SIMD8<Float> {
        let bits = base.loadUnaligned(fromByteOffset: index &* 2, as: SIMD8<UInt16>.self)
        return VectorMath.float(VectorMath.unsigned(VectorMath.shiftLeft(VectorMath.signed(VectorMath.widen(bits)), 16)))
    }
    @inline(__always) static func store8(_ value: SIMD8<Float>, _ base: UnsafeMutableRawPointer, _ index: Int) {
        base.storeBytes(of: BFloat16Bits.rounding(value), toByteOffset: index &* 2, as: SIMD8<UInt16>.self)
    }
}
