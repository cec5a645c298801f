import XCTest
import Schedule
import NoisedTestSupport

/// Mode, CosMap, beta, discrete and mixture distributions on x in [0, 1].
final class DistributionFamiliesTests: XCTestCase {
    private let sampleCount = 20_000
    private let significance = 1e-4

    private func one(_ distribution: Distribution, shift: Double = 1) throws -> SigmaDistribution {
        SigmaDistribution(sigmaMin: 0, sigmaMax: 1,
                          components: [WeightedDistribution(weight: 1, distribution: try distribution.canonical(), shift: shift)])
    }

    private func assertFits(_ samples: [Double], _ cdf: (Double) -> Double, _ message: String,
                            file: StaticString = #filePath, line: UInt = #line) {
        let test = KolmogorovSmirnov(samples, cdf: cdf)
        XCTAssertGreaterThanOrEqual(test.pValue, significance, "\(message): D = \(test.statistic)", file: file, line: line)
    }

    func testBetaMatchesHighPrecisionReference() throws {
        // I_x(a, b) from mpmath at 40 digits; quantiles from scipy.stats.beta.ppf.
        let cdfs: [(a: Double, b: Double, x: Double, p: Double)] = [
            (2, 2, 0.3, 0.21599999999999998601), (0.5, 0.5, 0.01, 0.063768560858519848583),
            (0.5, 0.5, 0.99, 0.93623143914148012367), (5, 1.5, 0.8, 0.50556064881524661244),
            (30, 40, 0.45, 0.64474800855856811281), (0.2, 3, 1e-06, 0.083286341709269910947),
            (2, 5, 0.999, 0.999999999999994005),
        ]
        for (a, b, x, p) in cdfs {
            XCTAssertEqual(Distribution.beta(a: a, b: b).unitCDF(x), p, accuracy: 1e-14, "I_\(x)(\(a), \(b))")
        }
        let quantiles: [(a: Double, b: Double, u: Double, x: Double)] = [
            (2, 2, 0.3, 0.36325749109056765), (0.5, 0.5, 0.01, 0.00024671981713422146),
            (5, 1.5, 0.8, 0.9085109376312829), (30, 40, 0.45, 0.42044118191878316), (0.2, 3, 0.5, 0.007901229090864218),
        ]
        for (a, b, u, x) in quantiles {
            XCTAssertEqual(Distribution.beta(a: a, b: b).unitQuantile(u), x, accuracy: 1e-12 * max(x, 1e-3), "beta(\(a), \(b)) at \(u)")
        }
        XCTAssertEqual(Distribution.beta(a: 0.5, b: 2).unitPDF(0), .infinity)
        XCTAssertEqual(Distribution.beta(a: 1, b: 3).unitPDF(0), 3)
        XCTAssertEqual(Distribution.beta(a: 2, b: 3).unitPDF(1), 0)
        XCTAssertEqual(try one(.beta(a: 2, b: 6)).mean, 0.25, accuracy: 1e-15)
    }

    /// Beta(2, 3) is the 2nd smallest of 4 uniforms: a sampler sharing nothing with the library.
    func testBetaFitsOrderStatistics() throws {
        let distribution = try one(.beta(a: 2, b: 3))
        var generator = SplitMix64(seed: 11)
        let samples = (0..<sampleCount).map { _ in (0..<4).map { _ in generator.uniform() }.sorted()[1] }
        assertFits(samples, distribution.cdf, "order statistics vs beta(2, 3) CDF")
        var uniforms = SplitMix64(seed: 12)
        assertFits((0..<sampleCount).map { _ in distribution.quantile(uniforms.uniform()) },
                   { x in x * x * (6 - 8 * x + 3 * x * x) }, "beta(2, 3) quantile vs closed-form CDF")
    }

