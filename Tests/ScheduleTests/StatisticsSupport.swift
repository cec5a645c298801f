import Foundation
import NoisedTestSupport

extension SplitMix64 {
    /// N(0, 1) by Box–Muller: a sampler that shares no code with the library's inverse CDF.
    mutating func normal() -> Double {
        let radius = (-2 * log(uniform())).squareRoot()
        return radius * cos(2 * Double.pi * uniform())
    }
}

/// The one-sample Kolmogorov–Smirnov test of `samples` against `cdf`.
struct KolmogorovSmirnov {
    let statistic: Double
    let pValue: Double

    init(_ samples: [Double], cdf: (Double) -> Double) {
        let sorted = samples.sorted()
        let n = Double(sorted.count)
        var d = 0.0
        for (i, x) in sorted.enumerated() {
            let f = cdf(x)
            d = max(d, f - Double(i) / n, Double(i + 1) / n - f)
        }
        statistic = d
        // The asymptotic Kolmogorov distribution with Stephens' small-sample correction.
        let lambda = (n.squareRoot() + 0.12 + 0.11 / n.squareRoot()) * d
        var sum = 0.0
        for k in 1...100 {
            let term = exp(-2 * Double(k * k) * lambda * lambda)
            sum += (k % 2 == 1 ? 2 : -2) * term
            if term < 1e-16 { break }
        }
        pValue = min(max(sum, 0), 1)
    }
}

func logisticSigmoid(_ y: Double) -> Double { 1 / (1 + exp(-y)) }

/// The normal CDF written independently of the library (for reference CDFs in tests).
func normalCDF(_ z: Double) -> Double { 0.5 * erfc(-z / 2.0.squareRoot()) }

/// The logit-normal CDF on [0, 1], computed directly from its definition.
func logitNormalCDF(_ x: Double, mean: Double, std: Double) -> Double {
    if x <= 0 { return 0 }
    if x >= 1 { return 1 }
    return normalCDF((log(x / (1 - x)) - mean) / std)
}
