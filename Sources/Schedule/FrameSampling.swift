/// σ per frame of a video latent (`schedule.frames`): which axis indexes frames, how the frames'
/// noise levels are drawn, and which frames stay clean as conditioning. Pure: the caller supplies
/// the uniforms (docs/noise-stream.md says which Philox counter gives each) and the quantile.
public struct FrameSampling: Sendable, Equatable {
    public enum Mode: String, Sendable, CaseIterable {
        /// One σ for the whole sample (today's behaviour; `sigma` stays [B] without conditioning).
        case same
        /// Each chunk of frames draws its own σ (diffusion forcing).
        case independent
        /// The chunks' draws sorted ascending over frames: later frames never less noisy.
        case sorted
    }

    /// One conditioning option: the first `first` and last `last` frames stay clean (σ = 0).
    public struct Condition: Sendable, Equatable {
        public var weight: Double
        public var first: Int
        public var last: Int

        public init(weight: Double, first: Int = 0, last: Int = 0) {
            (self.weight, self.first, self.last) = (weight, first, last)
        }

        var cleanFrames: Int { first + last }
    }

    public let axis: Int
    public let mode: Mode
    public let chunk: Int
    /// Empty: no conditioning, no `cond_mask`.
    public let conditions: [Condition]
    private let cumulativeWeights: [Double]

    /// Checks axis ≥ 1, chunk ≥ 1, weights finite and > 0, first and last ≥ 0.
    public init(axis: Int, mode: Mode = .independent, chunk: Int = 1, conditions: [Condition] = []) throws(FrameSamplingError) {
        guard axis >= 1 else { throw FrameSamplingError(parameter: "axis", message: "must be >= 1 (axis 0 is the batch), got \(axis)") }
        guard chunk >= 1 else { throw FrameSamplingError(parameter: "chunk", message: "must be >= 1, got \(chunk)") }
        for (index, condition) in conditions.enumerated() {
            guard condition.weight.isFinite, condition.weight > 0 else {
                throw FrameSamplingError(parameter: "condition[\(index)].weight", message: "must be > 0, got \(condition.weight)")
            }
            guard condition.first >= 0 else {
                throw FrameSamplingError(parameter: "condition[\(index)].first", message: "must be >= 0, got \(condition.first)")
            }
            guard condition.last >= 0 else {
                throw FrameSamplingError(parameter: "condition[\(index)].last", message: "must be >= 0, got \(condition.last)")
            }
        }
        (self.axis, self.mode, self.chunk, self.conditions) = (axis, mode, chunk, conditions)
        var total = 0.0
        cumulativeWeights = conditions.map { total += $0.weight; return total }
    }

    /// Whether `sigma` is [B, T] rather than [B].
    public var perFrame: Bool { mode != .same || !conditions.isEmpty }

    /// How many σ draws a sample of `frames` frames takes: one per chunk (one in mode `same`).
    public func draws(frames: Int) -> Int { mode == .same ? 1 : (frames + chunk - 1) / chunk }

    /// Why a latent of this shape cannot be noised frame by frame, or nil: the axis must exist and
    /// every conditioning option must leave at least one frame noised.
    public func problem(latentShape shape: [Int]) -> String? {
        guard axis < shape.count else {
            return "schedule.frames.axis \(axis) is outside the latents' shape \(shape) (\(shape.count) axes)"
        }
        let frames = shape[axis]
        if let (index, condition) = conditions.enumerated().first(where: { $0.element.cleanFrames >= frames }) {
            return "schedule.frames.condition[\(index)] keeps \(condition.first) first + \(condition.last) last frames clean, "
                + "but the latents \(shape) have \(frames) frames on axis \(axis)"
        }
        return nil
    }

    /// The option drawn by u in (0, 1): the first whose cumulative weight exceeds u · total.
    public func condition(_ u: Double) -> Condition? {
        guard let total = cumulativeWeights.last else { return nil }
        let target = u * total
        return conditions[cumulativeWeights.firstIndex { target < $0 } ?? conditions.count - 1]
    }

    /// One sample's σ (and weight, when given) per frame from its draws (one per chunk, in chunk
    /// order), with the conditioning frames at σ = 0 and weight 0; `clean` marks those frames.
    public func frameValues(draws: [(sigma: Float, weight: Float)], frames: Int, condition: Condition?)
        -> (sigmas: [Float], weights: [Float], clean: [Bool]) {
        var ordered = draws
        if mode == .sorted { ordered.sort { $0.sigma < $1.sigma } }
        var sigmas = [Float](), weights = [Float](), clean = [Bool]()
        sigmas.reserveCapacity(frames); weights.reserveCapacity(frames); clean.reserveCapacity(frames)
        for frame in 0..<frames {
            let draw = ordered[mode == .same ? 0 : frame / chunk]
            let isClean = condition.map { frame < $0.first || frame >= frames - $0.last } ?? false
            sigmas.append(isClean ? 0 : draw.sigma)
            weights.append(isClean ? 0 : draw.weight)
            clean.append(isClean)
        }
        return (sigmas, weights, clean)
    }
}

/// A `schedule.frames` parameter out of range; `parameter` is the key below `schedule.frames`.
public struct FrameSamplingError: Error, Equatable, CustomStringConvertible {
    public let parameter: String
    public let message: String

    public var description: String { "schedule.frames.\(parameter): \(message)" }
}
