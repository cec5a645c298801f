import Schedule
import XCTest
import Configuration
import NoisedProtocol

/// Every distribution, shifts and mixtures in the curriculum, and their errors.
final class CurriculumTests: XCTestCase {
    private func curriculum(_ entries: String...) -> String {
        "schedule:\n  curriculum:\n" + entries.map { "    - \($0)\n" }.joined()
    }

    func testEveryDistributionAndShiftParses() throws {
        let config = try NoisedConfig.parse(yaml: curriculum(
            "{at_step: 0, distribution: uniform, shift: 3}",
            "{at_step: 10, distribution: logit_normal}",
            "{at_step: 20, distribution: mode}",
            "{at_step: 30, distribution: mode, scale: -0.5, shift: {auto: sequence_length}}",
            "{at_step: 40, distribution: cosmap}",
            "{at_step: 50, distribution: beta, a: 2, b: 5}",
            "{at_step: 60, distribution: discrete, sigmas: [0.75, 0.25]}",
            "{at_step: 70, distribution: discrete, sigmas: [0.2, 0.6], weights: [3, 1]}",
            """
            at_step: 80
                  distribution: mixture
                  components:
                    - {weight: 3, distribution: logit_normal, std: 0.5}
                    - {distribution: uniform}
                  shift: {auto: sequence_length, base_shift: 0.3, max_shift: 1.2, base_seq_len: 128, max_seq_len: 8192, patch: [2, 2]}
            """))
        let expected = try SigmaSchedule(sigmaMin: 0, sigmaMax: 1, interpolation: .linear, keyframes: [
            Keyframe(atStep: 0, distribution: .uniform, shift: .fixed(3)),
            Keyframe(atStep: 10, distribution: .logitNormal(mean: 0, std: 1)),
            Keyframe(atStep: 20, distribution: .mode(scale: 1.29)),
            Keyframe(atStep: 30, distribution: .mode(scale: -0.5), shift: .sequenceLength(SequenceLengthShift())),
            Keyframe(atStep: 40, distribution: .cosmap),
            Keyframe(atStep: 50, distribution: .beta(a: 2, b: 5)),
            Keyframe(atStep: 60, distribution: .discrete(values: [0.25, 0.75], weights: [0.5, 0.5])),
            Keyframe(atStep: 70, distribution: .discrete(values: [0.2, 0.6], weights: [0.75, 0.25])),
            Keyframe(atStep: 80,
                     distribution: .mixture([MixtureComponent(weight: 0.75, distribution: .logitNormal(mean: 0, std: 0.5)),
                                             MixtureComponent(weight: 0.25, distribution: .uniform)]),
                     shift: .sequenceLength(SequenceLengthShift(baseShift: 0.3, maxShift: 1.2, baseSequenceLength: 128,
                                                                maxSequenceLength: 8192, patch: [2, 2]))),
        ])
        XCTAssertEqual(config.schedule, expected)
    }

    func testBadDistributionParameters() {
        assertRejected(curriculum("{at_step: 0, distribution: mode, scale: 2}"), "schedule.curriculum[0].scale", "must be in [-1, 2/(pi - 2)")
        assertRejected(curriculum("{at_step: 0, distribution: beta, a: 2}"), "schedule.curriculum[0].b", "missing; beta needs a and b")
        assertRejected(curriculum("{at_step: 0, distribution: beta, a: 0, b: 1}"), "schedule.curriculum[0].a", "must be > 0")
        assertRejected(curriculum("{at_step: 0, distribution: discrete}"), "schedule.curriculum[0].sigmas", "missing")
        assertRejected(curriculum("{at_step: 0, distribution: discrete, sigmas: 0.5}"), "schedule.curriculum[0].sigmas",
                       "expected a list of numbers, got '0.5'")
        assertRejected(curriculum("{at_step: 0, distribution: discrete, sigmas: [0.5, 2]}"), "schedule.curriculum[0].sigmas[1]",
                       "must be in [0, 1], got 2.0")
        assertRejected(curriculum("{at_step: 0, distribution: discrete, sigmas: [0.5], weights: [1, 2]}"),
                       "schedule.curriculum[0].weights", "one weight per sigma")
        assertRejected(curriculum("{at_step: 0, distribution: mixture}"), "schedule.curriculum[0].components", "missing")
        assertRejected(curriculum("{at_step: 0, distribution: mixture, components: []}"), "schedule.curriculum[0].components",
                       "at least one component")
        assertRejected(curriculum("{at_step: 0, distribution: mixture, components: [{weight: -1, distribution: uniform}]}"),
                       "schedule.curriculum[0].components[0].weight", "must be > 0")
        assertRejected(curriculum("{at_step: 0, distribution: uniform}",
                                  "{at_step: 1, distribution: mixture, components: [{distribution: uniform}, {distribution: beta, a: 1, b: -1}]}"),
                       "schedule.curriculum[1].components[1].b", "must be > 0")
        assertRejected(curriculum("{at_step: 0, distribution: mixture, components: [{distribution: poisson}]}"),
                       "schedule.curriculum[0].components[0].distribution", "must be one of uniform, logit_normal, mode, cosmap, beta, discrete, mixture")
        assertRejected(curriculum("{at_step: 0, distribution: mixture, components: [{distribution: uniform, at_step: 3}]}"),
                       "schedule.curriculum[0].components[0].at_step", "unknown key (expected one of: weight, distribution)")
        assertRejected(curriculum("{at_step: 0, distribution: cosmap, scale: 1}"), "schedule.curriculum[0].scale",
                       "unknown key (expected one of: at_step, shift, distribution)")
    }

