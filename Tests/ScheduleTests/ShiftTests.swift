import XCTest
import Schedule
import NoisedTestSupport

final class ShiftTests: XCTestCase {
    private func schedule(_ keyframes: [Keyframe], min: Double = 0, max: Double = 1,
                          _ interpolation: Interpolation = .linear) throws -> SigmaSchedule {
        try SigmaSchedule(sigmaMin: min, sigmaMax: max, interpolation: interpolation, keyframes: keyframes)
    }

    func testFixedShiftOfUniformHasTheClosedFormCDF() throws {
        // x ~ U[0, 1], y = 3x / (1 + 2x): P(Y <= y) = y / (3 - 2y).
        let resolved = try schedule([Keyframe(atStep: 0, distribution: .uniform, shift: .fixed(3))]).distribution(atStep: 0)
        for y in stride(from: 0.0, through: 1, by: 0.05) {
            XCTAssertEqual(resolved.cdf(y), y / (3 - 2 * y), accuracy: 1e-15)
        }
        XCTAssertEqual(resolved.quantile(0.5), 0.75, accuracy: 1e-15)
        // E[3X / (1 + 2X)] = 1.5 - 0.75 ln 3.
        XCTAssertEqual(resolved.mean, 0.67604078349891773145, accuracy: 1e-10)
    }

    /// Shift is applied before the sigma range mapping, and fits direct simulation.
    func testShiftedLogitNormalFitsDirectSimulation() throws {
        let resolved = try schedule([Keyframe(atStep: 0, distribution: .logitNormal(mean: 0, std: 1), shift: .fixed(3))],
                                    min: 0.1, max: 0.9).distribution(atStep: 0)
        var generator = SplitMix64(seed: 51)
        let samples = (0..<20_000).map { _ -> Double in
            let x = logisticSigmoid(generator.normal())
            return 0.1 + 0.8 * (3 * x / (1 + 2 * x))
        }
        XCTAssertGreaterThanOrEqual(KolmogorovSmirnov(samples, cdf: resolved.cdf).pValue, 1e-4)
    }

    func testSequenceLengthShiftFollowsFlux() {
        let flux = SequenceLengthShift()
        // A 1024x1024 image: 128x128 latents, 2x2 patches, 4096 tokens, mu = max_shift = 1.15.
        XCTAssertEqual(flux.sequenceLength(latentShape: [4, 16, 128, 128]), 4096)
        XCTAssertEqual(flux.value(latentShape: [4, 16, 128, 128]), exp(1.15), accuracy: 1e-14)
        XCTAssertEqual(flux.value(latentShape: [1, 16, 32, 32]), exp(0.5), accuracy: 1e-14)
        // A video latent [B, C, T, H, W]: the patch [1, 2, 2] covers T, H and W.
        XCTAssertEqual(flux.sequenceLength(latentShape: [2, 12, 7, 60, 106]), 7 * 30 * 53)
        // mu is linear in the token count and extrapolates past max_seq_len.
        let tokens = 2048.0
        XCTAssertEqual(flux.value(latentShape: [1, 16, 64, 128]),
                       exp(0.5 + (1.15 - 0.5) * (tokens - 256) / (4096 - 256)), accuracy: 1e-14)
        XCTAssertEqual(flux.value(latentShape: [1, 16, 256, 256]),
                       exp(0.5 + (1.15 - 0.5) * (16384 - 256) / (4096 - 256)), accuracy: 1e-12)
        XCTAssertEqual(flux.value(latentShape: nil), exp(0.5), accuracy: 1e-15)
    }

    func testPackedLatentsCountTheirSecondDimAsTokens() {
        // Flux trainers pack 2x2 patches of a 1024x1024 image's 16x128x128 latent into [B, 4096, 64].
        let packed = SequenceLengthShift(layout: .packed)
        XCTAssertEqual(packed.sequenceLength(latentShape: [2, 4096, 64]), 4096)
        XCTAssertEqual(packed.value(latentShape: [2, 4096, 64]), SequenceLengthShift().value(latentShape: [2, 16, 128, 128]))
        // Read as spatial, the same tensor is 32 tokens: the mistake the layout exists to prevent.
        XCTAssertEqual(SequenceLengthShift().sequenceLength(latentShape: [2, 4096, 64]), 32)
    }

    func testTheScheduleNamesTheTokensAndShiftOfEachShapeDependentKeyframe() throws {
        let schedule = try SigmaSchedule(sigmaMin: 0, sigmaMax: 1, interpolation: .linear, keyframes: [
            Keyframe(atStep: 0, distribution: .uniform, shift: .fixed(3)),
            Keyframe(atStep: 100, distribution: .uniform, shift: .sequenceLength(SequenceLengthShift(layout: .packed))),
        ])
        let shifts = schedule.sequenceLengthShifts(latentShape: [1, 1024, 64])
        XCTAssertEqual(shifts.map(\.atStep), [100])
        XCTAssertEqual(shifts.map(\.tokens), [1024])
        XCTAssertEqual(shifts[0].shift, exp(0.5 + 0.65 * (1024 - 256) / 3840), accuracy: 1e-14)
    }

