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

    /// Reads element `index` of a buffer of this type as f32 (exact for every type). Raw memory:
    /// for the package only; users hand the kernel sized buffers (`NoiseBatch`).
    package func load(from base: UnsafeRawPointer, at index: Int) -> Float {
        switch self {
        case .f32: base.loadUnaligned(fromByteOffset: index * 4, as: Float.self)
        case .f16: Float(base.loadUnaligned(fromByteOffset: index * 2, as: Float16.self))
        case .bf16: BFloat16Bits.float(base.loadUnaligned(fromByteOffset: index * 2, as: UInt16.self))
        }
    }

    /// Writes `value` rounded to nearest even into element `index` of a buffer of this type.
    package func store(_ value: Float, to base: UnsafeMutableRawPointer, at index: Int) {
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
}
