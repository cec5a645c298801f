/// One component of a resolved mixture.
public struct WeightedDistribution: Sendable, Equatable {
    public var weight: Double
    public var distribution: Distribution

    public init(weight: Double, distribution: Distribution) {
        self.weight = weight
        self.distribution = distribution
    }
}

/// The distribution of sigma at one step: a mixture of unit-interval distributions (one component
/// except while two keyframes of different kinds cross-fade) mapped linearly onto
/// [sigmaMin, sigmaMax]. With sigmaMin == sigmaMax sigma is that constant (a point mass).
public struct SigmaDistribution: Sendable, Equatable {
    public let sigmaMin: Double
    public let sigmaMax: Double
    /// Weights are positive and sum to 1.
    public let components: [WeightedDistribution]

    init(sigmaMin: Double, sigmaMax: Double, components: [WeightedDistribution]) {
        self.sigmaMin = sigmaMin
        self.sigmaMax = sigmaMax
        self.components = components
    }

    private var range: Double { sigmaMax - sigmaMin }

    /// Density of sigma; for a constant sigma, +∞ at that value and 0 elsewhere.
    public func pdf(_ sigma: Double) -> Double {
        guard sigma >= sigmaMin, sigma <= sigmaMax else { return 0 }
        guard range > 0 else { return .infinity }
        return unitPDF((sigma - sigmaMin) / range) / range
    }

    /// P(Sigma <= sigma).
    public func cdf(_ sigma: Double) -> Double {
        if sigma < sigmaMin { return 0 }
        if sigma >= sigmaMax { return 1 }
        return unitCDF((sigma - sigmaMin) / range)
    }

    /// The sigma whose CDF is u, for u in [0, 1]: the sampling map from one uniform to sigma.
    public func quantile(_ u: Double) -> Double {
        precondition(u >= 0 && u <= 1, "the uniform must be in [0, 1], got \(u)")
        // Clamped because sigmaMin + range * 1 can round one ulp past sigmaMax.
        return min(max(sigmaMin + range * unitQuantile(u), sigmaMin), sigmaMax)
    }

    /// E[sigma].
    public var mean: Double {
        let unitMean = components.reduce(0) { $0 + $1.weight * $1.distribution.unitMean() }
        return sigmaMin + range * unitMean
    }

    func unitPDF(_ x: Double) -> Double {
        components.reduce(0) { $0 + $1.weight * $1.distribution.unitPDF(x) }
    }

    func unitCDF(_ x: Double) -> Double {
        if components.count == 1 { return components[0].distribution.unitCDF(x) }
        // Clamped so rounding in the weighted sum cannot leave [0, 1].
        return min(max(components.reduce(0) { $0 + $1.weight * $1.distribution.unitCDF(x) }, 0), 1)
    }

    /// The mixture quantile from the same single uniform: a safeguarded Newton iteration on the exact
    /// mixture CDF. The mixture CDF at u lies between the components' quantiles at u, which gives
    /// the starting bracket.
    func unitQuantile(_ u: Double) -> Double {
        if components.count == 1 { return components[0].distribution.unitQuantile(u) }
        var lo = 1.0, hi = 0.0, x = 0.0
        for component in components {
            let q = component.distribution.unitQuantile(u)
            lo = min(lo, q)
            hi = max(hi, q)
            x += component.weight * q
        }
        x = min(max(x, lo), hi)
        let tolerance = 1e-14
        for _ in 0..<200 {
            if hi - lo <= tolerance { break }
            let excess = unitCDF(x) - u
            if excess == 0 { return x }
            if excess < 0 { lo = x } else { hi = x }
            let density = unitPDF(x)
            let newton = x - excess / density
            let next = density > 0 && newton > lo && newton < hi ? newton : (lo + hi) / 2
            if abs(next - x) <= tolerance { return next }
            x = next
        }
        return (lo + hi) / 2
    }
}
