import Coupling
import Foundation
import NoisedTestSupport
import XCTest

final class SinkhornPlanTests: XCTestCase {
    /// Squared distances of random points, scaled like whole-sample costs (~1e5).
    private func cost(_ n: Int, seed: UInt64) -> [Double] {
        var random = SplitMix64(seed: seed)
        let points = (0..<n).map { _ in (random.uniform(), random.uniform()) }
        let targets = (0..<n).map { _ in (random.uniform(), random.uniform()) }
        return (0..<n * n).map { index in
            let (p, q) = (points[index / n], targets[index % n])
            return 1e5 * ((p.0 - q.0) * (p.0 - q.0) + (p.1 - q.1) * (p.1 - q.1)) + 1e5
        }
    }

    func testMarginalsAreUniform() throws {
        for n in [2, 7, 64] {
            let plan = try SinkhornPlan(cost: cost(n, seed: UInt64(n)), n: n, regularization: 0.05, iterations: 100)
            for i in 0..<n {
                let row = (0..<n).reduce(0.0) { $0 + plan.values[i * n + $1] }
                XCTAssertEqual(row, 1 / Double(n), accuracy: 1e-9, "row \(i) of \(n)")
            }
            for j in 0..<n {
                let column = (0..<n).reduce(0.0) { $0 + plan.values[$1 * n + j] }
                // 100 iterations at reg 0.05 leave the columns (the side updated first) slightly off.
                XCTAssertEqual(column, 1 / Double(n), accuracy: 0.05 / Double(n), "column \(j) of \(n)")
            }
            XCTAssertTrue(plan.values.allSatisfy { $0 >= 0 && $0.isFinite })
        }
    }

    func testMatchesAStraightforwardReference() throws {
        for (n, seed, reg, iterations) in [(5, 1, 0.05, 100), (16, 2, 0.05, 100), (33, 3, 0.1, 37), (8, 4, 0.01, 500), (3, 5, 1.0, 1)] {
            let m = cost(n, seed: UInt64(seed))
            let plan = try SinkhornPlan(cost: m, n: n, regularization: reg, iterations: iterations)
            let expected = referenceSinkhorn(m, n, reg: reg, iterations: iterations, stopThreshold: 1e-9)
            for index in 0..<n * n {
                XCTAssertEqual(plan.values[index], expected.plan[index], accuracy: 1e-12 + 1e-9 * expected.plan[index],
                               "n \(n) entry \(index)")
            }
            XCTAssertEqual(plan.iterationsRun, expected.iterations, "n \(n)")
        }
    }

    func testStopsWhereThePOTCheckPasses() throws {
        // Large regularization converges within a few iterations; the check runs at 0, 10, 20, ...
        let m = cost(6, seed: 9)
        let plan = try SinkhornPlan(cost: m, n: 6, regularization: 5, iterations: 1000)
        XCTAssertLessThan(plan.iterationsRun, 1000)
        XCTAssertEqual((plan.iterationsRun - 1) % 10, 0)
        XCTAssertEqual(plan.iterationsRun, referenceSinkhorn(m, 6, reg: 5, iterations: 1000, stopThreshold: 1e-9).iterations)
    }

    func testDegenerateBatches() throws {
        XCTAssertEqual(try SinkhornPlan(cost: [123], n: 1, regularization: 0.05, iterations: 100).values, [1])
        XCTAssertEqual(try SinkhornPlan(cost: [123], n: 1, regularization: 0.05, iterations: 100).choose(row: 0, uniform: 0.99), 0)
        // All costs zero or all equal: the uniform plan.
        for value in [0.0, 7.0] {
            let plan = try SinkhornPlan(cost: Array(repeating: value, count: 16), n: 4, regularization: 0.05, iterations: 100)
            for entry in plan.values { XCTAssertEqual(entry, 1.0 / 16, accuracy: 1e-15) }
        }
        XCTAssertEqual(try SinkhornPlan(cost: [], n: 0, regularization: 0.05, iterations: 10).values, [])
    }

