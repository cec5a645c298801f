import Foundation
import NoisedBenchmarks
import XCTest

final class CouplingBenchTests: XCTestCase {
    func testSmallRunReportsEverySizeAndAnAssignmentNoWorseThanIdentity() throws {
        var options = CouplingBench.Options()
        options.batchSizes = [1, 5, 8]
        options.elementsPerSample = 1000
        options.workers = 2
        options.rounds = 1
        let rows = try CouplingBench(options: options).run()
        XCTAssertEqual(rows.map(\.batch), [1, 5, 8])
        for row in rows {
            XCTAssertEqual(row.elementsPerSample, 1000)
            XCTAssertTrue([row.kernel, row.costMatrix, row.assignment, row.sinkhorn, row.knn].allSatisfy { $0 >= 0 }, "\(row)")
            XCTAssertLessThanOrEqual(row.assignedMeanCost, row.identityMeanCost, "\(row)")
        }
        XCTAssertEqual(CouplingBench.renderTable(rows).split(separator: "\n").count, 2 + rows.count + 1)
        XCTAssertEqual(try JSONDecoder().decode([CouplingBench.Row].self, from: Data(CouplingBench.renderJSON(rows).utf8)), rows)
    }
}
