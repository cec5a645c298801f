#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// How the distribution moves between two consecutive keyframes.
public enum Interpolation: String, Sendable, CaseIterable {
    /// w = t.
    case linear
    /// w = (1 - cos(πt)) / 2: slow near both keyframes, fastest halfway.
    case cosine
    /// w = 0: each keyframe holds until the next one starts.
    case hold

    /// The weight of the later keyframe at fraction t in [0, 1] of the way between two keyframes.
    public func weight(_ t: Double) -> Double {
        switch self {
        case .linear: t
        case .cosine: (1 - cos(Double.pi * t)) / 2
        case .hold: 0
        }
    }
}

/// The distribution that applies from `atStep` on (until the next keyframe takes over).
public struct Keyframe: Sendable, Equatable {
    public var atStep: Int64
    public var distribution: Distribution
    /// Applied to x before the sigma range mapping; nil for none.
    public var shift: Shift?

    public init(atStep: Int64, distribution: Distribution, shift: Shift? = nil) {
        self.atStep = atStep
        self.distribution = distribution
        self.shift = shift
    }
}

/// An invalid schedule parameter, named by its configuration key.
public struct ScheduleError: Error, CustomStringConvertible, Equatable {
    /// The offending keyframe's index in the curriculum, or nil for a schedule-level parameter.
    public let keyframeIndex: Int?
    /// The configuration key: sigma_min, sigma_max, curriculum, at_step, std, components[0].weight,
    /// shift.max_seq_len...
    public let parameter: String
    public let message: String

    public init(keyframeIndex: Int?, parameter: String, message: String) {
        self.keyframeIndex = keyframeIndex
        self.parameter = parameter
        self.message = message
    }

    /// The key path below `schedule`, e.g. `curriculum[1].std`.
    public var keyPath: String {
        keyframeIndex.map { "curriculum[\($0)].\(parameter)" } ?? parameter
    }

    public var description: String { "\(keyPath): \(message)" }
}

/// The sigma curriculum: keyframed distributions over training steps, mapped into
/// [sigmaMin, sigmaMax]. Sampling is by inverse CDF of one caller-given uniform, so a sample is a
/// pure function of (uniform, step).
public struct SigmaSchedule: Sendable, Equatable {
    public let sigmaMin: Double
    public let sigmaMax: Double
    public let interpolation: Interpolation
    public let keyframes: [Keyframe]

    /// Validates 0 <= sigmaMin <= sigmaMax <= 1, a non-empty curriculum with at_step >= 0 and
    /// strictly increasing, and each distribution's and shift's parameters. Keyframes are stored in
    /// canonical form (discrete values sorted, weights normalised).
    public init(
        sigmaMin: Double, sigmaMax: Double, interpolation: Interpolation, keyframes: [Keyframe]
    ) throws(ScheduleError) {
        guard sigmaMin >= 0, sigmaMin <= 1 else {
            throw ScheduleError(keyframeIndex: nil, parameter: "sigma_min",
                                message: "must be in [0, 1], got \(sigmaMin)")
        }
        guard sigmaMax >= 0, sigmaMax <= 1 else {
            throw ScheduleError(keyframeIndex: nil, parameter: "sigma_max",
                                message: "must be in [0, 1], got \(sigmaMax)")
        }
        guard sigmaMin <= sigmaMax else {
            throw ScheduleError(keyframeIndex: nil, parameter: "sigma_max",
                                message: "must be >= sigma_min (\(sigmaMin)), got \(sigmaMax)")
        }
        guard !keyframes.isEmpty else {
            throw ScheduleError(keyframeIndex: nil, parameter: "curriculum",
                                message: "must contain at least one keyframe")
        }
        var canonicalKeyframes: [Keyframe] = []
        for (index, keyframe) in keyframes.enumerated() {
            if index == 0, keyframe.atStep < 0 {
                throw ScheduleError(keyframeIndex: index, parameter: "at_step",
                                    message: "must be >= 0, got \(keyframe.atStep)")
            }
            if index > 0, keyframe.atStep <= keyframes[index - 1].atStep {
                throw ScheduleError(
                    keyframeIndex: index, parameter: "at_step",
                    message: "must be greater than the previous keyframe's at_step "
                        + "(\(keyframes[index - 1].atStep)), got \(keyframe.atStep)")
            }
            do {
                try keyframe.shift?.check()
                canonicalKeyframes.append(
                    Keyframe(atStep: keyframe.atStep, distribution: try keyframe.distribution.canonical(), shift: keyframe.shift))
            } catch {
                throw ScheduleError(keyframeIndex: index, parameter: error.parameter, message: error.message)
            }
        }
        self.sigmaMin = sigmaMin
        self.sigmaMax = sigmaMax
        self.interpolation = interpolation
        self.keyframes = canonicalKeyframes
    }

