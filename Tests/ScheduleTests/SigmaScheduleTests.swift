import XCTest
import Schedule

final class SigmaScheduleTests: XCTestCase {
    func testInterpolationWeights() {
        for t in [0.0, 0.1, 0.25, 0.5, 0.9, 1] {
            XCTAssertEqual(Interpolation.linear.weight(t), t)
            XCTAssertEqual(Interpolation.hold.weight(t), 0)
        }
        XCTAssertEqual(Interpolation.cosine.weight(0), 0)
        XCTAssertEqual(Interpolation.cosine.weight(0.25), (1 - 0.5.squareRoot()) / 2, accuracy: 1e-15)
        XCTAssertEqual(Interpolation.cosine.weight(0.5), 0.5, accuracy: 1e-15)
        XCTAssertEqual(Interpolation.cosine.weight(0.75), (1 + 0.5.squareRoot()) / 2, accuracy: 1e-15)
        XCTAssertEqual(Interpolation.cosine.weight(1), 1)
    }

    private func twoKeyframes(_ interpolation: Interpolation,
                              _ a: Distribution = .logitNormal(mean: 1, std: 1),
                              _ b: Distribution = .logitNormal(mean: -1, std: 2)) throws -> SigmaSchedule {
        try SigmaSchedule(sigmaMin: 0, sigmaMax: 1, interpolation: interpolation,
                          keyframes: [Keyframe(atStep: 100, distribution: a), Keyframe(atStep: 300, distribution: b)])
    }

    private func components(_ schedule: SigmaSchedule, _ step: Int64) -> [WeightedDistribution] {
        schedule.distribution(atStep: step).components
    }

    func testFirstKeyframeHoldsBeforeAndLastAfter() throws {
        let schedule = try twoKeyframes(.linear)
        for step: Int64 in [Int64.min, -5, 0, 99, 100] {
            XCTAssertEqual(components(schedule, step), [.init(weight: 1, distribution: .logitNormal(mean: 1, std: 1))])
        }
        for step: Int64 in [300, 301, 1_000_000, Int64.max] {
            XCTAssertEqual(components(schedule, step), [.init(weight: 1, distribution: .logitNormal(mean: -1, std: 2))])
        }
    }

    func testParametersInterpolateForTheSameDistribution() throws {
        XCTAssertEqual(components(try twoKeyframes(.linear), 150),
                       [.init(weight: 1, distribution: .logitNormal(mean: 0.5, std: 1.25))])
        guard case let .logitNormal(mean, std) = components(try twoKeyframes(.cosine), 150)[0].distribution else {
            return XCTFail("expected one logit-normal")
        }
        let w = (1 - cos(Double.pi / 4)) / 2
        XCTAssertEqual(mean, 1 - 2 * w, accuracy: 1e-15)
        XCTAssertEqual(std, 1 + w, accuracy: 1e-15)
        XCTAssertEqual(components(try twoKeyframes(.hold), 299),
                       [.init(weight: 1, distribution: .logitNormal(mean: 1, std: 1))])
        XCTAssertEqual(components(try twoKeyframes(.linear, .uniform, .uniform), 200),
                       [.init(weight: 1, distribution: .uniform)])
    }

    func testDifferentDistributionsCrossFade() throws {
        let a = Distribution.uniform, b = Distribution.logitNormal(mean: 0, std: 1)
        XCTAssertEqual(components(try twoKeyframes(.linear, a, b), 250),
                       [.init(weight: 0.25, distribution: a), .init(weight: 0.75, distribution: b)])
        XCTAssertEqual(components(try twoKeyframes(.hold, a, b), 250), [.init(weight: 1, distribution: a)])
        XCTAssertEqual(components(try twoKeyframes(.hold, a, b), 300), [.init(weight: 1, distribution: b)])
    }

