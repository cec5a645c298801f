import Configuration
import Schedule
import XCTest

/// `schedule.coupling`: each method with its own keys, every bad value named.
final class CouplingConfigTests: XCTestCase {
    func testEachMethodTakesItsOwnKeys() throws {
        XCTAssertEqual(try NoisedConfig.parse(yaml: "").coupling, BatchCoupling.none)
        XCTAssertEqual(try NoisedConfig.parse(yaml: "schedule: {coupling: {method: assignment}}").coupling, .assignment)
        XCTAssertEqual(try NoisedConfig.parse(yaml: "schedule: {coupling: {method: sinkhorn}}").coupling,
                       .sinkhorn(regularization: 0.05, iterations: 100))
        XCTAssertEqual(try NoisedConfig.parse(yaml: "schedule: {coupling: {method: sinkhorn, reg: 0.1, iterations: 20}}").coupling,
                       .sinkhorn(regularization: 0.1, iterations: 20))
        XCTAssertEqual(try NoisedConfig.parse(yaml: "schedule: {coupling: {method: knn}}").coupling, .knn(candidates: 4))
        XCTAssertEqual(try NoisedConfig.parse(yaml: "schedule: {coupling: {method: knn, candidates: 16}}").coupling, .knn(candidates: 16))
        let outputs = try NoisedConfig.parse(yaml: """
            outputs:
              - {name: a, endpoint: 'ipc:///tmp/a', schedule: {coupling: {method: assignment}}}
              - {name: b, endpoint: 'ipc:///tmp/b'}
            """)
        XCTAssertEqual(outputs.outputs.map(\.coupling), [.assignment, BatchCoupling.none])
        XCTAssertEqual(outputs.config(ofOutput: 0).coupling, .assignment)
    }

    func testBadCouplingIsRejectedNamingTheKey() {
        assertRejected("schedule: {coupling: {method: hungarian}}", "schedule.coupling.method",
                       "must be one of none, assignment, sinkhorn, knn; got 'hungarian'")
        assertRejected("schedule: {coupling: {method: assignment, reg: 0.1}}", "schedule.coupling.reg", "applies to method: sinkhorn only")
        assertRejected("schedule: {coupling: {method: sinkhorn, candidates: 3}}", "schedule.coupling.candidates", "method: knn only")
        assertRejected("schedule: {coupling: {iterations: 3}}", "schedule.coupling.iterations", "method is none")
        assertRejected("schedule: {coupling: {method: sinkhorn, reg: 0.001}}", "schedule.coupling.reg", "must be >= 0.002")
        assertRejected("schedule: {coupling: {method: sinkhorn, reg: .inf}}", "schedule.coupling.reg", "finite")
        assertRejected("schedule: {coupling: {method: sinkhorn, iterations: 0}}", "schedule.coupling.iterations", "1...10000")
        assertRejected("schedule: {coupling: {method: knn, candidates: 1}}", "schedule.coupling.candidates", "must be in 2...16, got 1")
        assertRejected("schedule: {coupling: {method: knn, candidates: 17}}", "schedule.coupling.candidates", "got 17")
        assertRejected("schedule: {coupling: {method: knn, k: 3}}", "schedule.coupling.k", "unknown key")
        assertRejected("schedule: {coupling: assignment}", "schedule.coupling", "expected a mapping")
    }
}