    /// SD3's mode formula as published, f(u) = 1 - u - s(cos²(πu/2) - 1 + u), simulated directly.
    func testModeFitsThePublishedFormula() throws {
        for scale in [1.29, -0.8, Distribution.maximumModeScale, -1] {
            let distribution = try one(.mode(scale: scale))
            var generator = SplitMix64(seed: 21)
            let samples = (0..<sampleCount).map { _ -> Double in
                let u = generator.uniform(), c = cos(Double.pi * u / 2)
                return 1 - u - scale * (c * c - 1 + u)
            }
            assertFits(samples, distribution.cdf, "mode(\(scale))")
            XCTAssertEqual(distribution.mean, 0.5)
        }
        XCTAssertEqual(try one(.mode(scale: 0)).quantile(0.3), 0.3, accuracy: 1e-15, "scale 0 is uniform")
    }

    /// SD3's CosMap, x = 1 - 1/(tan(πu/2) + 1), and its published density 2/(π - 2πt + 2πt²).
    func testCosMapFitsThePublishedFormula() throws {
        let distribution = try one(.cosmap)
        var generator = SplitMix64(seed: 31)
        let samples = (0..<sampleCount).map { _ in 1 - 1 / (tan(Double.pi * generator.uniform() / 2) + 1) }
        assertFits(samples, distribution.cdf, "cosmap")
        for t in [0.0, 0.1, 0.5, 0.93, 1] {
            XCTAssertEqual(distribution.pdf(t), 2 / (Double.pi - 2 * Double.pi * t + 2 * Double.pi * t * t), accuracy: 1e-14)
        }
        XCTAssertEqual(distribution.quantile(1), 1)
        XCTAssertEqual(distribution.quantile(0), 0)
    }

    func testDiscreteIsCanonicalAndExact() throws {
        let distribution = Distribution.discrete(values: [0.9, 0.1, 0.5, 0.1], weights: [1, 1, 2, 0])
        XCTAssertEqual(try distribution.canonical(), .discrete(values: [0.1, 0.5, 0.9], weights: [0.25, 0.5, 0.25]))
        let resolved = try one(distribution)
        XCTAssertEqual(resolved.quantile(0), 0.1)
        XCTAssertEqual(resolved.quantile(0.25), 0.1)
        XCTAssertEqual(resolved.quantile(0.25.nextUp), 0.5)
        XCTAssertEqual(resolved.quantile(0.75), 0.5)
        XCTAssertEqual(resolved.quantile(0.76), 0.9)
        XCTAssertEqual(resolved.quantile(1), 0.9)
        XCTAssertEqual(resolved.cdf(0.09), 0)
        XCTAssertEqual(resolved.cdf(0.5), 0.75)
        XCTAssertEqual(resolved.pdf(0.5), 0)
        XCTAssertEqual(resolved.mean, 0.5, accuracy: 1e-15)
        let merged = Distribution.discrete(values: [0.3, 0.3], weights: [1, 3])
        XCTAssertEqual(try merged.canonical(), .discrete(values: [0.3], weights: [1]))
    }

    /// A mixture simulated by choosing the component with one uniform and sampling it with others.
    func testMixtureFitsDirectSimulation() throws {
        let mixture = Distribution.mixture([
            MixtureComponent(weight: 3, distribution: .logitNormal(mean: 1, std: 0.5)),
            MixtureComponent(weight: 1, distribution: .beta(a: 2, b: 3)),
        ])
        let distribution = try one(mixture)
        var generator = SplitMix64(seed: 41)
        let samples = (0..<sampleCount).map { _ -> Double in
            generator.uniform() < 0.75
                ? logisticSigmoid(1 + 0.5 * generator.normal())
                : (0..<4).map { _ in generator.uniform() }.sorted()[1]
        }
        assertFits(samples, distribution.cdf, "mixture")
        for i in 1..<100 {
            let u = Double(i) / 100
            XCTAssertEqual(distribution.cdf(distribution.quantile(u)), u, accuracy: 1e-12)
        }
    }