    /// exp(mu) overflowed past about 4.2 M tokens (and underflowed below), making sigma NaN: mu is
    /// clamped to ±maxLogShift, and sigma stays finite at every u including 0 and 1.
    func testSequenceLengthShiftStaysFiniteForAnyTokenCount() throws {
        let flux = SequenceLengthShift()
        let bound = Shift.maxLogShift
        XCTAssertEqual(flux.value(latentShape: [1, 1, 16, 1024, 1024]), exp(bound))
        XCTAssertEqual(flux.value(latentShape: [1, 1, Int(Int32.max), 1 << 16, 1 << 16]), exp(bound))
        XCTAssertEqual(SequenceLengthShift(baseShift: 1, maxShift: -1).value(latentShape: [1, 1, 1 << 20, 1 << 20]), exp(-bound))
        XCTAssertEqual(SequenceLengthShift(baseShift: 1, maxShift: 1).value(latentShape: [1, 1, Int.max, Int.max, Int.max]), exp(1))
        for shape in [[1, 1, 16, 1024, 1024], [1, 16, 0, 0], [1, 1, 1 << 20, 1 << 20]] {
            for maxShift in [-10.0, 10] {
                let schedule = try schedule([Keyframe(atStep: 0, distribution: .logitNormal(mean: 0, std: 1),
                                                      shift: .sequenceLength(SequenceLengthShift(maxShift: maxShift)))])
                for u in [0, 1e-300, 1e-9, 0.5, 1 - 1e-16, 1] {
                    let sigma = schedule.sigma(uniform: u, step: 0, latentShape: shape)
                    XCTAssertTrue(sigma.isFinite && sigma >= 0 && sigma <= 1, "σ = \(sigma) at u = \(u), \(shape)")
                }
                XCTAssertEqual(schedule.sigma(uniform: 0, step: 0, latentShape: shape), 0)
                XCTAssertEqual(schedule.sigma(uniform: 1, step: 0, latentShape: shape), 1)
            }
        }
    }

    func testScheduleUsesTheLatentShape() throws {
        let schedule = try schedule([Keyframe(atStep: 0, distribution: .uniform, shift: .sequenceLength(SequenceLengthShift()))])
        XCTAssertTrue(schedule.usesLatentShape)
        let s = exp(1.15)
        XCTAssertEqual(schedule.sigma(uniform: 0.5, step: 0, latentShape: [1, 16, 128, 128]), s * 0.5 / (1 + (s - 1) * 0.5),
                       accuracy: 1e-15)
        XCTAssertEqual(schedule.sigma(uniform: 0.5, step: 0), exp(0.5) * 0.5 / (1 + (exp(0.5) - 1) * 0.5), accuracy: 1e-15)
        XCTAssertFalse(try self.schedule([Keyframe(atStep: 0, distribution: .uniform, shift: .fixed(2))]).usesLatentShape)
    }

    func testShiftInterpolatesWithTheParameters() throws {
        let schedule = try schedule([Keyframe(atStep: 0, distribution: .logitNormal(mean: 0, std: 1), shift: .fixed(3)),
                                     Keyframe(atStep: 100, distribution: .logitNormal(mean: 1, std: 1))])
        XCTAssertEqual(schedule.distribution(atStep: 25).components,
                       [WeightedDistribution(weight: 1, distribution: .logitNormal(mean: 0.25, std: 1), shift: 2.5)])
        let crossFade = try self.schedule([Keyframe(atStep: 0, distribution: .uniform, shift: .fixed(3)),
                                           Keyframe(atStep: 100, distribution: .cosmap, shift: .fixed(0.5))])
        XCTAssertEqual(crossFade.distribution(atStep: 25).components,
                       [WeightedDistribution(weight: 0.75, distribution: .uniform, shift: 3),
                        WeightedDistribution(weight: 0.25, distribution: .cosmap, shift: 0.5)])
    }

    func testInvalidShiftsAreNamed() {
        func problem(_ shift: Shift) -> String? {
            do {
                _ = try schedule([Keyframe(atStep: 0, distribution: .uniform), Keyframe(atStep: 1, distribution: .uniform, shift: shift)])
                return nil
            } catch {
                return "\(error)"
            }
        }
        let range = "e^-10.0...e^10.0 (4.5399929762484854e-05...22026.465794806718)"
        XCTAssertEqual(problem(.fixed(0)), "curriculum[1].shift: must be in \(range), got 0.0")
        XCTAssertEqual(problem(.fixed(.infinity)), "curriculum[1].shift: must be in \(range), got inf")
        XCTAssertEqual(problem(.fixed(.nan)), "curriculum[1].shift: must be in \(range), got nan")
        XCTAssertNil(problem(.fixed(Shift.range.upperBound)))
        XCTAssertEqual(problem(.sequenceLength(SequenceLengthShift(maxShift: .nan))),
                       "curriculum[1].shift.max_shift: must be in -10.0...10.0, got nan")
        XCTAssertEqual(problem(.sequenceLength(SequenceLengthShift(baseShift: 555))),
                       "curriculum[1].shift.base_shift: must be in -10.0...10.0, got 555.0")
        XCTAssertEqual(problem(.sequenceLength(SequenceLengthShift(baseSequenceLength: 0))),
                       "curriculum[1].shift.base_seq_len: must be >= 1, got 0.0")
        XCTAssertEqual(problem(.sequenceLength(SequenceLengthShift(baseSequenceLength: 4096, maxSequenceLength: 4096))),
                       "curriculum[1].shift.max_seq_len: must be > base_seq_len (4096.0), got 4096.0")
        XCTAssertEqual(problem(.sequenceLength(SequenceLengthShift(patch: [1, 0, 2]))),
                       "curriculum[1].shift.patch[1]: must be >= 1, got 0")
        XCTAssertEqual(problem(.sequenceLength(SequenceLengthShift(patch: []))), "curriculum[1].shift.patch: must not be empty")
    }
}
