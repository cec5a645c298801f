#if arch(x86_64)
import _Builtin_intrinsics.intel
#endif

/// Lane-wise operations that the standard library implements as per-lane loops which LLVM does not
/// vectorise (fused multiply-add, square root, masked select); these forms compile to single
/// AVX2 instructions.
enum VectorMath {
    /// a * b + c with a single rounding per lane.
    @inline(__always)
    static func fma(_ a: SIMD8<Float>, _ b: SIMD8<Float>, _ c: SIMD8<Float>) -> SIMD8<Float> {
        // Written out per lane: the SLP vectoriser turns this into one vfmadd.
        SIMD8(
            c[0].addingProduct(a[0], b[0]), c[1].addingProduct(a[1], b[1]),
            c[2].addingProduct(a[2], b[2]), c[3].addingProduct(a[3], b[3]),
            c[4].addingProduct(a[4], b[4]), c[5].addingProduct(a[5], b[5]),
            c[6].addingProduct(a[6], b[6]), c[7].addingProduct(a[7], b[7]))
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

    /// Lanes of `ifSet` where `mask` is all ones, of `ifClear` where it is zero.
    @inline(__always)
    static func select(_ mask: SIMD8<UInt32>, _ ifSet: SIMD8<UInt32>, _ ifClear: SIMD8<UInt32>) -> SIMD8<UInt32> {
        (ifSet & mask) | (ifClear & ~mask)
    }

    @inline(__always)
    static func bits(_ x: SIMD8<Float>) -> SIMD8<UInt32> {
        unsafeBitCast(x, to: SIMD8<UInt32>.self)
    }

    @inline(__always)
    static func float(_ bits: SIMD8<UInt32>) -> SIMD8<Float> {
        unsafeBitCast(bits, to: SIMD8<Float>.self)
    }

    /// The full 64-bit products a * m per lane, split into high and low halves. The high halves come
    /// from even and odd lanes multiplied as 64-bit lanes with 32-bit operands (two vpmuludq); the low
    /// halves are the plain wrapping product.
    @inline(__always)
    static func multiplyFull(_ a: SIMD8<UInt32>, _ m: UInt32) -> (high: SIMD8<UInt32>, low: SIMD8<UInt32>) {
        let pairs = unsafeBitCast(a, to: SIMD4<UInt64>.self)
        let even = (pairs & 0xffff_ffff) &* UInt64(m)
        let odd = (pairs &>> 32) &* UInt64(m)
        let oddLanes = SIMD8<UInt32>(0, ~0, 0, ~0, 0, ~0, 0, ~0)
        let high = unsafeBitCast(even &>> 32, to: SIMD8<UInt32>.self) | (unsafeBitCast(odd, to: SIMD8<UInt32>.self) & oddLanes)
        return (high, a &* m)
    }

    /// Int32 -> Float per lane (vcvtdq2ps); the generic initializer stays an out-of-line call.
    @inline(__always)
    static func float(_ x: SIMD8<Int32>) -> SIMD8<Float> {
        SIMD8(Float(x[0]), Float(x[1]), Float(x[2]), Float(x[3]), Float(x[4]), Float(x[5]), Float(x[6]), Float(x[7]))
    }

    /// Zero-extends 16-bit lanes (vpmovzxwd).
    @inline(__always)
    static func widen(_ x: SIMD8<UInt16>) -> SIMD8<UInt32> {
        SIMD8(UInt32(x[0]), UInt32(x[1]), UInt32(x[2]), UInt32(x[3]), UInt32(x[4]), UInt32(x[5]), UInt32(x[6]), UInt32(x[7]))
    }

    /// Keeps the low 16 bits of each lane.
    @inline(__always)
    static func narrow(_ x: SIMD8<UInt32>) -> SIMD8<UInt16> {
        SIMD8(UInt16(truncatingIfNeeded: x[0]), UInt16(truncatingIfNeeded: x[1]),
              UInt16(truncatingIfNeeded: x[2]), UInt16(truncatingIfNeeded: x[3]),
              UInt16(truncatingIfNeeded: x[4]), UInt16(truncatingIfNeeded: x[5]),
              UInt16(truncatingIfNeeded: x[6]), UInt16(truncatingIfNeeded: x[7]))
    }
}