    /// Whether a keyframe's shift depends on the latent shape (pass it to `sigma`).
    public var usesLatentShape: Bool {
        keyframes.contains { if case .sequenceLength = $0.shift { true } else { false } }
    }

    /// What each shape-dependent keyframe makes of latents of this shape: the token count it reads
    /// and the shift that gives, so an operator can check the layout (for the log).
    public func sequenceLengthShifts(latentShape: [Int]) -> [(atStep: Int64, tokens: Double, shift: Double)] {
        keyframes.compactMap { keyframe in
            guard case let .sequenceLength(auto) = keyframe.shift else { return nil }
            return (keyframe.atStep, auto.sequenceLength(latentShape: latentShape), auto.value(latentShape: latentShape))
        }
    }

    /// The distribution in force at `step` for latents of `latentShape` ([batch, channels,
    /// spatial...]; nil: shape-dependent shifts use their base sequence length). Before the first
    /// keyframe the first holds, after the last the last; between keyframes a and b the weight w of
    /// b follows `interpolation`: parameters (and shifts) interpolate when a and b are the same
    /// family with the same structure, and the densities cross-fade otherwise.
    public func distribution(atStep step: Int64, latentShape: [Int]? = nil) -> SigmaDistribution {
        // The last keyframe at or before `step` (the first one if none is).
        var low = 0, high = keyframes.count - 1
        while low < high {
            let middle = (low + high + 1) / 2
            if keyframes[middle].atStep <= step { low = middle } else { high = middle - 1 }
        }
        let a = keyframes[low]
        let shiftA = a.shift?.value(latentShape: latentShape) ?? 1
        guard step > a.atStep, low + 1 < keyframes.count else { return resolved(a.distribution, shiftA) }
        let b = keyframes[low + 1]
        let shiftB = b.shift?.value(latentShape: latentShape) ?? 1
        let t = Double(step - a.atStep) / Double(b.atStep - a.atStep)
        let w = interpolation.weight(t)
        if w <= 0 { return resolved(a.distribution, shiftA) }
        if w >= 1 { return resolved(b.distribution, shiftB) }
        if let between = a.distribution.interpolated(to: b.distribution, weight: w) {
            return resolved(between, shiftA + w * (shiftB - shiftA))
        }
        return SigmaDistribution(
            sigmaMin: sigmaMin, sigmaMax: sigmaMax,
            components: [WeightedDistribution(weight: 1 - w, distribution: a.distribution, shift: shiftA),
                         WeightedDistribution(weight: w, distribution: b.distribution, shift: shiftB)])
    }

    /// The sigma for uniform u in [0, 1] at `step`: `distribution(atStep: step).quantile(u)`.
    public func sigma(uniform u: Double, step: Int64) -> Double {
        distribution(atStep: step).quantile(u)
    }

    /// The sigma for uniform u at `step`, for a batch of latents shaped `latentShape`.
    public func sigma(uniform u: Double, step: Int64, latentShape: [Int]) -> Double {
        distribution(atStep: step, latentShape: latentShape).quantile(u)
    }

    private func resolved(_ distribution: Distribution, _ shift: Double) -> SigmaDistribution {
        SigmaDistribution(sigmaMin: sigmaMin, sigmaMax: sigmaMax,
                          components: [WeightedDistribution(weight: 1, distribution: distribution, shift: shift)])
    }
}