    func testBadInputsAreRejected() {
        XCTAssertThrowsError(try SinkhornPlan(cost: [1, .nan, 3, 4], n: 2, regularization: 0.05, iterations: 10)) {
            XCTAssertEqual($0 as? CouplingError, .nonFiniteCost(row: 0, column: 1))
        }
        XCTAssertThrowsError(try SinkhornPlan(cost: [1, 2, 3, 4], n: 2, regularization: 0.001, iterations: 10)) {
            XCTAssertEqual($0 as? CouplingError, .badRegularization(0.001))
        }
        XCTAssertThrowsError(try SinkhornPlan(cost: [1, 2, 3], n: 2, regularization: 0.05, iterations: 10))
    }

    func testChooseInvertsTheRowCDF() throws {
        let n = 4
        let plan = try SinkhornPlan(cost: cost(n, seed: 11), n: n, regularization: 0.5, iterations: 50)
        for row in 0..<n {
            let masses = (0..<n).map { plan.values[row * n + $0] }
            let total = masses.reduce(0, +)
            var cumulative = 0.0
            for (column, mass) in masses.enumerated() {
                // Just below and just above each boundary of the CDF.
                let low = cumulative / total, high = (cumulative + mass) / total
                XCTAssertEqual(plan.choose(row: row, uniform: low + (high - low) * 0.001), column)
                XCTAssertEqual(plan.choose(row: row, uniform: low + (high - low) * 0.999), column)
                cumulative += mass
            }
            XCTAssertEqual(plan.choose(row: row, uniform: 0), 0)
            XCTAssertEqual(plan.choose(row: row, uniform: 1), n - 1)
        }
        // Frequencies follow the row (fixed-seed uniforms).
        var random = SplitMix64(seed: 3)
        var counts = [Int](repeating: 0, count: n)
        let draws = 40_000
        for _ in 0..<draws { counts[plan.choose(row: 2, uniform: random.uniform())] += 1 }
        let rowTotal = (0..<n).reduce(0.0) { $0 + plan.values[2 * n + $1] }
        for column in 0..<n {
            let p = plan.values[2 * n + column] / rowTotal
            XCTAssertEqual(Double(counts[column]) / Double(draws), p, accuracy: 5 * (p * (1 - p) / Double(draws)).squareRoot() + 1e-9)
        }
    }

    /// POT's sinkhorn_knopp written plainly: K = exp(-M/max/reg), u = v = 1/n, v = b / Kᵀu,
    /// u = a / (K v), stop checks every tenth iteration.
    private func referenceSinkhorn(
        _ m: [Double], _ n: Int, reg: Double, iterations: Int, stopThreshold: Double
    ) -> (plan: [Double], iterations: Int) {
        let maximum = m.max()!
        var k = [[Double]](repeating: [Double](repeating: 0, count: n), count: n)
        for i in 0..<n { for j in 0..<n { k[i][j] = exp(-(m[i * n + j] / maximum) / reg) } }
        let a = 1.0 / Double(n)
        var u = [Double](repeating: a, count: n), v = u
        var done = 0
        for iteration in 0..<iterations {
            var newV = [Double](repeating: 0, count: n), newU = newV
            for j in 0..<n { newV[j] = a / (0..<n).reduce(0.0) { $0 + k[$1][j] * u[$1] } }
            for i in 0..<n { newU[i] = a / (0..<n).reduce(0.0) { $0 + k[i][$1] * newV[$1] } }
            (u, v) = (newU, newV)
            done += 1
            if iteration % 10 == 0 {
                var squared = 0.0
                for j in 0..<n {
                    let marginal = (0..<n).reduce(0.0) { $0 + u[$1] * k[$1][j] * v[j] }
                    squared += (marginal - a) * (marginal - a)
                }
                if squared.squareRoot() < stopThreshold { break }
            }
        }
        return ((0..<n * n).map { u[$0 / n] * k[$0 / n][$0 % n] * v[$0 % n] }, done)
    }
}
