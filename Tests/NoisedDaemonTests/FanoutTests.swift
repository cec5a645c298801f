import NoisedDaemon
import NoisedProtocol
import XCTest

/// The fan-out's pure rules: the order of `split`, and the answer a producer gets.
final class FanoutTests: XCTestCase {
    private func turns(_ weights: [Double], _ count: Int) -> [Int] {
        var turns = WeightedTurns(weights: weights)
        return (0..<count).map { _ in turns.next() }
    }

    func testSplitTakesTurnsInProportionSpreadOut() {
        XCTAssertEqual(turns([3, 1], 8), [0, 0, 1, 0, 0, 0, 1, 0])
        XCTAssertEqual(turns([1, 1, 1], 6), [0, 1, 2, 0, 1, 2])
        XCTAssertEqual(turns([1], 3), [0, 0, 0])
        // Fractional weights keep their shares over a long run.
        let long = turns([0.5, 1.5, 2], 4000)
        XCTAssertEqual([0, 1, 2].map { index in long.filter { $0 == index }.count }, [500, 1500, 2000])
        // Never more than one turn in a row for an output of weight at most half the total.
        let alternating = turns([1, 1], 100)
        XCTAssertFalse(zip(alternating, alternating.dropFirst()).contains { $0 == $1 })
    }

    func testAProducerHearsOkIfAnyOutputQueuedTheBatch() {
        let names = ["high", "low"]
        XCTAssertEqual(Fanout.settle([0: .ok(seq: 7), 1: .ok(seq: 9)], names: names), .ok(seq: 7))
        XCTAssertEqual(Fanout.settle([0: .rejected(reason: "bad_frames", detail: "x"), 1: .ok(seq: 3)], names: names), .ok(seq: 3))
        XCTAssertEqual(Fanout.settle([0: .unsent(detail: "late"), 1: .rejected(reason: "nonfinite", detail: "nan")], names: names),
                       .rejected(reason: "nonfinite", detail: "output low: nan"))
        XCTAssertEqual(Fanout.settle([1: .unsent(detail: "late")], names: names), .unsent(detail: "late"))
        guard case .unsent = Fanout.settle([:], names: names) else { return XCTFail("no output took it: unsent") }
    }
}
