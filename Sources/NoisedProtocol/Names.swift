import NoiseKernelCore

/// Tensor names and metadata keys of wire protocol v1.
public enum WireNames {
    public static let protocolVersion = "1"

    public static let noisedLatents = "z_t"
    public static let noise = "eps"
    public static let sigma = "sigma"
    public static let cleanLatents = "z_0"
    public static let weight = "weight"
    public static let noiseID = "noise_id"
    public static let condMask = "cond_mask"

    /// Names an input must not use because the output defines them (`noise_id` is consumed instead).
    public static let reservedInputNames: Set<String> = [noisedLatents, noise, sigma, cleanLatents, weight, condMask]

    public static let stepKey = "noised.step"
    public static let seqKey = "noised.seq"
    public static let seedKey = "noised.seed"
    public static let protocolKey = "noised.protocol"
    /// With σ per frame: the latent axis `sigma`'s second dimension runs along.
    public static let frameAxisKey = "noised.frame_axis"
    /// With several outputs: the name of the output that sent the message.
    public static let outputKey = "noised.output"

    /// Output k of a fan-out sends the noise ids of its input with k in the top four bits
    /// (`id ^ k << 60`), so two outputs never noise one sample with the same ε; output 0 keeps them.
    public static func noiseID(_ id: UInt64, ofOutput index: Int) -> UInt64 { id ^ (UInt64(index) << 60) }

    /// Default noise ids are `(instance << 48) | n`: each instance has this many before they would repeat.
    public static let defaultIDsPerInstance: UInt64 = 1 << 48
}

/// The config's `output.dtype`: the latents' own type, or one element type for every batch.
/// Spelled `input` or an `ElementType` name, so the dtype vocabulary stays `ElementType`'s.
public enum OutputDType: Sendable, Hashable, CaseIterable, RawRepresentable {
    case input
    case fixed(ElementType)

    public static var allCases: [OutputDType] { [.input] + ElementType.allCases.map(OutputDType.fixed) }

    public init?(rawValue: String) {
        if rawValue == "input" {
            self = .input
        } else if let type = ElementType(rawValue: rawValue) {
            self = .fixed(type)
        } else {
            return nil
        }
    }

    public var rawValue: String {
        switch self {
        case .input: "input"
        case let .fixed(type): type.rawValue
        }
    }

    public func resolved(for input: ElementType) -> ElementType {
        switch self {
        case .input: input
        case let .fixed(type): type
        }
    }
}
