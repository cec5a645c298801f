import XCTest
import Schedule
import NoisedTestSupport

final class StratificationTests: XCTestCase {
    private func batch(_ generator: inout SplitMix64, _ size: Int) -> [Double] {
        (0..<size).map { _ in generator.uniform() }
    }

    func testEachStratumIsHitExactlyOnce() {
        var generator = SplitMix64(seed: 1)
        for size in [2, 3, 8, 64, 257] {
            for seed: UInt64 in 0..<20 {
                let uniforms = batch(&generator, size)
                let stratified = Stratification.stratify(uniforms, permutation: seed)
                let strata = stratified.map { Int($0 * Double(size)) }
                XCTAssertEqual(strata.sorted(), Array(0..<size), "size \(size), seed \(seed)")
                XCTAssertTrue(stratified.allSatisfy { $0 >= 0 && $0 < 1 })
                // Within its stratum each value keeps its own offset.
                for (u, v) in zip(uniforms, stratified) {
                    XCTAssertEqual(v * Double(size) - Double(Int(v * Double(size))), u, accuracy: 1e-9)
                }
            }
        }
    }

    func testThePermutationIsAPureFunctionOfTheSeed() {
        let uniforms = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8]
        XCTAssertEqual(Stratification.stratify(uniforms, permutation: 42), Stratification.stratify(uniforms, permutation: 42))
        XCTAssertNotEqual(Stratification.stratify(uniforms, permutation: 42), Stratification.stratify(uniforms, permutation: 43))
        XCTAssertEqual(Stratification.stratify([], permutation: 1), [])
        XCTAssertEqual(Stratification.stratify([0.3], permutation: 1), [0.3])
        XCTAssertLessThan(Stratification.stratify([0.5, 1.0.nextDown], permutation: 0).max()!, 1)
    }

    /// Every position of the batch (here the first and the last) stays uniform on [0, 1).
    func testEachSampleStaysUniform() {
        var generator = SplitMix64(seed: 2)
        var first: [Double] = [], last: [Double] = []
        for batchIndex in 0..<20_000 {
            let stratified = Stratification.stratify(batch(&generator, 8), permutation: generator.next() ^ UInt64(batchIndex))
            first.append(stratified[0])
            last.append(stratified[7])
        }
        for (name, samples) in [("first", first), ("last", last)] {
            let test = KolmogorovSmirnov(samples) { min(max($0, 0), 1) }
            XCTAssertGreaterThan(test.pValue, 1e-4, "\(name) sample: D = \(test.statistic)")
        }
    }

    /// iid: Var(mean of B uniforms) = 1/(12B); stratified: 1/(12B³), a ratio of 1/B² = 1/256.
    func testTheVarianceOfTheBatchMeanDrops() throws {
        let size = 16, batches = 5_000
        let schedule = try SigmaSchedule(sigmaMin: 0, sigmaMax: 1, interpolation: .linear,
                                         keyframes: [Keyframe(atStep: 0, distribution: .logitNormal(mean: 0, std: 1))])
        let distribution = schedule.distribution(atStep: 0)
        var generator = SplitMix64(seed: 3)
        var iidMeans: [Double] = [], stratifiedMeans: [Double] = []
        var iidSigmaMeans: [Double] = [], stratifiedSigmaMeans: [Double] = []
        for _ in 0..<batches {
            let uniforms = batch(&generator, size)
            let stratified = Stratification.stratify(uniforms, permutation: generator.next())
            iidMeans.append(uniforms.reduce(0, +) / Double(size))
            stratifiedMeans.append(stratified.reduce(0, +) / Double(size))
            iidSigmaMeans.append(uniforms.map(distribution.quantile).reduce(0, +) / Double(size))
            stratifiedSigmaMeans.append(stratified.map(distribution.quantile).reduce(0, +) / Double(size))
        }
        func variance(_ values: [Double]) -> Double {
            let mean = values.reduce(0, +) / Double(values.count)
            return values.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / Double(values.count - 1)
        }
        // With 5000 batches a sample variance is within ±10 % of its expectation far beyond p = 1e-4.
        XCTAssertEqual(variance(iidMeans), 1 / (12 * Double(size)), accuracy: 0.1 / (12 * Double(size)))
        XCTAssertEqual(variance(stratifiedMeans), 1 / (12 * pow(Double(size), 3)), accuracy: 0.1 / (12 * pow(Double(size), 3)))
        XCTAssertLessThan(variance(stratifiedSigmaMeans), 0.05 * variance(iidSigmaMeans), "mean sigma of a batch")
    }
}
