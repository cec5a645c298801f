import Foundation
import Schedule
import XCTest
import Configuration
import NoisedProtocol

/// Every file in config/examples parses, and says what its comments promise.
final class ExamplesTests: XCTestCase {
    private static let examples = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("config/examples")

    private func example(_ name: String) throws -> NoisedConfig {
        try NoisedConfig.parse(yaml: try String(contentsOf: Self.examples.appendingPathComponent(name), encoding: .utf8))
    }

    func testEveryExampleParses() throws {
        let names = try FileManager.default.contentsOfDirectory(atPath: Self.examples.path).filter { $0.hasSuffix(".yaml") }.sorted()
        XCTAssertEqual(names, ["adaptive.yaml", "coarse-to-fine.yaml", "diffusion-forcing.yaml", "flux-packed.yaml",
                               "flux-sequence-shift.yaml", "i2v-conditioning.yaml", "immiscible-assignment.yaml",
                               "mochi-posterior.yaml", "mochi-uniform.yaml", "sd3-logit-normal-shift3.yaml",
                               "wan22-experts.yaml"])
        for name in names { XCTAssertNoThrow(try example(name), name) }
        // The one-distribution configs behind the pictures in docs/schedules.md.
        let families = try FileManager.default.contentsOfDirectory(atPath: Self.examples.appendingPathComponent("distributions").path)
        XCTAssertEqual(families.count, 7)
        for name in families {
            let schedule = try example("distributions/" + name).schedule
            XCTAssertEqual(schedule.keyframes.count, 1, name)
            XCTAssertEqual(schedule.keyframes[0].distribution.name.replacingOccurrences(of: "_", with: "-") + ".yaml", name)
        }
    }

    func testMochiIsUniform() throws {
        XCTAssertEqual(try example("mochi-uniform.yaml").schedule.keyframes, [Keyframe(atStep: 0, distribution: .uniform)])
    }

    func testSD3IsLogitNormalWithShift3() throws {
        let schedule = try example("sd3-logit-normal-shift3.yaml").schedule
        XCTAssertEqual(schedule.keyframes, [Keyframe(atStep: 0, distribution: .logitNormal(mean: 0, std: 1), shift: .fixed(3))])
        // The median moves from 1/2 to 3·0.5/(1 + 2·0.5) = 0.75.
        XCTAssertEqual(schedule.distribution(atStep: 0).quantile(0.5), 0.75, accuracy: 1e-12)
    }

    func testFluxShiftFollowsTheLatentSize() throws {
        let schedule = try example("flux-sequence-shift.yaml").schedule
        XCTAssertTrue(schedule.usesLatentShape)
        let median1024 = schedule.distribution(atStep: 0, latentShape: [1, 16, 128, 128]).quantile(0.5)
        let shift = exp(1.15)
        XCTAssertEqual(median1024, shift * 0.5 / (1 + (shift - 1) * 0.5), accuracy: 1e-9)
        let median512 = schedule.distribution(atStep: 0, latentShape: [1, 16, 64, 64]).quantile(0.5)
        XCTAssertEqual(median512, exp(0.63) / (1 + exp(0.63)), accuracy: 1e-9)
    }

    func testPackedFluxLatentsGetTheShiftOfTheirUnpackedShape() throws {
        let packed = try example("flux-packed.yaml").schedule, spatial = try example("flux-sequence-shift.yaml").schedule
        for (packedShape, unpackedShape) in [([1, 4096, 64], [1, 16, 128, 128]), ([4, 1024, 64], [4, 16, 64, 64])] {
            XCTAssertEqual(packed.distribution(atStep: 0, latentShape: packedShape).quantile(0.5),
                           spatial.distribution(atStep: 0, latentShape: unpackedShape).quantile(0.5), accuracy: 1e-15)
        }
    }

    func testMochiPosteriorSamplesZ0AndSendsIt() throws {
        let config = try example("mochi-posterior.yaml")
        XCTAssertEqual(config.input.posterior, PosteriorTensors(mean: "mean", logvar: "logvar"))
        XCTAssertTrue(config.output.includeClean)
        XCTAssertEqual(config.schedule.keyframes, [Keyframe(atStep: 0, distribution: .uniform)])
    }

    func testImmiscibleAssignmentCouplesBatchesWithinItsLimit() throws {
        let config = try example("immiscible-assignment.yaml")
        XCTAssertEqual(config.coupling, .assignment)
        XCTAssertLessThanOrEqual(config.input.maxBatch, BatchCoupling.maxPairedBatch)
    }

    func testWan22ExpertsSplitSigmaAtTheBoundary() throws {
        let config = try example("wan22-experts.yaml")
        XCTAssertEqual(config.fanout, .copy)
        XCTAssertEqual(config.outputs.map(\.name), ["high_noise", "low_noise"])
        XCTAssertEqual(config.outputs.map(\.schedule.sigmaMin), [0.875, 0])
        XCTAssertEqual(config.outputs.map(\.schedule.sigmaMax), [1, 0.875])
        XCTAssertTrue(config.outputs.allSatisfy(\.output.includeClean))
    }

    func testVideoExamplesNoiseFrameByFrame() throws {
        XCTAssertEqual(try example("diffusion-forcing.yaml").frames, try FrameSampling(axis: 2, mode: .independent))
        let i2v = try XCTUnwrap(try example("i2v-conditioning.yaml").frames)
        XCTAssertEqual(i2v.mode, .same)
        XCTAssertEqual(i2v.conditions.map(\.first), [0, 1, 1, 2])
        XCTAssertEqual(i2v.conditions.map(\.last), [0, 0, 1, 0])
        XCTAssertEqual(i2v.conditions.map(\.weight).reduce(0, +), 1, accuracy: 1e-12)
    }

    func testCoarseToFineMovesFromNoiseToDetail() throws {
        let schedule = try example("coarse-to-fine.yaml").schedule
        XCTAssertEqual(schedule.interpolation, .cosine)
        let medians = [0, 5000, 10000, 20000, 30000].map { schedule.distribution(atStep: $0).quantile(0.5) }
        XCTAssertEqual(medians, medians.sorted(by: >), "the median sigma falls over training")
        XCTAssertEqual(medians.last!, 0.5, accuracy: 1e-9)
    }

    func testAdaptiveTurnsOnFeedbackAndStratification() throws {
        let config = try example("adaptive.yaml")
        XCTAssertEqual(config.steps.source, .feedback)
        XCTAssertEqual(config.feedback.endpoint, "tcp://127.0.0.1:5557")
        XCTAssertEqual(config.feedback.pattern, .pull)
        XCTAssertTrue(config.stratified)
        XCTAssertEqual(config.adaptive, AdaptiveSettings(enabled: true, bins: 20, history: 10, mix: 0.5, uniformFloor: 0.01))
    }
}
