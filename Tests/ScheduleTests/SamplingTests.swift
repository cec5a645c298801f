import XCTest
import Schedule
import NoisedTestSupport

/// Kolmogorov–Smirnov tests of sampled sigma against CDFs written independently in the tests,
/// and of independently simulated sigma against the library's CDF.
final class SamplingTests: XCTestCase {
    private let sampleCount = 20_000
    private let significance = 1e-4

    private func sample(_ schedule: SigmaSchedule, step: Int64, seed: UInt64) -> [Double] {
        var generator = SplitMix64(seed: seed)
        return (0..<sampleCount).map { _ in schedule.sigma(uniform: generator.uniform(), step: step) }
    }

    private func assertFits(_ samples: [Double], _ cdf: (Double) -> Double, _ message: String,
                            file: StaticString = #filePath, line: UInt = #line) {
        let test = KolmogorovSmirnov(samples, cdf: cdf)
        XCTAssertGreaterThanOrEqual(test.pValue, significance,
                                    "\(message): D = \(test.statistic)", file: file, line: line)
    }

    private func schedule(_ min: Double, _ max: Double, _ interpolation: Interpolation,
                          _ keyframes: [(Int64, Distribution)]) throws -> SigmaSchedule {
        try SigmaSchedule(sigmaMin: min, sigmaMax: max, interpolation: interpolation,
                          keyframes: keyframes.map { Keyframe(atStep: $0.0, distribution: $0.1) })
    }

    func testUniformKeyframe() throws {
        let schedule = try schedule(0.1, 0.7, .linear, [(0, .uniform)])
        assertFits(sample(schedule, step: 5, seed: 1), { min(max(($0 - 0.1) / 0.6, 0), 1) }, "uniform")
    }

    func testLogitNormalAtKeyframes() throws {
        let schedule = try schedule(0.05, 0.95, .linear,
                                    [(100, .logitNormal(mean: 0.5, std: 1)), (300, .logitNormal(mean: -1, std: 0.5))])
        for (step, mean, std) in [(Int64(0), 0.5, 1.0), (100, 0.5, 1), (300, -1, 0.5), (10_000, -1, 0.5)] {
            assertFits(sample(schedule, step: step, seed: UInt64(step) + 2),
                       { logitNormalCDF(($0 - 0.05) / 0.9, mean: mean, std: std) },
                       "logit-normal at step \(step)")
        }
    }

    func testInterpolatedParametersBetweenKeyframes() throws {
        let keyframes: [(Int64, Distribution)] = [(0, .logitNormal(mean: 1, std: 0.5)), (200, .logitNormal(mean: -1, std: 1.5))]
        for interpolation in [Interpolation.linear, .cosine] {
            let schedule = try schedule(0, 1, interpolation, keyframes)
            for step: Int64 in [50, 100, 173] {
                let t = Double(step) / 200
                let w = interpolation == .linear ? t : (1 - cos(Double.pi * t)) / 2
                let mean = 1 + w * (-2), std = 0.5 + w * 1.0
                assertFits(sample(schedule, step: step, seed: 7 + UInt64(step)),
                           { logitNormalCDF($0, mean: mean, std: std) }, "\(interpolation) at step \(step)")
            }
        }
    }

    func testCrossFadedMixtureBetweenDifferentDistributions() throws {
        for interpolation in [Interpolation.linear, .cosine] {
            let schedule = try schedule(0.2, 0.8, interpolation, [(1000, .uniform), (2000, .logitNormal(mean: 1, std: 0.3))])
            for step: Int64 in [1250, 1500, 1900] {
                let t = Double(step - 1000) / 1000
                let w = interpolation == .linear ? t : (1 - cos(Double.pi * t)) / 2
                let reference = { (sigma: Double) -> Double in
                    let x = (sigma - 0.2) / 0.6
                    return (1 - w) * min(max(x, 0), 1) + w * logitNormalCDF(x, mean: 1, std: 0.3)
                }
                assertFits(sample(schedule, step: step, seed: 99 + UInt64(step)), reference,
                           "\(interpolation) cross-fade at step \(step)")
            }
        }
    }

    func testHoldKeepsTheEarlierKeyframeUntilTheNext() throws {
        let schedule = try schedule(0, 1, .hold, [(0, .logitNormal(mean: 2, std: 0.5)), (100, .uniform)])
        assertFits(sample(schedule, step: 99, seed: 3), { logitNormalCDF($0, mean: 2, std: 0.5) }, "hold before")
        assertFits(sample(schedule, step: 100, seed: 4), { min(max($0, 0), 1) }, "hold at the next keyframe")
    }

    /// Sigma simulated straight from the definitions (Box–Muller normals, a coin for the mixture
    /// component) must fit the library's CDF: this checks the CDF without the library's quantile.
    func testDirectSimulationFitsTheLibraryCDF() throws {
        let schedule = try schedule(0.1, 0.9, .linear, [(0, .logitNormal(mean: -0.5, std: 0.8)), (100, .uniform)])
        let w = 0.3
        let distribution = schedule.distribution(atStep: 30)
        var generator = SplitMix64(seed: 2024)
        let samples = (0..<sampleCount).map { _ -> Double in
            let x = generator.uniform() < w ? generator.uniform() : logisticSigmoid(-0.5 + 0.8 * generator.normal())
            return 0.1 + 0.8 * x
        }
        assertFits(samples, distribution.cdf, "direct simulation of the cross-fade")

        let pure = schedule.distribution(atStep: 0)
        let pureSamples = (0..<sampleCount).map { _ in 0.1 + 0.8 * logisticSigmoid(-0.5 + 0.8 * generator.normal()) }
        assertFits(pureSamples, pure.cdf, "direct simulation of the logit-normal")
    }

    /// The test has power: a mean off by 0.05 is rejected at this sample size.
    func testKolmogorovSmirnovDetectsASmallShift() throws {
        let schedule = try schedule(0, 1, .linear, [(0, .logitNormal(mean: 0.5, std: 1))])
        let test = KolmogorovSmirnov(sample(schedule, step: 0, seed: 5)) { logitNormalCDF($0, mean: 0.45, std: 1) }
        XCTAssertLessThan(test.pValue, significance)
    }
}
