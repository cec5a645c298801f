import Safetensors

/// Why a message was refused. The raw value is a stable snake_case label for metrics and logs.
public enum RejectReason: String, Sendable, CaseIterable {
    case truncated
    case headerTooLarge = "header_too_large"
    case badHeader = "bad_header"
    case badOffsets = "bad_offsets"
    case unknownDType = "unknown_dtype"
    case shapeMismatch = "shape_mismatch"
    case missingLatents = "missing_latents"
    case badLatentDType = "bad_latent_dtype"
    case emptyBatch = "empty_batch"
    /// More samples than `input.max_batch`: the per-sample work is bounded by it.
    case batchTooLarge = "batch_too_large"
    case badNoiseID = "bad_noise_id"
    case reservedName = "reserved_name"
    /// Detected by the daemon before parsing (frame larger than `input.max_message_bytes`).
    case messageTooLarge = "message_too_large"
    /// Detected by the noising kernel (a NaN or infinity in the latents).
    case nonfinite
    /// Detected by the daemon after drawing σ: a σ outside [0, 1] (NaN included) or a weight
    /// that is not finite.
    case nonfiniteSigma = "nonfinite_sigma"
    /// An acknowledged-input request that is not `[8-byte ticket, batch]`.
    case badEnvelope = "bad_envelope"
    /// Detected by the daemon: default noise ids for the batch would pass 2^48 and repeat.
    case idsExhausted = "ids_exhausted"
    /// The latents cannot be noised by `schedule.frames`: no such axis, or too few frames for a
    /// conditioning option.
    case badFrames = "bad_frames"
    /// With `input.posterior`: mean and logvar differ in shape or dtype.
    case posteriorMismatch = "posterior_mismatch"
    /// With `input.posterior`: a NaN or infinity in mean or logvar (the detail says which).
    case nonfinitePosterior = "nonfinite_posterior"

    /// The protocol-level reason for a safetensors format error.
    public init(_ kind: SafetensorsError.Kind) {
        switch kind {
        case .truncated: self = .truncated
        case .headerTooLarge: self = .headerTooLarge
        case .invalidHeader, .duplicateName: self = .badHeader
        case .unknownDType: self = .unknownDType
        case .invalidOffsets: self = .badOffsets
        case .shapeMismatch: self = .shapeMismatch
        }
    }
}

public struct ProtocolError: Error, Equatable, Sendable, CustomStringConvertible {
    public let reason: RejectReason
    /// What was wrong, naming the tensor or key at fault.
    public let detail: String

    public init(_ reason: RejectReason, _ detail: String) {
        self.reason = reason
        self.detail = detail
    }

    init(_ error: SafetensorsError) {
        self.init(RejectReason(error.kind), error.message)
    }

    public var description: String { "\(reason.rawValue): \(detail)" }
}
