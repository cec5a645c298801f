import Coupling
import NoisedTestSupport
import XCTest

final class LinearAssignmentTests: XCTestCase {
    func testEqualsBruteForceOnSmallRandomMatrices() throws {
        for seed: UInt64 in 1...300 {
            var random = SplitMix64(seed: seed)
            let n = 2 + random.below(6)  // 2...7
            let cost = (0..<n * n).map { _ in random.uniform() * 100 }
            let assignment = try LinearAssignment.solve(cost: cost, n: n)
            XCTAssertEqual(Set(assignment), Set(0..<n), "seed \(seed): not a permutation")
            let (best, bestCost) = bruteForce(cost, n)
            // Continuous random costs: the optimum is unique, so the permutation itself must match.
            XCTAssertEqual(assignment, best, "seed \(seed), n \(n)")
            XCTAssertEqual(total(cost, n, assignment), bestCost, accuracy: 1e-9 * bestCost)
            XCTAssertLessThanOrEqual(total(cost, n, assignment), total(cost, n, Array(0..<n)) + 1e-9)
        }
    }

    func testTiedIntegerMatricesReachTheOptimumDeterministically() throws {
        for seed: UInt64 in 1...200 {
            var random = SplitMix64(seed: 1000 + seed)
            let n = 2 + random.below(6)
            let cost = (0..<n * n).map { _ in Double(random.below(3)) }
            let assignment = try LinearAssignment.solve(cost: cost, n: n)
            XCTAssertEqual(Set(assignment), Set(0..<n), "seed \(seed)")
            XCTAssertEqual(total(cost, n, assignment), bruteForce(cost, n).1, "seed \(seed)")
            XCTAssertEqual(try LinearAssignment.solve(cost: cost, n: n), assignment)
        }
    }

    func testAllEqualCostsGiveTheIdentity() throws {
        for n in [1, 2, 5, 64] {
            XCTAssertEqual(try LinearAssignment.solve(cost: Array(repeating: 3.5, count: n * n), n: n), Array(0..<n))
        }
    }

    func testIdenticalRowsAreAPermutationInColumnOrder() throws {
        // Every row the same: any permutation is optimal; ties go to the lowest free column.
        let n = 6
        let row = [4.0, 1.0, 3.0, 1.0, 2.0, 5.0]
        let cost = (0..<n).flatMap { _ in row }
        let assignment = try LinearAssignment.solve(cost: cost, n: n)
        XCTAssertEqual(Set(assignment), Set(0..<n))
        XCTAssertEqual(assignment, try LinearAssignment.solve(cost: cost, n: n))
        XCTAssertEqual(assignment[0], 1, "row 0 takes the lowest-index cheapest column")
    }

    func testDegenerateSizes() throws {
        XCTAssertEqual(try LinearAssignment.solve(cost: [], n: 0), [])
        XCTAssertEqual(try LinearAssignment.solve(cost: [42], n: 1), [0])
        XCTAssertEqual(try LinearAssignment.solve(cost: [1, 0, 0, 1], n: 2), [1, 0])
        XCTAssertThrowsError(try LinearAssignment.solve(cost: [1, 2, 3], n: 2)) {
            XCTAssertEqual($0 as? CouplingError, .notSquare(rows: 2, columns: 1))
        }
        XCTAssertThrowsError(try LinearAssignment.solve(CostMatrix(rows: 1, columns: 2, values: [1, 2])))
    }

    func testNonFiniteCostsAreRejected() {
        for bad in [Double.nan, .infinity, -.infinity] {
            var cost = (0..<9).map(Double.init)
            cost[5] = bad
            XCTAssertThrowsError(try LinearAssignment.solve(cost: cost, n: 3)) {
                XCTAssertEqual($0 as? CouplingError, .nonFiniteCost(row: 1, column: 2))
            }
        }
    }

    func testLargeMatrixIsAPermutationNoWorseThanIdentity() throws {
        var random = SplitMix64(seed: 77)
        let n = 1024
        let cost = (0..<n * n).map { _ in random.uniform() * 1000 + 1e5 }
        let assignment = try LinearAssignment.solve(cost: cost, n: n)
        XCTAssertEqual(Set(assignment).count, n)
        XCTAssertTrue(assignment.allSatisfy { (0..<n).contains($0) })
        XCTAssertLessThan(total(cost, n, assignment), total(cost, n, Array(0..<n)))
        // Complementary slackness would need the duals; a cheaper check: no pair of rows gains by swapping.
        for i in stride(from: 0, to: n - 1, by: 7) {
            let j = i + 1
            let now = cost[i * n + assignment[i]] + cost[j * n + assignment[j]]
            let swapped = cost[i * n + assignment[j]] + cost[j * n + assignment[i]]
            XCTAssertLessThanOrEqual(now, swapped + 1e-9)
        }
    }

    func testRecoversAPlantedPermutation() throws {
        var random = SplitMix64(seed: 5)
        let n = 200
        let planted = Array(0..<n).shuffled(using: &random)
        var cost = (0..<n * n).map { _ in 10 + random.uniform() }
        for i in 0..<n { cost[i * n + planted[i]] = random.uniform() }
        XCTAssertEqual(try LinearAssignment.solve(cost: cost, n: n), planted)
    }

    private func total(_ cost: [Double], _ n: Int, _ assignment: [Int]) -> Double {
        assignment.enumerated().reduce(0) { $0 + cost[$1.offset * n + $1.element] }
    }

    /// The cheapest permutation by enumeration; the first found (lexicographic order) on ties.
    private func bruteForce(_ cost: [Double], _ n: Int) -> ([Int], Double) {
        var best: [Int] = [], bestCost = Double.infinity
        var permutation = Array(0..<n)
        func visit(_ k: Int) {
            if k == n {
                let c = total(cost, n, permutation)
                if c < bestCost { (best, bestCost) = (permutation, c) }
                return
            }
            for i in k..<n {
                permutation.swapAt(k, i)
                visit(k + 1)
                permutation.swapAt(k, i)
            }
        }
        visit(0)
        return (best, bestCost)
    }
}
