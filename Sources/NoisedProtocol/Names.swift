import Safetensors

/// Tensor names and metadata keys of wire protocol v1.
public enum WireNames {
    public static let protocolVersion = "1"

    public static let noisedLatents = "z_t"
    public static let noise = "eps"
    public static let sigma = "sigma"
    public static let cleanLatents = "z_0"
    public static let weight = "weight"
    public static let noiseID = "noise_id"

    /// Names an input must not use because the output defines them (`noise_id` is consumed instead).
    public static let reservedInputNames: Set<String> = [noisedLatents, noise, sigma, cleanLatents, weight]

    public static let stepKey = "noised.step"
    public static let seqKey = "noised.seq"
    public static let seedKey = "noised.seed"
    public static let protocolKey = "noised.protocol"

    /// Default noise ids are `(instance << 48) | n`: each instance has this many before they would repeat.
    public static let defaultIDsPerInstance: UInt64 = 1 << 48
}

/// The float types latents (and the noised output) may have.
public enum LatentType: String, Sendable, CaseIterable {
    case f32, f16, bf16

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
}

/// The config's `output.dtype`: the latents' own type or a fixed one.
public enum OutputDType: String, Sendable, CaseIterable {
    case input, f32, f16, bf16

    public func resolved(for input: LatentType) -> LatentType {
        switch self {
        case .input: input
        case .f32: .f32
        case .f16: .f16
        case .bf16: .bf16
        }
    }
}
