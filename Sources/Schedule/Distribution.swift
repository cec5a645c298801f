/// A distribution of x on [0, 1], before any shift and before x is mapped into
/// [sigma_min, sigma_max]. docs/schedules.md gives each formula and its source.
public enum Distribution: Sendable, Equatable {
    /// x ~ U[0, 1] (Mochi 1's default).
    case uniform
    /// x = sigmoid(n), n ~ N(mean, std²) (SD3's logit-normal; mean > 0 favours noise).
    case logitNormal(mean: Double, std: Double)
    /// SD3's mode sampling with heavy tails: x = u(1 + s) - s·sin²(πu/2), u ~ U[0, 1], which is
    /// 1 - f(1 - u) for SD3's f(u) = 1 - u - s(cos²(πu/2) - 1 + u); valid for -1 <= s <= 2/(π - 2).
    case mode(scale: Double)
    /// SD3's CosMap: x = 1 - 1/(tan(πu/2) + 1), u ~ U[0, 1].
    case cosmap
    /// Beta(a, b).
    case beta(a: Double, b: Double)
    /// Point masses at `values` (x in [0, 1]) with probabilities proportional to `weights`.
    /// SigmaSchedule stores it sorted by value with weights summing to 1.
    case discrete(values: [Double], weights: [Double])
    /// A mixture; SigmaSchedule stores the weights summing to 1.
    case mixture([MixtureComponent])

    /// The name the configuration file uses for this distribution.
    public var name: String {
        switch self {
        case .uniform: "uniform"
        case .logitNormal: "logit_normal"
        case .mode: "mode"
        case .cosmap: "cosmap"
        case .beta: "beta"
        case .discrete: "discrete"
        case .mixture: "mixture"
        }
    }

    /// The largest valid mode scale, 2/(π - 2): beyond it the map from u to x stops being monotone.
    public static let maximumModeScale = 2 / (Double.pi - 2)
}

/// One weighted component of a `mixture` distribution.
public struct MixtureComponent: Sendable, Equatable {
    public var weight: Double
    public var distribution: Distribution

    public init(weight: Double, distribution: Distribution) {
        self.weight = weight
        self.distribution = distribution
    }
}

/// An invalid distribution parameter: its key below the keyframe (`std`, `components[1].weight`).
package struct InvalidParameter: Error {
    package let parameter: String
    package let message: String
}

extension Distribution {
    /// The distribution with its parameters checked and put in canonical form (discrete values
    /// sorted, weights normalised), or the first invalid parameter.
    package func canonical() throws(InvalidParameter) -> Distribution {
        switch self {
        case .uniform, .cosmap:
            return self
        case let .logitNormal(mean, std):
            guard mean.isFinite else { throw InvalidParameter(parameter: "mean", message: "must be finite, got \(mean)") }
            guard std.isFinite, std > 0 else {
                throw InvalidParameter(parameter: "std", message: "must be > 0 and finite, got \(std)")
            }
            return self
        case let .mode(scale):
            guard scale >= -1, scale <= Self.maximumModeScale else {
                throw InvalidParameter(parameter: "scale",
                                       message: "must be in [-1, 2/(pi - 2) = \(Self.maximumModeScale)], got \(scale)")
            }
            return self
        case let .beta(a, b):
            guard a.isFinite, a > 0 else { throw InvalidParameter(parameter: "a", message: "must be > 0 and finite, got \(a)") }
            guard b.isFinite, b > 0 else { throw InvalidParameter(parameter: "b", message: "must be > 0 and finite, got \(b)") }
            return self
        case let .discrete(values, weights):
            return try canonicalDiscrete(values: values, weights: weights)
        case let .mixture(components):
            guard !components.isEmpty else {
                throw InvalidParameter(parameter: "components", message: "must contain at least one component")
            }
            var canonicalComponents: [MixtureComponent] = []
            for (index, component) in components.enumerated() {
                guard component.weight.isFinite, component.weight > 0 else {
                    throw InvalidParameter(parameter: "components[\(index)].weight",
                                           message: "must be > 0 and finite, got \(component.weight)")
                }
                do {
                    canonicalComponents.append(
                        MixtureComponent(weight: component.weight, distribution: try component.distribution.canonical()))
                } catch {
                    throw InvalidParameter(parameter: "components[\(index)].\(error.parameter)", message: error.message)
                }
            }
            let total = canonicalComponents.reduce(0) { $0 + $1.weight }
            return .mixture(canonicalComponents.map { MixtureComponent(weight: $0.weight / total, distribution: $0.distribution) })
        }
    }

    private func canonicalDiscrete(values: [Double], weights: [Double]) throws(InvalidParameter) -> Distribution {
        guard !values.isEmpty else { throw InvalidParameter(parameter: "sigmas", message: "must contain at least one value") }
        guard weights.count == values.count else {
            throw InvalidParameter(parameter: "weights",
                                   message: "must have one weight per sigma (\(values.count)), got \(weights.count)")
        }
        for (index, value) in values.enumerated() where !(value >= 0 && value <= 1) {
            throw InvalidParameter(parameter: "sigmas[\(index)]", message: "must be in [0, 1], got \(value)")
        }
        for (index, weight) in weights.enumerated() where !(weight.isFinite && weight >= 0) {
            throw InvalidParameter(parameter: "weights[\(index)]", message: "must be >= 0 and finite, got \(weight)")
        }
        let total = weights.reduce(0, +)
        guard total > 0 else { throw InvalidParameter(parameter: "weights", message: "must not all be 0") }
        // Sorted, with repeated values merged, so the CDF is a running sum.
        var merged: [(value: Double, weight: Double)] = []
        for (value, weight) in zip(values, weights).sorted(by: { $0.0 < $1.0 }) where weight > 0 {
            if let last = merged.last, last.value == value {
                merged[merged.count - 1].weight += weight
            } else {
                merged.append((value, weight))
            }
        }
        return .discrete(values: merged.map(\.value), weights: merged.map { $0.weight / total })
    }

    /// The distribution whose parameters lie the fraction w of the way from self to `other`, or nil
    /// when the two are not the same family with the same structure (they then cross-fade).
    func interpolated(to other: Distribution, weight w: Double) -> Distribution? {
        func lerp(_ a: Double, _ b: Double) -> Double { a + w * (b - a) }
        switch (self, other) {
        case (.uniform, .uniform):
            return .uniform
        case (.cosmap, .cosmap):
            return .cosmap
        case let (.logitNormal(meanA, stdA), .logitNormal(meanB, stdB)):
            return .logitNormal(mean: lerp(meanA, meanB), std: lerp(stdA, stdB))
        case let (.mode(scaleA), .mode(scaleB)):
            return .mode(scale: lerp(scaleA, scaleB))
        case let (.beta(aA, bA), .beta(aB, bB)):
            return .beta(a: lerp(aA, aB), b: lerp(bA, bB))
        case let (.mixture(componentsA), .mixture(componentsB)) where componentsA.count == componentsB.count:
            var components: [MixtureComponent] = []
            for (a, b) in zip(componentsA, componentsB) {
                guard let distribution = a.distribution.interpolated(to: b.distribution, weight: w) else { return nil }
                components.append(MixtureComponent(weight: lerp(a.weight, b.weight), distribution: distribution))
            }
            return .mixture(components)
        default:
            // Discrete distributions cross-fade: on a shared support that is the same as
            // interpolating the weights, and on different supports it is the only sensible blend.
            return nil
        }
    }
}
