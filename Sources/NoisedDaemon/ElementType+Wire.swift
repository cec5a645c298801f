import NoiseKernel
import NoisedProtocol
import Safetensors

/// The protocol's latent types are exactly the kernel's element types.
extension ElementType {
    init(_ latent: LatentType) { self.init(rawValue: latent.rawValue)! }

    init?(_ dtype: DType) {
        guard let latent = LatentType(dtype) else { return nil }
        self.init(latent)
    }

    var dtype: DType { LatentType(rawValue: rawValue)!.dtype }

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