    func testBadShifts() {
        assertRejected(curriculum("{at_step: 0, distribution: uniform, shift: 0}"), "schedule.curriculum[0].shift", "must be in e^-10.0...e^10.0")
        assertRejected(curriculum("{at_step: 0, distribution: uniform, shift: 30000}"), "schedule.curriculum[0].shift", "got 30000.0")
        // base_shift 555 made s = e^555 and sigma NaN at u = 1.
        assertRejected(curriculum("{at_step: 0, distribution: uniform, shift: {auto: sequence_length, base_shift: 555}}"),
                       "schedule.curriculum[0].shift.base_shift", "must be in -10.0...10.0, got 555.0")
        assertRejected(curriculum("{at_step: 0, distribution: uniform, shift: {auto: sequence_length, max_shift: -10.5}}"),
                       "schedule.curriculum[0].shift.max_shift", "must be in -10.0...10.0, got -10.5")
        assertRejected(curriculum("{at_step: 0, distribution: uniform, shift: big}"), "schedule.curriculum[0].shift",
                       "expected a number or a mapping")
        assertRejected(curriculum("{at_step: 0, distribution: uniform, shift: {base_shift: 1}}"), "schedule.curriculum[0].shift.auto",
                       "missing; expected sequence_length")
        assertRejected(curriculum("{at_step: 0, distribution: uniform, shift: {auto: resolution}}"), "schedule.curriculum[0].shift.auto",
                       "must be sequence_length; got 'resolution'")
        assertRejected(curriculum("{at_step: 0, distribution: uniform, shift: {auto: sequence_length, mu: 1}}"),
                       "schedule.curriculum[0].shift.mu", "unknown key")
        assertRejected(curriculum("{at_step: 0, distribution: uniform, shift: {auto: sequence_length, max_seq_len: 100}}"),
                       "schedule.curriculum[0].shift.max_seq_len", "must be > base_seq_len (256.0), got 100.0")
        assertRejected(curriculum("{at_step: 0, distribution: uniform, shift: {auto: sequence_length, patch: [2, 0]}}"),
                       "schedule.curriculum[0].shift.patch[1]", "must be >= 1, got 0")
        assertRejected(curriculum("{at_step: 0, distribution: uniform, shift: {auto: sequence_length, patch: 2}}"),
                       "schedule.curriculum[0].shift.patch", "expected a list of integers, got '2'")
        assertRejected(curriculum("{at_step: 0, distribution: uniform, shift: {auto: sequence_length, tokens: flat}}"),
                       "schedule.curriculum[0].shift.tokens", "must be one of spatial, packed; got 'flat'")
        assertRejected(curriculum("{at_step: 0, distribution: uniform, shift: {auto: sequence_length, tokens: packed, patch: [2, 2]}}"),
                       "schedule.curriculum[0].shift.patch", "does not apply with tokens: packed")
    }

    func testFramesDecodeAndTheirErrorsNameTheKey() throws {
        let config = try NoisedConfig.parse(yaml: """
            schedule:
              frames:
                axis: 2
                mode: sorted
                chunk: 3
                condition:
                  - {weight: 0.6}
                  - {weight: 0.4, first: 1}
            """)
        XCTAssertEqual(config.frames, try FrameSampling(axis: 2, mode: .sorted, chunk: 3,
                                                        conditions: [.init(weight: 0.6), .init(weight: 0.4, first: 1)]))
        XCTAssertNil(try NoisedConfig.parse(yaml: "seed: 1").frames)
        assertRejected("schedule:\n  frames: {mode: sorted}", "schedule.frames.axis", "missing")
        assertRejected("schedule:\n  frames: {axis: 0}", "schedule.frames.axis", "must be >= 1")
        assertRejected("schedule:\n  frames: {axis: 2, mode: random}", "schedule.frames.mode",
                       "must be one of same, independent, sorted; got 'random'")
        assertRejected("schedule:\n  frames: {axis: 2, chunk: 0}", "schedule.frames.chunk", "must be >= 1, got 0")
        assertRejected("schedule:\n  frames: {axis: 2, condition: [{weight: 1}, {weight: -2, first: 1}]}",
                       "schedule.frames.condition[1].weight", "must be > 0, got -2.0")
        assertRejected("schedule:\n  frames: {axis: 2, condition: [{weight: 1, frist: 1}]}",
                       "schedule.frames.condition[0].frist", "unknown key")
    }

    func testPosteriorDecodesAndItsErrorsNameTheKey() throws {
        let config = try NoisedConfig.parse(yaml: "input:\n  tensor: latents\n  posterior: {mean: mu, logvar: lv}")
        XCTAssertEqual(config.input.posterior, PosteriorTensors(mean: "mu", logvar: "lv"))
        XCTAssertNil(try NoisedConfig.parse(yaml: "seed: 1").input.posterior)
        assertRejected("input:\n  posterior: {mean: mu}", "input.posterior.logvar", "missing")
        assertRejected("input:\n  posterior: {mean: '', logvar: lv}", "input.posterior.mean", "must not be empty")
        assertRejected("input:\n  posterior: {mean: x, logvar: x}", "input.posterior.logvar", "must differ from mean ('x')")
        assertRejected("input:\n  posterior: {mean: x, logvar: y, std: z}", "input.posterior.std", "unknown key")
    }

    func testPackedTokensDecode() throws {
        let config = try NoisedConfig.parse(yaml: curriculum("{at_step: 0, distribution: uniform, shift: {auto: sequence_length, tokens: packed}}"))
        XCTAssertEqual(config.schedule.keyframes[0].shift, .sequenceLength(SequenceLengthShift(layout: .packed)))
    }
}
