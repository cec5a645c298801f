import Foundation
import XCTest
import Schedule
import NoisedTestSupport

final class SigmaProposalTests: XCTestCase {
    private let settings = AdaptiveSettings(enabled: true, bins: 20, history: 10, mix: 0.5, uniformFloor: 0.01)

    private func curriculum(_ distribution: Distribution = .logitNormal(mean: 0, std: 1),
                            sigmaMin: Double = 0, sigmaMax: Double = 1) throws -> SigmaDistribution {
        try SigmaSchedule(sigmaMin: sigmaMin, sigmaMax: sigmaMax, interpolation: .linear,
                          keyframes: [Keyframe(atStep: 0, distribution: distribution)]).distribution(atStep: 0)
    }

    /// A warm history whose loss is `high` for sigma in `band` and 1 elsewhere.
    private func history(_ settings: AdaptiveSettings, band: ClosedRange<Double>, high: Double,
                         sigmaMin: Double = 0, sigmaMax: Double = 1) -> LossHistory {
        var history = LossHistory(bins: settings.bins, history: settings.history)
        for bin in 0..<settings.bins {
            let sigma = sigmaMin + (sigmaMax - sigmaMin) * (Double(bin) + 0.5) / Double(settings.bins)
            for _ in 0..<settings.history {
                history.record(sigma: sigma, loss: band.contains(sigma) ? high : 1, sigmaMin: sigmaMin, sigmaMax: sigmaMax)
            }
        }
        return history
    }

    func testCurriculumUntilTheHistoryIsWarm() throws {
        let p = try curriculum()
        var cold = history(settings, band: 0.6...0.7, high: 10)
        cold = cold.resized(bins: 20, history: 11)   // one report short in every bin
        for (history, settings) in [(nil, settings), (cold, settings),
                                    (self.history(settings, band: 0.6...0.7, high: 10), AdaptiveSettings(enabled: false))] {
            let proposal = SigmaProposal(curriculum: p, history: history, settings: settings)
            XCTAssertFalse(proposal.isAdapted)
            for u in [0.0, 0.01, 0.3, 0.5, 0.99, 1] { XCTAssertEqual(proposal.quantile(u), p.quantile(u)) }
            for sigma in [0.0, 0.2, 0.65, 1] {
                XCTAssertEqual(proposal.weight(sigma), 1)
                XCTAssertEqual(proposal.cdf(sigma), p.cdf(sigma))
            }
            XCTAssertEqual(proposal.binWeights.reduce(0, +), 1, accuracy: 1e-12)
        }
    }

    func testMassGrowsWhereTheLossIsHigh() throws {
        let p = try curriculum()
        let flat = SigmaProposal(curriculum: p, history: history(settings, band: 0.6...0.7, high: 1), settings: settings)
        let proposal = SigmaProposal(curriculum: p, history: history(settings, band: 0.6...0.7, high: 10), settings: settings)
        XCTAssertTrue(proposal.isAdapted)
        XCTAssertEqual(proposal.binWeights.reduce(0, +), 1, accuracy: 1e-12)
        let band = 12...13   // sigma in (0.6, 0.7]
        let before = band.reduce(0.0) { $0 + flat.binWeights[$1] }, after = band.reduce(0.0) { $0 + proposal.binWeights[$1] }
        let pMass = p.cdf(0.7) - p.cdf(0.6)
        // Equal losses: q = 0.99 p + 0.01 U. High losses: r = 0.5 + 0.5·10/Z with Z = 1 + 9·pMass.
        XCTAssertEqual(before, 0.99 * pMass + 0.01 * 0.1, accuracy: 1e-12)
        XCTAssertEqual(after, 0.99 * (0.5 + 5 / (1 + 9 * pMass)) * pMass + 0.01 * 0.1, accuracy: 1e-12)
        XCTAssertGreaterThan(after, 2 * before)
        XCTAssertLessThan(proposal.weight(0.65), 0.5)
        XCTAssertGreaterThan(proposal.weight(0.2), 1)
    }

    /// The q-CDF, q-density and quantile agree, and samples from one uniform each fit the q-CDF.
    func testSamplesFitTheProposalCDF() throws {
        for (distribution, sigmaMin, sigmaMax) in [(Distribution.logitNormal(mean: 0, std: 1), 0.0, 1.0),
                                                   (.beta(a: 0.5, b: 2), 0.1, 0.9),
                                                   (.mixture([MixtureComponent(weight: 0.9, distribution: .logitNormal(mean: 1, std: 0.5)),
                                                              MixtureComponent(weight: 0.1, distribution: .uniform)]), 0, 1)] {
            let p = try curriculum(distribution, sigmaMin: sigmaMin, sigmaMax: sigmaMax)
            let h = history(settings, band: (sigmaMin + 0.1)...(sigmaMin + 0.25), high: 6, sigmaMin: sigmaMin, sigmaMax: sigmaMax)
            let q = SigmaProposal(curriculum: p, history: h, settings: settings)
            XCTAssertTrue(q.isAdapted)
            for u in stride(from: 0.0, through: 1.0, by: 0.0371) {
                XCTAssertEqual(q.cdf(q.quantile(u)), u, accuracy: 1e-9, "\(distribution) u = \(u)")
            }
            var generator = SplitMix64(seed: 11)
            let samples = (0..<20_000).map { _ in q.quantile(generator.uniform()) }
            let fit = KolmogorovSmirnov(samples, cdf: q.cdf)
            XCTAssertGreaterThan(fit.pValue, 1e-4, "\(distribution): D = \(fit.statistic)")
            // Power: the same samples do not fit the curriculum.
            XCTAssertLessThan(KolmogorovSmirnov(samples, cdf: p.cdf).pValue, 1e-4, "\(distribution)")
        }
    }

