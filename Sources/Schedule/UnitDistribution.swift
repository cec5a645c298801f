#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

// Each distribution on x in [0, 1] (and WeightedDistribution, its shifted form) provides:
// unitPDF, the density of the continuous part (point masses have none; +∞ where unbounded);
// unitCDF; unitQuantile(u), the smallest x with unitCDF(x) >= u; unitMean; and atoms, the x values
// of its point masses, ascending.

extension Distribution {
    package func unitPDF(_ x: Double) -> Double {
        guard x >= 0, x <= 1 else { return 0 }
        switch self {
        case .uniform:
            return 1
        case let .logitNormal(mean, std):
            // The density tends to 0 at both ends.
            guard x > 0, x < 1 else { return 0 }
            return StandardNormal.pdf((logit(x) - mean) / std) / (std * x * (1 - x))
        case let .mode(scale):
            return 1 / modeSlope(scale, unitCDF(x))
        case .cosmap:
            return 2 / (Double.pi * (1 - 2 * x + 2 * x * x))
        case let .beta(a, b):
            if x == 0 { return a < 1 ? .infinity : a == 1 ? b : 0 }
            if x == 1 { return b < 1 ? .infinity : b == 1 ? a : 0 }
            return exp((a - 1) * log(x) + (b - 1) * log1p(-x) - logBeta(a, b))
        case .discrete:
            return 0
        case let .mixture(components):
            return components.reduce(0) { $0 + $1.weight * $1.distribution.unitPDF(x) }
        }
    }

    package func unitCDF(_ x: Double) -> Double {
        if x < 0 { return 0 }
        if x >= 1 { return 1 }
        switch self {
        case .uniform:
            return x
        case let .logitNormal(mean, std):
            return x == 0 ? 0 : StandardNormal.cdf((logit(x) - mean) / std)
        case let .mode(scale):
            // x = g(u) has no closed-form inverse; g is increasing with g(0) = 0, g(1) = 1.
            return solveIncreasing(x, lo: 0, hi: 1, start: x, { modeMap(scale, $0) }, slope: { modeSlope(scale, $0) }).root
        case .cosmap:
            return 2 / Double.pi * atan2(x, 1 - x)
        case let .beta(a, b):
            return regularizedIncompleteBeta(x, a, b)
        case let .discrete(values, weights):
            var total = 0.0
            for (value, weight) in zip(values, weights) where value <= x { total += weight }
            return min(total, 1)
        case let .mixture(components):
            return min(max(components.reduce(0) { $0 + $1.weight * $1.distribution.unitCDF(x) }, 0), 1)
        }
    }

    package func unitQuantile(_ u: Double) -> Double {
        switch self {
        case .uniform:
            return u
        case let .logitNormal(mean, std):
            return sigmoid(mean + std * StandardNormal.quantile(u))
        case let .mode(scale):
            return min(max(modeMap(scale, u), 0), 1)
        case .cosmap:
            // tan θ / (tan θ + 1) written without tan, which overflows at θ = π/2.
            let angle = Double.pi / 2 * u
            return min(sin(angle) / (sin(angle) + cos(angle)), 1)
        case let .beta(a, b):
            if u <= 0 { return 0 }
            if u >= 1 { return 1 }
            return solveIncreasing(u, lo: 0, hi: 1, start: a / (a + b),
                                   { regularizedIncompleteBeta($0, a, b) }, slope: unitPDF).root
        case let .discrete(values, weights):
            var total = 0.0
            for (value, weight) in zip(values, weights) {
                total += weight
                if total >= u { return value }
            }
            // Rounding can leave the total a little below 1.
            return values[values.count - 1]
        case let .mixture(components):
            return mixtureQuantile(u, components.map { WeightedDistribution(weight: $0.weight, distribution: $0.distribution) })
        }
    }

    func unitMean() -> Double {
        switch self {
        case .uniform, .cosmap, .mode:
            // Mode and CosMap densities are symmetric about 1/2.
            return 0.5
        case let .logitNormal(mean, std):
            // No closed form: integrate sigmoid(mean + std z) φ(z); φ(12) ≈ 1e-32 bounds the tails.
            return integrate(from: -12, to: 12) { z in sigmoid(mean + std * z) * StandardNormal.pdf(z) }
        case let .beta(a, b):
            return a / (a + b)
        case let .discrete(values, weights):
            return zip(values, weights).reduce(0) { $0 + $1.0 * $1.1 }
        case let .mixture(components):
            return components.reduce(0) { $0 + $1.weight * $1.distribution.unitMean() }
        }
    }

    var atoms: [Double] {
        switch self {
        case let .discrete(values, _): values
        case let .mixture(components): Array(Set(components.flatMap(\.distribution.atoms))).sorted()
        default: []
        }
    }
}

/// SD3 mode sampling as an increasing map of u: g(u) = u(1 + s) - s·sin²(πu/2).
private func modeMap(_ scale: Double, _ u: Double) -> Double {
    let sine = sin(Double.pi / 2 * u)
    return u * (1 + scale) - scale * sine * sine
}

private func modeSlope(_ scale: Double, _ u: Double) -> Double {
    1 + scale - scale * Double.pi / 2 * sin(Double.pi * u)
}

/// The quantile of the mixture Σ wᵢ·partᵢ from one uniform: Newton with bisection on the exact
/// mixture CDF. The root lies between the parts' own quantiles at u, which bracket it. (Concrete
/// types and plain loops: this runs per sample, and generic code here cost microseconds.)
func mixtureQuantile(_ u: Double, _ parts: [WeightedDistribution]) -> Double {
    if parts.count == 1 { return parts[0].unitQuantile(u) }
    var lo = 1.0, hi = 0.0, start = 0.0
    for part in parts {
        let q = part.unitQuantile(u)
        lo = min(lo, q)
        hi = max(hi, q)
        start += part.weight * q
    }
    let solution = solveIncreasing(u, lo: lo, hi: hi, start: start, { x in
        var total = 0.0
        for part in parts { total += part.weight * part.unitCDF(x) }
        return total
    }, slope: { x in
        var total = 0.0
        for part in parts { total += part.weight * part.unitPDF(x) }
        return total
    })
    // Where the root is a jump of the CDF, return the point mass itself, not a point 1e-14 away.
    let tolerance = 1e-13
    for part in parts {
        for atom in part.atoms where atom >= solution.lo - tolerance && atom <= solution.hi + tolerance {
            return atom
        }
    }
    return solution.root
}
