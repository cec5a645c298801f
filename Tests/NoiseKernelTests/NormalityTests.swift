import XCTest
import NoiseKernel

/// eps is N(0, 1) and independent across lanes, neighbours, samples and seeds. n = 2^20 values;
/// bounds are about 4.5 standard errors (p < 1e-5 for a correct stream), KS at p ~ 1e-4.
final class NormalityTests: XCTestCase {
    let n = 1 << 20
    var bound: Double { 4.5 / Double(n).squareRoot() }

    func testMomentsAndKolmogorovSmirnov() {
        let eps = epsValues(NoiseStream(seed: 2024), id: 17, 0..<n)
        let m = Statistics.moments(eps)
        XCTAssertLessThan(abs(m.mean), bound)
        XCTAssertLessThan(abs(m.variance - 1), 2.0.squareRoot() * bound)
        XCTAssertLessThan(abs(m.skew), 6.0.squareRoot() * bound)
        XCTAssertLessThan(abs(m.excessKurtosis), 24.0.squareRoot() * bound)
        let d = Statistics.ksStatistic(eps.map(Double.init), cdf: Statistics.normalCDF)
        XCTAssertLessThan(d * Double(n).squareRoot(), 2.2)
    }

    func testNoCorrelationBetweenLanesOfAGroup() {
        let eps = epsValues(NoiseStream(seed: 7), id: 1, 0..<n).map(Double.init)
        let groups = n / 4
        let lanes = (0..<4).map { lane in (0..<groups).map { eps[4 * $0 + lane] } }
        for i in 0..<4 {
            for j in (i + 1)..<4 {
                XCTAssertLessThan(abs(Statistics.correlation(lanes[i], lanes[j])), 2 * bound, "lanes \(i), \(j)")
                // Radius coupling would show in the squares (lanes 0/1 share r0, 2/3 share r1).
                let squareCorrelation = Statistics.correlation(lanes[i].map { $0 * $0 }, lanes[j].map { $0 * $0 })
                XCTAssertLessThan(abs(squareCorrelation), 2 * bound, "squares of lanes \(i), \(j)")
            }
        }
    }

    func testNoCorrelationBetweenNeighbours() {
        let eps = epsValues(NoiseStream(seed: 8), id: 2, 0..<n + 64).map(Double.init)
        for lag in [1, 4, 64] {
            XCTAssertLessThan(abs(Statistics.correlation(Array(eps[0..<n]), Array(eps[lag..<n + lag]))), bound, "lag \(lag)")
        }
    }

    func testNoCorrelationBetweenSamplesAndSeeds() {
        let base = epsValues(NoiseStream(seed: 9), id: 100, 0..<n).map(Double.init)
        let nextSample = epsValues(NoiseStream(seed: 9), id: 101, 0..<n).map(Double.init)
        let nextSeed = epsValues(NoiseStream(seed: 10), id: 100, 0..<n).map(Double.init)
        XCTAssertLessThan(abs(Statistics.correlation(base, nextSample)), bound)
        XCTAssertLessThan(abs(Statistics.correlation(base, nextSeed)), bound)
    }
}
