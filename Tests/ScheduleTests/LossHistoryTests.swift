import Foundation
import XCTest
import Schedule
import NoisedTestSupport

final class LossHistoryTests: XCTestCase {
    func testEachBinKeepsItsLastLossesOldestFirst() {
        var history = LossHistory(bins: 4, history: 3)
        for (sigma, loss) in [(0.1, 1.0), (0.1, 2.0), (0.1, 3.0), (0.1, 4.0), (0.9, 5.0)] {
            XCTAssertTrue(history.record(sigma: sigma, loss: loss, sigmaMin: 0, sigmaMax: 1))
        }
        XCTAssertEqual(history.losses, [[2, 3, 4], [], [], [5]])
        XCTAssertEqual(history.reportCount, 5)
        XCTAssertFalse(history.isWarm)
        let rms = history.rootMeanSquare()
        XCTAssertEqual(rms[0], ((4.0 + 9 + 16) / 3).squareRoot(), accuracy: 1e-15)
        XCTAssertEqual(rms[1], 0)
        XCTAssertEqual(rms[3], 5)
    }

    func testBinsFollowTheSigmaRangeAndEdgesBelongToTheLowerBin() {
        var history = LossHistory(bins: 4, history: 1)
        // Range [0.2, 0.6]: edges 0.2, 0.3, 0.4, 0.5, 0.6; (0.3, 0.4] is bin 1.
        for (sigma, loss) in [(0.2, 0.0), (0.3, 1.0), (0.4, 2.0), (0.6, 3.0)] {
            history.record(sigma: sigma, loss: loss, sigmaMin: 0.2, sigmaMax: 0.6)
        }
        XCTAssertEqual(history.losses, [[1], [2], [], [3]])
        // Float32 rounding of the top sigma still counts; a sigma from another range does not.
        XCTAssertTrue(history.record(sigma: 0.6 + 1e-8, loss: 4, sigmaMin: 0.2, sigmaMax: 0.6))
        XCTAssertEqual(history.losses[3], [4])
        XCTAssertFalse(history.record(sigma: 0.7, loss: 4, sigmaMin: 0.2, sigmaMax: 0.6))
        XCTAssertFalse(history.record(sigma: 0.3, loss: .nan, sigmaMin: 0.2, sigmaMax: 0.6))
        XCTAssertFalse(history.record(sigma: .infinity, loss: 1, sigmaMin: 0.2, sigmaMax: 0.6))
        XCTAssertEqual(history.reportCount, 5)
    }

    func testTheUpdateIsDeterministic() {
        func fed(_ seed: UInt64) -> LossHistory {
            var generator = SplitMix64(seed: seed)
            var history = LossHistory(bins: 20, history: 10)
            for _ in 0..<1000 {
                let sigma = generator.uniform()
                history.record(sigma: sigma, loss: sigma * generator.uniform(), sigmaMin: 0, sigmaMax: 1)
            }
            return history
        }
        XCTAssertEqual(fed(7), fed(7))
        XCTAssertNotEqual(fed(7), fed(8))
        XCTAssertTrue(fed(7).isWarm)
    }

    func testResizingKeepsWhatFits() {
        var history = LossHistory(bins: 2, history: 4)
        for loss in 1...5 { history.record(sigma: 0.25, loss: Double(loss), sigmaMin: 0, sigmaMax: 1) }
        history.record(sigma: 0.75, loss: 9, sigmaMin: 0, sigmaMax: 1)
        let shorter = history.resized(bins: 2, history: 2)
        XCTAssertEqual(shorter.losses, [[4, 5], [9]])
        XCTAssertEqual(shorter.reportCount, 6)
        let longer = history.resized(bins: 2, history: 10)
        XCTAssertEqual(longer.losses, [[2, 3, 4, 5], [9]])
        XCTAssertEqual(longer.history, 10)
        let rebinned = history.resized(bins: 3, history: 4)
        XCTAssertEqual(rebinned.losses, [[], [], []])
        XCTAssertEqual(rebinned.reportCount, 6)
        XCTAssertEqual(history.resized(bins: 2, history: 4), history)
    }

    func testCodableRoundTripAndDamagedFiles() throws {
        var history = LossHistory(bins: 3, history: 2)
        history.record(sigma: 0.5, loss: 0.25, sigmaMin: 0, sigmaMax: 1)
        let data = try JSONEncoder().encode(history)
        XCTAssertEqual(try JSONDecoder().decode(LossHistory.self, from: data), history)
        for (json, fragment) in [
            (#"{"bins": 2, "history": 1, "losses": [[1]], "report_count": 1}"#, "1 bins of losses for 2 bins"),
            (#"{"bins": 1, "history": 1, "losses": [[1, 2]], "report_count": 2}"#, "bin 0 holds 2 losses"),
            (#"{"bins": 0, "history": 1, "losses": [], "report_count": 0}"#, "must be >= 1"),
        ] {
            XCTAssertThrowsError(try JSONDecoder().decode(LossHistory.self, from: Data(json.utf8))) { error in
                XCTAssertTrue("\(error)".contains(fragment), "\(error)")
            }
        }
    }
}
