import NoiseKernel
import Safetensors

/// The kernel's element types as safetensors dtypes, and whole-array conversions for the tools.
extension ElementType {
    init?(_ dtype: DType) {
        switch dtype {
        case .F32: self = .f32
        case .F16: self = .f16
        case .BF16: self = .bf16
        default: return nil
        }
    }

    var dtype: DType {
        switch self {
        case .f32: .F32
        case .f16: .F16
        case .bf16: .BF16
        }
    }
}

extension ElementType {
    /// Values rounded once to this type, as little-endian bytes.
    static func encode(_ values: [Float], as type: ElementType) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: values.count * type.byteCount)
        out.withUnsafeMutableBytes { raw in
            for (i, v) in values.enumerated() { type.store(v, to: raw.baseAddress!, at: i) }
        }
        return out
    }

    /// Reads `count` values of this type from possibly unaligned bytes.
    func decode(_ bytes: UnsafeRawBufferPointer, count: Int) -> [Float] {
        (0..<count).map { load(from: bytes.baseAddress!, at: $0) }
    }
}
