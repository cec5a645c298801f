/// One component of a resolved distribution: a keyframe's distribution under its shift.
public struct WeightedDistribution: Sendable, Equatable {
    public var weight: Double
    public var distribution: Distribution
    /// The shift s applied to x (1: none).
    public var shift: Double

    public init(weight: Double, distribution: Distribution, shift: Double = 1) {
        self.weight = weight
        self.distribution = distribution
        self.shift = shift
    }
}

extension WeightedDistribution {
    package func unitPDF(_ y: Double) -> Double {
        guard shift != 1 else { return distribution.unitPDF(y) }
        guard y >= 0, y <= 1 else { return 0 }
        let denominator = shift - (shift - 1) * y
        return distribution.unitPDF(unshifted(y, by: shift)) * shift / (denominator * denominator)
    }

    package func unitCDF(_ y: Double) -> Double {
        guard shift != 1 else { return distribution.unitCDF(y) }
        if y < 0 { return 0 }
        if y >= 1 { return 1 }
        return distribution.unitCDF(unshifted(y, by: shift))
    }

    package func unitQuantile(_ u: Double) -> Double {
        let x = distribution.unitQuantile(u)
        return shift == 1 ? x : min(shifted(x, by: shift), 1)
    }

    func unitMean() -> Double {
        guard shift != 1 else { return distribution.unitMean() }
        // Point masses move exactly; elsewhere E[Y] = ∫ (1 - F(y)) dy.
        if case let .discrete(values, weights) = distribution {
            return zip(values, weights).reduce(0) { $0 + shifted($1.0, by: shift) * $1.1 }
        }
        return integrate(from: 0, to: 1) { 1 - unitCDF($0) }
    }

    var atoms: [Double] {
        distribution.atoms.map { shifted($0, by: shift) }
    }
}

/// The distribution of sigma at one step: one component, or two while keyframes of different
/// families cross-fade, mapped linearly onto [sigmaMin, sigmaMax]. With sigmaMin == sigmaMax sigma
/// is that constant (a point mass).
public struct SigmaDistribution: Sendable, Equatable {
    public let sigmaMin: Double
    public let sigmaMax: Double
    /// Weights are positive and sum to 1.
    public let components: [WeightedDistribution]

    package init(sigmaMin: Double, sigmaMax: Double, components: [WeightedDistribution]) {
        self.sigmaMin = sigmaMin
        self.sigmaMax = sigmaMax
        self.components = components
    }

    private var range: Double { sigmaMax - sigmaMin }

    /// Density of sigma's continuous part (discrete point masses have none); +∞ where the density
    /// is unbounded, and at the value of a constant sigma.
    public func pdf(_ sigma: Double) -> Double {
        guard sigma >= sigmaMin, sigma <= sigmaMax else { return 0 }
        guard range > 0 else { return .infinity }
        return components.reduce(0) { $0 + $1.weight * $1.unitPDF((sigma - sigmaMin) / range) } / range
    }

    /// P(Sigma <= sigma).
    public func cdf(_ sigma: Double) -> Double {
        if sigma < sigmaMin { return 0 }
        if sigma >= sigmaMax { return 1 }
        let x = (sigma - sigmaMin) / range
        if components.count == 1 { return components[0].unitCDF(x) }
        // Clamped so rounding in the weighted sum cannot leave [0, 1].
        return min(max(components.reduce(0) { $0 + $1.weight * $1.unitCDF(x) }, 0), 1)
    }

    /// The sigma whose CDF first reaches u, for u in [0, 1]: the sampling map from one uniform.
    public func quantile(_ u: Double) -> Double {
        precondition(u >= 0 && u <= 1, "the uniform must be in [0, 1], got \(u)")
        let x = mixtureQuantile(u, components)
        // Clamped because sigmaMin + range * 1 can round one ulp past sigmaMax.
        return min(max(sigmaMin + range * x, sigmaMin), sigmaMax)
    }

    /// E[sigma].
    public var mean: Double {
        sigmaMin + range * components.reduce(0) { $0 + $1.weight * $1.unitMean() }
    }
}
