import Foundation

enum Statistics {
    static func moments(_ x: [Float]) -> (mean: Double, variance: Double, skew: Double, excessKurtosis: Double) {
        let n = Double(x.count)
        let mean = x.reduce(0.0) { $0 + Double($1) } / n
        var m2 = 0.0, m3 = 0.0, m4 = 0.0
        for value in x {
            let d = Double(value) - mean
            m2 += d * d
            m3 += d * d * d
            m4 += d * d * d * d
        }
        m2 /= n
        m3 /= n
        m4 /= n
        return (mean, m2, m3 / pow(m2, 1.5), m4 / (m2 * m2) - 3)
    }

    /// Kolmogorov-Smirnov statistic D of the sample against `cdf`.
    static func ksStatistic(_ x: [Double], cdf: (Double) -> Double) -> Double {
        let sorted = x.sorted()
        let n = Double(sorted.count)
        var d = 0.0
        for (i, value) in sorted.enumerated() {
            let f = cdf(value)
            d = max(d, f - Double(i) / n, Double(i + 1) / n - f)
        }
        return d
    }

    static func normalCDF(_ x: Double) -> Double { 0.5 * erfc(-x / 2.0.squareRoot()) }

    static func correlation(_ a: [Double], _ b: [Double]) -> Double {
        let n = Double(a.count)
        let meanA = a.reduce(0, +) / n, meanB = b.reduce(0, +) / n
        var sab = 0.0, saa = 0.0, sbb = 0.0
        for i in a.indices {
            let da = a[i] - meanA, db = b[i] - meanB
            sab += da * db
            saa += da * da
            sbb += db * db
        }
        return sab / (saa * sbb).squareRoot()
    }
}
