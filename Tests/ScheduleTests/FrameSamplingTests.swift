import Schedule
import XCTest

final class FrameSamplingTests: XCTestCase {
    func testDrawsPerChunkAndSortedOrder() throws {
        let independent = try FrameSampling(axis: 2, mode: .independent, chunk: 2)
        XCTAssertEqual(independent.draws(frames: 5), 3)
        let draws: [(sigma: Float, weight: Float)] = [(0.9, 1), (0.1, 2), (0.5, 3)]
        let laid = independent.frameValues(draws: draws, frames: 5, condition: nil)
        XCTAssertEqual(laid.sigmas, [0.9, 0.9, 0.1, 0.1, 0.5])
        XCTAssertEqual(laid.weights, [1, 1, 2, 2, 3])
        XCTAssertEqual(laid.clean, [false, false, false, false, false])
        let sorted = try FrameSampling(axis: 2, mode: .sorted, chunk: 2).frameValues(draws: draws, frames: 5, condition: nil)
        XCTAssertEqual(sorted.sigmas, [0.1, 0.1, 0.5, 0.5, 0.9])
        XCTAssertEqual(sorted.weights, [2, 2, 3, 3, 1], "a draw's weight moves with its σ")
        let same = try FrameSampling(axis: 1, mode: .same)
        XCTAssertEqual(same.draws(frames: 7), 1)
        XCTAssertFalse(same.perFrame)
    }

    func testConditioningFramesAreCleanAndChosenByWeight() throws {
        let options = [FrameSampling.Condition(weight: 0.6), .init(weight: 0.3, first: 1), .init(weight: 0.1, first: 1, last: 2)]
        let sampling = try FrameSampling(axis: 2, mode: .same, conditions: options)
        XCTAssertTrue(sampling.perFrame)
        XCTAssertEqual(sampling.condition(0.0), options[0])
        XCTAssertEqual(sampling.condition(0.5999), options[0])
        XCTAssertEqual(sampling.condition(0.6001), options[1])
        XCTAssertEqual(sampling.condition(0.95), options[2])
        let laid = sampling.frameValues(draws: [(0.4, 1.5)], frames: 5, condition: options[2])
        XCTAssertEqual(laid.sigmas, [0, 0.4, 0.4, 0, 0])
        XCTAssertEqual(laid.weights, [0, 1.5, 1.5, 0, 0])
        XCTAssertEqual(laid.clean, [true, false, false, true, true])
    }

    func testShapesTheFramesCannotApplyToAreNamed() throws {
        let sampling = try FrameSampling(axis: 2, conditions: [.init(weight: 1), .init(weight: 1, first: 2, last: 1)])
        XCTAssertNil(sampling.problem(latentShape: [1, 12, 4, 8, 8]))
        XCTAssertEqual(sampling.problem(latentShape: [1, 12]), "schedule.frames.axis 2 is outside the latents' shape [1, 12] (2 axes)")
        XCTAssertEqual(sampling.problem(latentShape: [1, 12, 3, 8]),
                       "schedule.frames.condition[1] keeps 2 first + 1 last frames clean, but the latents [1, 12, 3, 8] have 3 frames on axis 2")
    }

    func testBadParametersAreNamed() {
        func error(_ make: () throws -> FrameSampling) -> String? {
            do { _ = try make(); return nil } catch { return (error as? FrameSamplingError)?.description ?? "\(error)" }
        }
        XCTAssertEqual(error { try FrameSampling(axis: 0) }, "schedule.frames.axis: must be >= 1 (axis 0 is the batch), got 0")
        XCTAssertEqual(error { try FrameSampling(axis: 1, chunk: 0) }, "schedule.frames.chunk: must be >= 1, got 0")
        XCTAssertEqual(error { try FrameSampling(axis: 1, conditions: [.init(weight: 0)]) },
                       "schedule.frames.condition[0].weight: must be > 0, got 0.0")
        XCTAssertEqual(error { try FrameSampling(axis: 1, conditions: [.init(weight: 1), .init(weight: 1, last: -1)]) },
                       "schedule.frames.condition[1].last: must be >= 0, got -1")
    }
}
