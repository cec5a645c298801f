import XCTest
import Schedule

final class SigmaDistributionTests: XCTestCase {
    private func single(_ distribution: Distribution, min: Double = 0, max: Double = 1) -> SigmaDistribution {
        SigmaDistribution(sigmaMin: min, sigmaMax: max,
                          components: [WeightedDistribution(weight: 1, distribution: distribution)])
    }

    private func mixture(_ a: Distribution, _ b: Distribution, weightOfB w: Double,
                         min: Double = 0, max: Double = 1) -> SigmaDistribution {
        SigmaDistribution(sigmaMin: min, sigmaMax: max,
                          components: [WeightedDistribution(weight: 1 - w, distribution: a),
                                       WeightedDistribution(weight: w, distribution: b)])
    }

    private let examples: [SigmaDistribution] = [
        SigmaDistribution(sigmaMin: 0, sigmaMax: 1, components: [.init(weight: 1, distribution: .uniform)]),
        SigmaDistribution(sigmaMin: 0.2, sigmaMax: 0.7, components: [.init(weight: 1, distribution: .uniform)]),
        SigmaDistribution(sigmaMin: 0, sigmaMax: 1,
                          components: [.init(weight: 1, distribution: .logitNormal(mean: 0, std: 1))]),
        SigmaDistribution(sigmaMin: 0.05, sigmaMax: 0.95,
                          components: [.init(weight: 1, distribution: .logitNormal(mean: 1.5, std: 0.3))]),
        SigmaDistribution(sigmaMin: 0, sigmaMax: 1,
                          components: [.init(weight: 0.7, distribution: .uniform),
                                       .init(weight: 0.3, distribution: .logitNormal(mean: -1, std: 0.5))]),
        SigmaDistribution(sigmaMin: 0.1, sigmaMax: 0.9,
                          components: [.init(weight: 0.5, distribution: .logitNormal(mean: -2, std: 0.4)),
                                       .init(weight: 0.5, distribution: .logitNormal(mean: 2, std: 0.4))]),
    ]

    func testQuantileInvertsCDF() {
        for distribution in examples {
            for i in 1..<200 {
                let sigma = distribution.sigmaMin + (distribution.sigmaMax - distribution.sigmaMin) * Double(i) / 200
                let u = distribution.cdf(sigma)
                // Where the density is tiny, x is ill-conditioned in u; skip the far tails.
                guard u > 1e-9, u < 1 - 1e-9 else { continue }
                XCTAssertEqual(distribution.quantile(u), sigma, accuracy: 1e-11,
                               "\(distribution.components) at sigma \(sigma)")
            }
        }
    }

    func testCDFInvertsQuantile() {
        for distribution in examples {
            for i in 1..<1000 {
                let u = Double(i) / 1000
                XCTAssertEqual(distribution.cdf(distribution.quantile(u)), u, accuracy: 1e-12,
                               "\(distribution.components) at u \(u)")
            }
        }
    }

    func testPDFIsTheDerivativeOfCDF() {
        for distribution in examples {
            let range = distribution.sigmaMax - distribution.sigmaMin
            for i in 1..<100 {
                let sigma = distribution.sigmaMin + range * Double(i) / 100
                let h = 1e-6 * range
                let slope = (distribution.cdf(sigma + h) - distribution.cdf(sigma - h)) / (2 * h)
                XCTAssertEqual(distribution.pdf(sigma), slope, accuracy: 1e-5 * max(1, slope),
                               "\(distribution.components) at sigma \(sigma)")
            }
        }
    }

    func testOutsideTheRange() {
        let distribution = single(.logitNormal(mean: 0, std: 1), min: 0.2, max: 0.6)
        XCTAssertEqual(distribution.pdf(0.1), 0)
        XCTAssertEqual(distribution.pdf(0.7), 0)
        XCTAssertEqual(distribution.cdf(0.1), 0)
        XCTAssertEqual(distribution.cdf(0.6), 1)
        XCTAssertEqual(distribution.quantile(0), 0.2)
        XCTAssertEqual(distribution.quantile(1), 0.6)
    }

    func testLogitNormalMedianIsSigmoidOfMean() {
        for mean in [-2.0, 0, 0.5, 3] {
            let distribution = single(.logitNormal(mean: mean, std: 0.8))
            XCTAssertEqual(distribution.quantile(0.5), 1 / (1 + exp(-mean)), accuracy: 1e-15)
        }
    }

    func testMeanMatchesReference() {
        // Logit-normal means from mpmath quadrature at 50 digits.
        let references: [(mean: Double, std: Double, expected: Double)] = [
            (0, 1, 0.5), (0.5, 1, 0.602027132816750156), (1, 0.6, 0.716458785827127127),
            (-2, 3, 0.282576014104323604),
        ]
        for (mean, std, expected) in references {
            XCTAssertEqual(single(.logitNormal(mean: mean, std: std)).mean, expected, accuracy: 1e-12)
        }
        XCTAssertEqual(single(.uniform, min: 0.2, max: 0.6).mean, 0.4, accuracy: 1e-15)
        let mixed = mixture(.uniform, .logitNormal(mean: 1, std: 0.6), weightOfB: 0.25, min: 0.1, max: 0.5)
        XCTAssertEqual(mixed.mean, 0.1 + 0.4 * (0.75 * 0.5 + 0.25 * 0.716458785827127127), accuracy: 1e-12)
        // A very narrow logit-normal: the mean is the point it concentrates on.
        XCTAssertEqual(single(.logitNormal(mean: 1, std: 1e-6)).mean, 1 / (1 + exp(-1)), accuracy: 1e-9)
    }

    func testConstantSigmaWhenTheRangeIsEmpty() {
        let distribution = single(.logitNormal(mean: 0, std: 1), min: 0.3, max: 0.3)
        for u in [0.0, 1e-9, 0.5, 0.999, 1] {
            XCTAssertEqual(distribution.quantile(u), 0.3)
        }
        XCTAssertEqual(distribution.cdf(0.29), 0)
        XCTAssertEqual(distribution.cdf(0.3), 1)
        XCTAssertEqual(distribution.pdf(0.3), .infinity)
        XCTAssertEqual(distribution.pdf(0.31), 0)
        XCTAssertEqual(distribution.mean, 0.3)
    }

    func testMixtureQuantileLiesBetweenComponentQuantiles() {
        let a = Distribution.logitNormal(mean: -2, std: 0.4), b = Distribution.uniform
        let mixed = mixture(a, b, weightOfB: 0.4)
        for i in 1..<100 {
            let u = Double(i) / 100
            let qa = a.unitQuantile(u), qb = b.unitQuantile(u)
            let q = mixed.quantile(u)
            XCTAssertGreaterThanOrEqual(q, min(qa, qb))
            XCTAssertLessThanOrEqual(q, max(qa, qb))
        }
    }

    func testQuantileIsMonotone() {
        for distribution in examples {
            var previous = -Double.infinity
            for i in 0...2000 {
                let sigma = distribution.quantile(Double(i) / 2000)
                XCTAssertGreaterThanOrEqual(sigma, previous)
                previous = sigma
            }
        }
    }
}