    func testParametersOfEveryFamilyInterpolate() throws {
        func midway(_ a: Distribution, _ b: Distribution) throws -> [WeightedDistribution] {
            components(try twoKeyframes(.linear, a, b), 200)
        }
        XCTAssertEqual(try midway(.mode(scale: 1), .mode(scale: -0.5)), [.init(weight: 1, distribution: .mode(scale: 0.25))])
        XCTAssertEqual(try midway(.beta(a: 1, b: 4), .beta(a: 3, b: 2)), [.init(weight: 1, distribution: .beta(a: 2, b: 3))])
        XCTAssertEqual(try midway(.cosmap, .cosmap), [.init(weight: 1, distribution: .cosmap)])
        // Mixtures of the same structure interpolate weights and parameters (weights are normalised first).
        let mixtureA = Distribution.mixture([MixtureComponent(weight: 3, distribution: .uniform),
                                             MixtureComponent(weight: 1, distribution: .mode(scale: 1))])
        let mixtureB = Distribution.mixture([MixtureComponent(weight: 1, distribution: .uniform),
                                             MixtureComponent(weight: 3, distribution: .mode(scale: 0))])
        XCTAssertEqual(try midway(mixtureA, mixtureB),
                       [.init(weight: 1, distribution: .mixture([MixtureComponent(weight: 0.5, distribution: .uniform),
                                                                 MixtureComponent(weight: 0.5, distribution: .mode(scale: 0.5))]))])
        // Different structures, and discrete distributions, cross-fade.
        let mixtureC = Distribution.mixture([MixtureComponent(weight: 1, distribution: .cosmap),
                                             MixtureComponent(weight: 1, distribution: .uniform)])
        XCTAssertEqual(try midway(mixtureA, mixtureC).count, 2)
        let discreteA = Distribution.discrete(values: [0.2], weights: [1]), discreteB = Distribution.discrete(values: [0.8], weights: [1])
        XCTAssertEqual(try midway(discreteA, discreteB),
                       [.init(weight: 0.5, distribution: discreteA), .init(weight: 0.5, distribution: discreteB)])
    }

    func testSegmentsOfALongerCurriculum() throws {
        let keyframes = [Keyframe(atStep: 0, distribution: .uniform),
                         Keyframe(atStep: 10, distribution: .logitNormal(mean: 0, std: 1)),
                         Keyframe(atStep: 20, distribution: .logitNormal(mean: 2, std: 1)),
                         Keyframe(atStep: 40, distribution: .uniform)]
        let schedule = try SigmaSchedule(sigmaMin: 0, sigmaMax: 1, interpolation: .linear, keyframes: keyframes)
        XCTAssertEqual(components(schedule, 5), [.init(weight: 0.5, distribution: .uniform),
                                                 .init(weight: 0.5, distribution: .logitNormal(mean: 0, std: 1))])
        XCTAssertEqual(components(schedule, 15), [.init(weight: 1, distribution: .logitNormal(mean: 1, std: 1))])
        XCTAssertEqual(components(schedule, 20), [.init(weight: 1, distribution: .logitNormal(mean: 2, std: 1))])
        XCTAssertEqual(components(schedule, 30), [.init(weight: 0.5, distribution: .logitNormal(mean: 2, std: 1)),
                                                  .init(weight: 0.5, distribution: .uniform)])
    }

    func testSigmaIsTheQuantileOfTheResolvedDistribution() throws {
        let schedule = try SigmaSchedule(
            sigmaMin: 0.1, sigmaMax: 0.9, interpolation: .cosine,
            keyframes: [Keyframe(atStep: 0, distribution: .uniform),
                        Keyframe(atStep: 100, distribution: .logitNormal(mean: 0.5, std: 1))])
        for step: Int64 in [0, 37, 100] {
            for u in [0.001, 0.3, 0.5, 0.77, 0.999] {
                XCTAssertEqual(schedule.sigma(uniform: u, step: step), schedule.distribution(atStep: step).quantile(u))
            }
        }
        XCTAssertEqual(schedule.sigma(uniform: 0.25, step: 0), 0.1 + 0.8 * 0.25, accuracy: 1e-15)
    }

