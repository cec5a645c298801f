import Configuration
import Foundation
import NoisedDaemon
import NoisedProtocol
import XCTest

/// How reports move the curriculum's step: the largest within a generation, exactly the report's
/// when a new generation starts (a resume), nothing for a stale one.
final class FeedbackResumeTests: XCTestCase {
    private func settings(source: StepSource, batchesPerStep: Int = 1, adaptive: Bool = false) -> NoisingSettings {
        var config = NoisedConfig()
        config.steps.source = source
        config.steps.batchesPerStep = batchesPerStep
        config.adaptive.enabled = adaptive
        return NoisingSettings(config)
    }

    func testReportsOfOneGenerationTakeTheLargestStepAndSeveralRanksCountOnce() {
        let settings = settings(source: .feedback)
        var state = DaemonState()
        for step: Int64 in [10, 10, 30, 20, 30] {  // two ranks at one step, then a late rank
            XCTAssertEqual(state.apply(FeedbackReport(step: step), settings: settings), .applied)
        }
        XCTAssertEqual(settings.step(for: state), 30)
    }

    func testANewGenerationMovesTheStepBackAndLeavesTheNoiseCountersAlone() {
        let settings = settings(source: .feedback)
        var state = DaemonState()
        state.samples = 5_000
        state.seq = 900
        _ = state.apply(FeedbackReport(step: 912), settings: settings)
        XCTAssertEqual(state.apply(FeedbackReport(step: 500, generation: 1), settings: settings),
                       .resumed(from: 912, to: 500, generation: 1))
        XCTAssertEqual(settings.step(for: state), 500)
        XCTAssertEqual([state.samples, state.seq], [5_000, 900], "a rewind never hands out an id or seq again")
        // Every rank resumes with the same generation: the rest count as ordinary reports.
        XCTAssertEqual(state.apply(FeedbackReport(step: 500, generation: 1), settings: settings), .applied)
        XCTAssertEqual(state.apply(FeedbackReport(step: 501, generation: 1), settings: settings), .applied)
        XCTAssertEqual(settings.step(for: state), 501)
    }

    func testStaleGenerationsAreIgnoredStepAndLosses() {
        let settings = settings(source: .feedback, adaptive: true)
        var state = DaemonState()
        _ = state.apply(FeedbackReport(step: 40, generation: 7), settings: settings)
        let before = state
        XCTAssertEqual(state.apply(FeedbackReport(step: 900, generation: 6, sigmas: [0.5], losses: [1]), settings: settings),
                       .stale(current: 7))
        XCTAssertEqual(state, before, "a report from before the resume changes nothing")
        XCTAssertEqual(state.apply(FeedbackReport(step: 41, generation: 7, sigmas: [0.5], losses: [1]), settings: settings),
                       .applied)
        XCTAssertNotNil(state.lossHistory)
    }

    func testAResumeWithStepsCountedFromBatchesMovesTheBatchCount() {
        let settings = settings(source: .batches, batchesPerStep: 4)
        var state = DaemonState()
        state.batches = 4_000
        XCTAssertEqual(settings.step(for: state), 1_000)
        XCTAssertEqual(state.apply(FeedbackReport(step: 250, generation: 2), settings: settings),
                       .resumed(from: 1_000, to: 250, generation: 2))
        XCTAssertEqual(settings.step(for: state), 250)
        XCTAssertEqual(state.batches, 1_000)
        // Ordinary reports do not move a batch-counted step.
        _ = state.apply(FeedbackReport(step: 9_999, generation: 2), settings: settings)
        XCTAssertEqual(settings.step(for: state), 250)
    }

    func testTheGenerationSurvivesARestart() throws {
        var state = DaemonState()
        _ = state.apply(FeedbackReport(step: 3, generation: 5), settings: settings(source: .feedback))
        let data = try JSONEncoder().encode(state)
        XCTAssertTrue(String(decoding: data, as: UTF8.self).contains("\"generation\":5"))
        XCTAssertEqual(try JSONDecoder().decode(DaemonState.self, from: data), state)
    }
}