    /// E_q[w·f(σ)] = E_p[f(σ)], checked by Monte Carlo against a fine quadrature of p.
    func testWeightsMakeTheEstimateUnbiased() throws {
        for distribution in [Distribution.logitNormal(mean: 0, std: 1), .beta(a: 2, b: 5),
                             .discrete(values: [0.1, 0.5, 0.8], weights: [1, 2, 1])] {
            let p = try curriculum(distribution)
            let q = SigmaProposal(curriculum: p, history: history(settings, band: 0.3...0.55, high: 8), settings: settings)
            XCTAssertTrue(q.isAdapted)
            let functions: [(String, (Double) -> Double)] = [
                ("1", { _ in 1 }), ("σ", { $0 }), ("σ²", { $0 * $0 }), ("1{σ < 0.3}", { $0 < 0.3 ? 1 : 0 }),
                ("cos 5σ", { cos(5 * $0) }),
            ]
            let quadrature = 200_000
            let pSigmas = (0..<quadrature).map { p.quantile((Double($0) + 0.5) / Double(quadrature)) }
            var generator = SplitMix64(seed: 5)
            let samples = (0..<100_000).map { _ -> (sigma: Double, weight: Double) in
                let sigma = q.quantile(generator.uniform())
                return (sigma, q.weight(sigma))
            }
            for (name, f) in functions {
                let expected = pSigmas.reduce(0) { $0 + f($1) } / Double(quadrature)
                let terms = samples.map { $0.weight * f($0.sigma) }
                let mean = terms.reduce(0, +) / Double(terms.count)
                let variance = terms.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / Double(terms.count - 1)
                let standardError = (variance / Double(terms.count)).squareRoot()
                XCTAssertEqual(mean, expected, accuracy: 5 * standardError + 1e-9, "\(distribution), f = \(name)")
            }
            // The weights are positive and bounded by 1/((1 - floor)(1 - mix)) on p's support.
            XCTAssertTrue(samples.allSatisfy { $0.weight >= 0 && $0.weight <= 1 / (0.99 * 0.5) + 1e-12 })
        }
    }

    /// With mix = 1 and zero loss in a bin, only the floor keeps q > 0 there.
    func testTheUniformFloorKeepsEveryBinReachable() throws {
        let p = try curriculum(.uniform)
        let settings = AdaptiveSettings(enabled: true, bins: 4, history: 2, mix: 1, uniformFloor: 0.02)
        var h = LossHistory(bins: 4, history: 2)
        for (sigma, loss) in [(0.1, 0.0), (0.1, 0.0), (0.4, 1.0), (0.4, 1.0), (0.6, 1.0), (0.6, 1.0), (0.9, 1.0), (0.9, 1.0)] {
            h.record(sigma: sigma, loss: loss, sigmaMin: 0, sigmaMax: 1)
        }
        let q = SigmaProposal(curriculum: p, history: h, settings: settings)
        XCTAssertTrue(q.isAdapted)
        XCTAssertEqual(q.binWeights[0], 0.02 / 4, accuracy: 1e-15)
        XCTAssertEqual(q.pdf(0.1), 0.02, accuracy: 1e-15)
        XCTAssertEqual(q.weight(0.1), 1 / 0.02, accuracy: 1e-9)
        XCTAssertEqual(q.quantile(0.0025), 0.125, accuracy: 1e-10)
        let noFloor = SigmaProposal(curriculum: p, history: h, settings: AdaptiveSettings(enabled: true, bins: 4, history: 2, mix: 1, uniformFloor: 0))
        XCTAssertEqual(noFloor.binWeights[0], 0)
        XCTAssertGreaterThan(noFloor.quantile(1e-9), 0.25, "a bin without mass is never sampled")
    }

    func testAllZeroLossesOrAConstantSigmaLeaveTheCurriculum() throws {
        var zero = LossHistory(bins: 2, history: 1)
        zero.record(sigma: 0.2, loss: 0, sigmaMin: 0, sigmaMax: 1)
        zero.record(sigma: 0.7, loss: 0, sigmaMin: 0, sigmaMax: 1)
        let settings = AdaptiveSettings(enabled: true, bins: 2, history: 1)
        XCTAssertFalse(SigmaProposal(curriculum: try curriculum(), history: zero, settings: settings).isAdapted)
        var warm = zero
        warm.record(sigma: 0.2, loss: 1, sigmaMin: 0, sigmaMax: 1)
        let constant = SigmaProposal(curriculum: try curriculum(sigmaMin: 0.5, sigmaMax: 0.5), history: warm, settings: settings)
        XCTAssertFalse(constant.isAdapted)
        XCTAssertEqual(constant.quantile(0.3), 0.5)
        // A history of another bin count (not yet resized) is not used.
        XCTAssertFalse(SigmaProposal(curriculum: try curriculum(), history: warm,
                                     settings: AdaptiveSettings(enabled: true, bins: 3, history: 1)).isAdapted)
    }
}
