#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// A keyframe's timestep shift x -> s·x / (1 + (s - 1)·x), applied to x before the
/// [sigma_min, sigma_max] mapping; s > 1 moves samples towards noise (SD3, Flux).
public enum Shift: Sendable, Equatable {
    /// A fixed s > 0.
    case fixed(Double)
    /// Flux's resolution-dependent shift: s = exp(mu), mu linear in the latent's token count.
    case sequenceLength(SequenceLengthShift)

    /// The shift for a batch of this latent shape ([batch, channels, spatial...]); without a
    /// shape, a sequence-length shift uses its base sequence length (s = exp(base_shift)).
    public func value(latentShape: [Int]?) -> Double {
        switch self {
        case let .fixed(s): s
        case let .sequenceLength(auto): auto.value(latentShape: latentShape)
        }
    }

    func check() throws(InvalidParameter) {
        switch self {
        case let .fixed(s):
            guard s.isFinite, s > 0 else { throw InvalidParameter(parameter: "shift", message: "must be > 0 and finite, got \(s)") }
        case let .sequenceLength(auto):
            try auto.check()
        }
    }
}

/// diffusers' `calculate_shift`: mu = base_shift + (max_shift - base_shift)·(L - base_seq_len) /
/// (max_seq_len - base_seq_len), extrapolated outside the two points; s = exp(mu). The token count
/// L is the product of the latent's spatial dims divided by the product of the patch, with the patch
/// aligned to the trailing dims (so [1, 2, 2] serves [B, C, T, H, W] videos and [B, C, H, W] images).
public struct SequenceLengthShift: Sendable, Equatable {
    public var baseShift: Double
    public var maxShift: Double
    public var baseSequenceLength: Double
    public var maxSequenceLength: Double
    public var patch: [Int]

    /// Flux's defaults.
    public init(baseShift: Double = 0.5, maxShift: Double = 1.15, baseSequenceLength: Double = 256,
                maxSequenceLength: Double = 4096, patch: [Int] = [1, 2, 2]) {
        self.baseShift = baseShift
        self.maxShift = maxShift
        self.baseSequenceLength = baseSequenceLength
        self.maxSequenceLength = maxSequenceLength
        self.patch = patch
    }

    /// The token count of a [batch, channels, spatial...] latent.
    public func sequenceLength(latentShape: [Int]) -> Double {
        let spatial = latentShape.dropFirst(2)
        var length = 1.0
        for (offset, dim) in spatial.reversed().enumerated() {
            let patchDim = offset < patch.count ? patch[patch.count - 1 - offset] : 1
            length *= Double(dim) / Double(patchDim)
        }
        return length
    }

    public func value(latentShape: [Int]?) -> Double {
        let length = latentShape.map(sequenceLength) ?? baseSequenceLength
        let slope = (maxShift - baseShift) / (maxSequenceLength - baseSequenceLength)
        return exp(baseShift + slope * (length - baseSequenceLength))
    }

    func check() throws(InvalidParameter) {
        guard baseShift.isFinite else { throw InvalidParameter(parameter: "shift.base_shift", message: "must be finite, got \(baseShift)") }
        guard maxShift.isFinite else { throw InvalidParameter(parameter: "shift.max_shift", message: "must be finite, got \(maxShift)") }
        guard baseSequenceLength.isFinite, baseSequenceLength >= 1 else {
            throw InvalidParameter(parameter: "shift.base_seq_len", message: "must be >= 1, got \(baseSequenceLength)")
        }
        guard maxSequenceLength.isFinite, maxSequenceLength > baseSequenceLength else {
            throw InvalidParameter(parameter: "shift.max_seq_len",
                                   message: "must be > base_seq_len (\(baseSequenceLength)), got \(maxSequenceLength)")
        }
        guard !patch.isEmpty else { throw InvalidParameter(parameter: "shift.patch", message: "must not be empty") }
        for (index, dim) in patch.enumerated() where dim < 1 {
            throw InvalidParameter(parameter: "shift.patch[\(index)]", message: "must be >= 1, got \(dim)")
        }
    }
}

/// x -> s·x / (1 + (s - 1)·x): increasing, fixing 0 and 1.
@inline(__always)
func shifted(_ x: Double, by s: Double) -> Double {
    s * x / (1 + (s - 1) * x)
}

/// The inverse of `shifted`: y -> y / (s - (s - 1)·y).
@inline(__always)
func unshifted(_ y: Double, by s: Double) -> Double {
    y / (s - (s - 1) * y)
}