    func testConstantSigma() throws {
        let schedule = try SigmaSchedule(sigmaMin: 0.4, sigmaMax: 0.4, interpolation: .linear,
                                         keyframes: [Keyframe(atStep: 0, distribution: .logitNormal(mean: 0, std: 1))])
        for u in [0.0, 0.01, 0.5, 1] {
            XCTAssertEqual(schedule.sigma(uniform: u, step: 12), 0.4)
        }
    }

    private func assertRejected(
        _ min: Double = 0, _ max: Double = 1, _ keyframes: [Keyframe], _ keyPath: String, _ message: String,
        file: StaticString = #filePath, line: UInt = #line
    ) {
        do {
            _ = try SigmaSchedule(sigmaMin: min, sigmaMax: max, interpolation: .linear, keyframes: keyframes)
            XCTFail("accepted; expected \(keyPath) to be rejected", file: file, line: line)
        } catch {
            XCTAssertEqual(error.keyPath, keyPath, file: file, line: line)
            XCTAssertTrue(error.message.contains(message), "\(error)", file: file, line: line)
            XCTAssertEqual(error.description, "\(keyPath): \(error.message)", file: file, line: line)
        }
    }

    func testInvalidSchedulesAreRejectedByKey() {
        let ok = [Keyframe(atStep: 0, distribution: .uniform)]
        assertRejected(-0.1, 1, ok, "sigma_min", "must be in [0, 1], got -0.1")
        assertRejected(.nan, 1, ok, "sigma_min", "must be in [0, 1]")
        assertRejected(0, 1.5, ok, "sigma_max", "must be in [0, 1], got 1.5")
        assertRejected(0, .infinity, ok, "sigma_max", "must be in [0, 1]")
        assertRejected(0.6, 0.5, ok, "sigma_max", "must be >= sigma_min (0.6), got 0.5")
        assertRejected(0, 1, [], "curriculum", "at least one keyframe")
        assertRejected(0, 1, [Keyframe(atStep: -1, distribution: .uniform)], "curriculum[0].at_step", "must be >= 0, got -1")
        assertRejected(0, 1, [Keyframe(atStep: 5, distribution: .uniform), Keyframe(atStep: 5, distribution: .uniform)],
                       "curriculum[1].at_step", "greater than the previous keyframe's at_step (5), got 5")
        assertRejected(0, 1, [Keyframe(atStep: 0, distribution: .uniform), Keyframe(atStep: 9, distribution: .uniform),
                              Keyframe(atStep: 3, distribution: .uniform)],
                       "curriculum[2].at_step", "got 3")
        assertRejected(0, 1, [Keyframe(atStep: 0, distribution: .uniform),
                              Keyframe(atStep: 1, distribution: .logitNormal(mean: 0, std: -1))],
                       "curriculum[1].std", "must be > 0 and finite, got -1.0")
        assertRejected(0, 1, [Keyframe(atStep: 0, distribution: .logitNormal(mean: 0, std: 0))],
                       "curriculum[0].std", "must be > 0")
        assertRejected(0, 1, [Keyframe(atStep: 0, distribution: .logitNormal(mean: 0, std: .infinity))],
                       "curriculum[0].std", "finite")
        assertRejected(0, 1, [Keyframe(atStep: 0, distribution: .logitNormal(mean: .nan, std: 1))],
                       "curriculum[0].mean", "must be finite")
    }

    func testFirstKeyframeMayStartLate() throws {
        let schedule = try SigmaSchedule(sigmaMin: 0, sigmaMax: 1, interpolation: .linear,
                                         keyframes: [Keyframe(atStep: 5000, distribution: .uniform)])
        XCTAssertEqual(schedule.keyframes.first?.atStep, 5000)
        XCTAssertEqual(schedule.sigma(uniform: 0.3, step: 0), 0.3)
    }
}
