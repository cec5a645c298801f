/// The element types the kernel reads and writes. Arithmetic is always f32; each output value is
/// rounded once, to nearest even.
public enum ElementType: String, Sendable, CaseIterable {
    case f32, f16, bf16

    public var byteCount: Int {
        switch self {
        case .f32: 4
        case .f16, .bf16: 2
        }
    }

    /// Reads element `index` of a buffer of this type as f32 (exact for every type).
    public func load(from base: UnsafeRawPointer, at index: Int) -> Float {
        switch self {
        case .f32: base.loadUnaligned(fromByteOffset: index * 4, as: Float.self)
        case .f16: Float(base.loadUnaligned(fromByteOffset: index * 2, as: Float16.self))
        case .bf16: BFloat16Bits.float(base.loadUnaligned(fromByteOffset: index * 2, as: UInt16.self))
        }
    }

    /// Writes `value` rounded to nearest even into element `index` of a buffer of this type.
    public func store(_ value: Float, to base: UnsafeMutableRawPointer, at index: Int) {
        switch self {
        case .f32: base.storeBytes(of: value, toByteOffset: index * 4, as: Float.self)
        case .f16: base.storeBytes(of: Float16(value), toByteOffset: index * 2, as: Float16.self)
        case .bf16: base.storeBytes(of: BFloat16Bits.rounding(value), toByteOffset: index * 2, as: UInt16.self)
        }
    }

    /// `value` rounded to this type and widened back to f32.
    public func rounded(_ value: Float) -> Float {
        switch self {
        case .f32: value
        case .f16: Float(Float16(value))
        case .bf16: BFloat16Bits.float(BFloat16Bits.rounding(value))
        }
    }
}

/// bfloat16 as its 16-bit pattern (Swift has no bfloat16 type): the upper half of an f32.
public enum BFloat16Bits {
    /// Widens exactly.
    @inlinable public static func float(_ bits: UInt16) -> Float {
        Float(bitPattern: UInt32(bits) << 16)
    }

    /// Rounds to nearest even; overflow goes to infinity and NaN stays a (quiet) NaN.
    @inlinable public static func rounding(_ value: Float) -> UInt16 {
        let bits = value.bitPattern
        if bits & 0x7fff_ffff > 0x7f80_0000 { return UInt16(truncatingIfNeeded: bits >> 16) | 0x0040 }
        return UInt16(truncatingIfNeeded: (bits &+ 0x7fff &+ ((bits >> 16) & 1)) >> 16)
    }

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
    @inline(__always) static func load8(_ base: UnsafeRawPointer, _ index: Int) -> SIMD8<Float> {
        SIMD8<Float>(base.loadUnaligned(fromByteOffset: index &* 2, as: SIMD8<Float16>.self))
    }
    @inline(__always) static func store8(_ value: SIMD8<Float>, _ base: UnsafeMutableRawPointer, _ index: Int) {
        base.storeBytes(of: SIMD8<Float16>(value), toByteOffset: index &* 2, as: SIMD8<Float16>.self)
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
