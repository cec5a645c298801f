import NoiseKernelCore
import Safetensors

/// The element types are the safetensors float dtypes latents may have; every other dtype is
/// passthrough only.
extension ElementType {
    public init?(_ dtype: DType) {
        switch dtype {
        case .F32: self = .f32
        case .F16: self = .f16
        case .BF16: self = .bf16
        default: return nil
        }
    }

    public var dtype: DType {
        switch self {
        case .f32: .F32
        case .f16: .F16
        case .bf16: .BF16
        }
    }

    /// Values rounded once to this type, as little-endian bytes.
    package static func encode(_ values: [Float], as type: ElementType) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: values.count * type.byteCount)
        out.withUnsafeMutableBytes { raw in
            for (i, v) in values.enumerated() { type.store(v, to: raw.baseAddress!, at: i) }
        }
        return out
    }

    /// Reads `count` values of this type from possibly unaligned bytes (one loop per type, so the
    /// tap can verify every element of large batches).
    package func decode(_ bytes: UnsafeRawBufferPointer, count: Int) -> [Float] {
        precondition(bytes.count >= count * byteCount, "decode: \(bytes.count) bytes for \(count) \(self) values")
        guard count > 0 else { return [] }
        let base = bytes.baseAddress!
        return [Float](unsafeUninitializedCapacity: count) { out, initialized in
            switch self {
            case .f32:
                for i in 0..<count {
                    out[i] = Float(bitPattern: UInt32(littleEndian: base.loadUnaligned(fromByteOffset: 4 * i, as: UInt32.self)))
                }
            case .f16:
                for i in 0..<count {
                    out[i] = Float(Float16(bitPattern: UInt16(littleEndian: base.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self))))
                }
            case .bf16:
                for i in 0..<count {
                    out[i] = Float(bitPattern: UInt32(UInt16(littleEndian: base.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self))) << 16)
                }
            }
            initialized = count
        }
    }
}