    func testMixtureWithPointMassesReturnsThePointsExactly() throws {
        let distribution = try one(.mixture([
            MixtureComponent(weight: 1, distribution: .uniform),
            MixtureComponent(weight: 1, distribution: .discrete(values: [0.2, 0.7], weights: [1, 1])),
        ]))
        // F jumps by 0.25 at 0.2 (from 0.1 to 0.35) and at 0.7 (from 0.6 to 0.85).
        XCTAssertEqual(distribution.quantile(0.2), 0.2)
        XCTAssertEqual(distribution.quantile(0.34), 0.2)
        XCTAssertEqual(distribution.quantile(0.7), 0.7)
        XCTAssertEqual(distribution.quantile(0.05), 0.1, accuracy: 1e-13)
        XCTAssertEqual(distribution.quantile(0.5), 0.5, accuracy: 1e-13)  // 0.5x + 0.25 = 0.5
        XCTAssertEqual(distribution.quantile(0.9), 0.8, accuracy: 1e-13)
        XCTAssertEqual(distribution.mean, 0.5 * 0.5 + 0.5 * 0.45, accuracy: 1e-12)
    }

    func testRoundTripsForEveryFamily() throws {
        let families: [(Distribution, Double)] = [
            (.mode(scale: 1.29), 1), (.mode(scale: -0.5), 2), (.cosmap, 1), (.cosmap, 0.5),
            (.beta(a: 0.7, b: 2.5), 1), (.beta(a: 4, b: 4), 3),
            (.logitNormal(mean: 0, std: 1), 3.16), (.uniform, 0.25),
            (.mixture([MixtureComponent(weight: 1, distribution: .cosmap),
                       MixtureComponent(weight: 2, distribution: .mode(scale: 1))]), 1.5),
        ]
        for (family, shift) in families {
            let distribution = try one(family, shift: shift)
            for i in 1..<400 {
                let u = Double(i) / 400
                let sigma = distribution.quantile(u)
                XCTAssertEqual(distribution.cdf(sigma), u, accuracy: 1e-12, "\(family) shift \(shift) at u \(u)")
                let h = 1e-6
                guard sigma > 2 * h, sigma < 1 - 2 * h else { continue }
                let slope = (distribution.cdf(sigma + h) - distribution.cdf(sigma - h)) / (2 * h)
                XCTAssertEqual(distribution.pdf(sigma), slope, accuracy: 1e-4 * max(1, slope), "\(family) pdf at \(sigma)")
            }
        }
    }

    func testInvalidParametersAreNamed() {
        func problem(_ distribution: Distribution) -> String? {
            do {
                _ = try distribution.canonical()
                return nil
            } catch {
                return "\(error.parameter): \(error.message)"
            }
        }
        XCTAssertEqual(problem(.mode(scale: 1.8)), "scale: must be in [-1, 2/(pi - 2) = \(Distribution.maximumModeScale)], got 1.8")
        XCTAssertEqual(problem(.mode(scale: -1.01))?.hasPrefix("scale: must be in [-1"), true)
        XCTAssertEqual(problem(.mode(scale: .nan))?.hasPrefix("scale:"), true)
        XCTAssertEqual(problem(.beta(a: 0, b: 1)), "a: must be > 0 and finite, got 0.0")
        XCTAssertEqual(problem(.beta(a: 1, b: -2)), "b: must be > 0 and finite, got -2.0")
        XCTAssertEqual(problem(.discrete(values: [], weights: [])), "sigmas: must contain at least one value")
        XCTAssertEqual(problem(.discrete(values: [0.5, 1.2], weights: [1, 1])), "sigmas[1]: must be in [0, 1], got 1.2")
        XCTAssertEqual(problem(.discrete(values: [0.5], weights: [1, 1])), "weights: must have one weight per sigma (1), got 2")
        XCTAssertEqual(problem(.discrete(values: [0.5, 0.6], weights: [1, -1])), "weights[1]: must be >= 0 and finite, got -1.0")
        XCTAssertEqual(problem(.discrete(values: [0.5], weights: [0])), "weights: must not all be 0")
        XCTAssertEqual(problem(.mixture([])), "components: must contain at least one component")
        XCTAssertEqual(problem(.mixture([MixtureComponent(weight: 0, distribution: .uniform)])),
                       "components[0].weight: must be > 0 and finite, got 0.0")
        XCTAssertEqual(problem(.mixture([MixtureComponent(weight: 1, distribution: .uniform),
                                         MixtureComponent(weight: 1, distribution: .mixture([
                                             MixtureComponent(weight: 1, distribution: .logitNormal(mean: 0, std: 0))]))])),
                       "components[1].components[0].std: must be > 0 and finite, got 0.0")
    }
}
