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
    /// Every shift has |log s| <= this, fixed or computed: the shifted CDF, density and quantile
    /// then stay finite for every x in [0, 1] (an unbounded exp(mu) overflows to s = inf and gives
    /// NaN), and no useful schedule needs more (s = e^10 puts almost all mass at sigma = 1).
    public static let maxLogShift = 10.0
    /// The fixed shifts allowed: e^-maxLogShift...e^maxLogShift.
    public static let range = exp(-maxLogShift)...exp(maxLogShift)

    /// A fixed s in `range`.
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

    /// `range` as error messages show it.
    static let rangeText = "e^-\(maxLogShift)...e^\(maxLogShift) (\(range.lowerBound)...\(range.upperBound))"

    func check() throws(InvalidParameter) {
        switch self {
        case let .fixed(s):
            guard Self.range.contains(s) else {
                throw InvalidParameter(parameter: "shift", message: "must be in \(Self.rangeText), got \(s)")
            }
        case let .sequenceLength(auto):
            try auto.check()
        }
    }
}

/// diffusers' `calculate_shift`: mu = base_shift + (max_shift - base_shift)·(L - base_seq_len) /
/// (max_seq_len - base_seq_len), extrapolated outside the two points, then clamped to
/// ±Shift.maxLogShift so that s = exp(mu) stays finite for any token count. The token count L
/// depends on the latent's `TokenLayout`.
public struct SequenceLengthShift: Sendable, Equatable {
    /// How a latent's shape gives its token count.
    public enum TokenLayout: String, Sendable, Equatable, CaseIterable {
        /// [batch, channels, spatial...]: L is the product of the spatial dims divided by the
        /// product of the patch, the patch aligned to the trailing dims (so [1, 2, 2] serves
        /// [B, C, T, H, W] videos and [B, C, H, W] images).
        case spatial
        /// [batch, tokens, features], patches already packed (Flux trainers send [B, 4096, 64]):
        /// L is the second dim; the patch does not apply.
        case packed
    }

    public var baseShift: Double
    public var maxShift: Double
    public var baseSequenceLength: Double
    public var maxSequenceLength: Double
    public var patch: [Int]
    public var layout: TokenLayout

    /// Flux's defaults.
    public init(baseShift: Double = 0.5, maxShift: Double = 1.15, baseSequenceLength: Double = 256,
                maxSequenceLength: Double = 4096, patch: [Int] = [1, 2, 2], layout: TokenLayout = .spatial) {
        self.baseShift = baseShift
        self.maxShift = maxShift
        self.baseSequenceLength = baseSequenceLength
        self.maxSequenceLength = maxSequenceLength
        self.patch = patch
        self.layout = layout
    }

    /// The token count of a latent of this shape, read as `layout` says.
    public func sequenceLength(latentShape: [Int]) -> Double {
        if layout == .packed { return Double(latentShape.count > 1 ? latentShape[1] : 1) }
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
        let mu = baseShift + slope * (length - baseSequenceLength)
        // NaN only from 0 * inf (equal shifts, an infinite token count): mu is then base_shift.
        let bound = Shift.maxLogShift
        return exp(mu.isNaN ? baseShift : Swift.min(Swift.max(mu, -bound), bound))
    }

    func check() throws(InvalidParameter) {
        let muRange = -Shift.maxLogShift...Shift.maxLogShift
        guard muRange.contains(baseShift) else {
            throw InvalidParameter(parameter: "shift.base_shift", message: "must be in \(muRange), got \(baseShift)")
        }
        guard muRange.contains(maxShift) else {
            throw InvalidParameter(parameter: "shift.max_shift", message: "must be in \(muRange), got \(maxShift)")
        }
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

/// x -> s·x / (1 + (s - 1)·x): increasing, fixing 0 and 1 (exactly: the formula can round
/// 1 to one ulp beside it). With s in Shift.range neither product nor quotient can overflow.
@inline(__always)
func shifted(_ x: Double, by s: Double) -> Double {
    x >= 1 ? 1 : s * x / (1 + (s - 1) * x)
}

/// The inverse of `shifted`: y -> y / (s - (s - 1)·y).
@inline(__always)
func unshifted(_ y: Double, by s: Double) -> Double {
    y / (s - (s - 1) * y)
}
