import Foundation
import Schedule
import XCTest
import Configuration
import NoisedTestSupport

/// Every config that decodes gives a finite σ in [0, 1], for every latent shape and uniform.
final class FiniteSigmaTests: XCTestCase {
    private static let examples = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("config/examples")

    private static let endpointUniforms = [0, 1e-300, 1e-12, 0.25, 0.5, 0.75, 1 - 1e-12, 1 - 0x1p-53, 1]

    private func assertSigmasInRange(_ schedule: SigmaSchedule, step: Int64, latentShape: [Int], uniforms: [Double],
                                     _ context: @autoclosure () -> String, file: StaticString = #filePath, line: UInt = #line) -> Bool {
        let distribution = schedule.distribution(atStep: step, latentShape: latentShape)
        for u in uniforms {
            let sigma = distribution.quantile(u)
            guard sigma.isFinite, sigma >= 0, sigma <= 1 else {
                XCTFail("σ = \(sigma) at u = \(u), step \(step), shape \(latentShape): \(context())", file: file, line: line)
                return false
            }
        }
        return true
    }

    /// The shipped Flux example with a valid F16 [1, 1, 16, 1024, 1024] batch (4 Mi tokens) sent σ = NaN.
    func testFluxExampleIsFiniteForAVeryLongSequence() throws {
        let config = try NoisedConfig.parse(
            yaml: try String(contentsOf: Self.examples.appendingPathComponent("flux-sequence-shift.yaml"), encoding: .utf8))
        let shape = [1, 1, 16, 1024, 1024]
        guard case let .sequenceLength(shift)? = config.schedule.keyframes[0].shift else { return XCTFail("no sequence-length shift") }
        XCTAssertEqual(shift.sequenceLength(latentShape: shape), 16 * 512 * 512)
        let uniforms = Self.endpointUniforms + (1..<1000).map { Double($0) / 1000 }
        XCTAssertTrue(assertSigmasInRange(config.schedule, step: 0, latentShape: shape, uniforms: uniforms, "flux example"))
        XCTAssertEqual(config.schedule.sigma(uniform: 0, step: 0, latentShape: shape), 0)
        XCTAssertEqual(config.schedule.sigma(uniform: 1, step: 0, latentShape: shape), 1)
    }

    /// Random schedules with every parameter drawn inside the range check-config accepts (fixed seed).
    func testEveryAcceptedScheduleGivesFiniteSigma() throws {
        var random = SplitMix64(seed: 0x5eed_0013)
        var checked = 0
        for round in 0..<400 {
            let yaml = RandomSchedule.yaml(using: &random)
            let config: NoisedConfig
            do {
                config = try NoisedConfig.parse(yaml: yaml)
            } catch {
                return XCTFail("round \(round): a config inside the accepted ranges was refused: \(error)\n\(yaml)")
            }
            let keyframes = config.schedule.keyframes
            for _ in 0..<4 {
                let last = keyframes.last!.atStep
                let step = Int64.random(in: 0...(last + 10), using: &random)
                let shape = RandomSchedule.latentShape(using: &random)
                let uniforms = Self.endpointUniforms + (0..<8).map { _ in Double.random(in: 0...1, using: &random) }
                guard assertSigmasInRange(config.schedule, step: step, latentShape: shape, uniforms: uniforms,
                                          "round \(round)\n\(yaml)") else { return }
                checked += 1
            }
        }
        XCTAssertEqual(checked, 1600)
    }
}

/// Schedule sections written as YAML, every value inside its documented range, extremes included.
enum RandomSchedule {
    static func yaml(using random: inout SplitMix64) -> String {
        let sigmaMin = Bool.random(using: &random) ? 0 : Double.random(in: 0...1, using: &random)
        let sigmaMax = Bool.random(using: &random) ? 1 : Double.random(in: sigmaMin...1, using: &random)
        let interpolation = ["linear", "cosine", "hold"].randomElement(using: &random)!
        var step: Int64 = 0
        var keyframes: [String] = []
        for _ in 0..<Int.random(in: 1...3, using: &random) {
            var entry = "{at_step: \(step), \(distribution(depth: 0, using: &random))"
            if Bool.random(using: &random) { entry += ", shift: \(shift(using: &random))" }
            keyframes.append(entry + "}")
            step += Int64.random(in: 1...10_000, using: &random)
        }
        return """
            schedule:
              sigma_min: \(sigmaMin)
              sigma_max: \(sigmaMax)
              interpolation: \(interpolation)
              curriculum:
            \(keyframes.map { "    - " + $0 }.joined(separator: "\n"))
            """
    }

    /// Log-uniform over [lo, hi], with the bounds themselves now and then.
    private static func logUniform(_ lo: Double, _ hi: Double, using random: inout SplitMix64) -> Double {
        switch Int.random(in: 0..<10, using: &random) {
        case 0: return lo
        case 1: return hi
        default: return exp(Double.random(in: log(lo)...log(hi), using: &random))
        }
    }

    private static func edgeOrInside(_ range: ClosedRange<Double>, using random: inout SplitMix64) -> Double {
        switch Int.random(in: 0..<6, using: &random) {
        case 0: return range.lowerBound
        case 1: return range.upperBound
        default: return Double.random(in: range, using: &random)
        }
    }

    static func shift(using random: inout SplitMix64) -> String {
        if Bool.random(using: &random) {
            return "\(logUniform(Shift.range.lowerBound, Shift.range.upperBound, using: &random))"
        }
        let mu = -Shift.maxLogShift...Shift.maxLogShift
        let baseLength = logUniform(1, 1e7, using: &random)
        let maxLength = baseLength * logUniform(1 + 1e-9, 1e6, using: &random)
        let patch = (0..<Int.random(in: 1...3, using: &random)).map { _ in String(Int.random(in: 1...4, using: &random)) }
        return "{auto: sequence_length, base_shift: \(edgeOrInside(mu, using: &random)), "
            + "max_shift: \(edgeOrInside(mu, using: &random)), base_seq_len: \(baseLength), max_seq_len: \(maxLength), "
            + "patch: [\(patch.joined(separator: ", "))]}"
    }

    static func distribution(depth: Int, using random: inout SplitMix64) -> String {
        let families = depth < 2 ? 7 : 6
        switch Int.random(in: 0..<families, using: &random) {
        case 0: return "distribution: uniform"
        case 1: return "distribution: cosmap"
        case 2:
            return "distribution: logit_normal, mean: \(Double.random(in: -20...20, using: &random)), "
                + "std: \(logUniform(1e-3, 1e2, using: &random))"
        case 3: return "distribution: mode, scale: \(Double.random(in: -1...Distribution.maximumModeScale, using: &random))"
        case 4:
            return "distribution: beta, a: \(logUniform(1e-2, 1e2, using: &random)), b: \(logUniform(1e-2, 1e2, using: &random))"
        case 5:
            let count = Int.random(in: 1...5, using: &random)
            let sigmas = (0..<count).map { _ in String(edgeOrInside(0...1, using: &random)) }
            return "distribution: discrete, sigmas: [\(sigmas.joined(separator: ", "))]"
        default:
            let components = (0..<Int.random(in: 1...3, using: &random)).map { _ in
                "{weight: \(logUniform(1e-3, 1e3, using: &random)), \(distribution(depth: depth + 1, using: &random))}"
            }
            return "distribution: mixture, components: [\(components.joined(separator: ", "))]"
        }
    }

    /// [batch, channels, spatial...] up to 2^40 tokens, empty spatial dims included.
    static func latentShape(using random: inout SplitMix64) -> [Int] {
        let spatial = (0..<Int.random(in: 0...3, using: &random)).map { _ in
            Int.random(in: 0...12, using: &random) == 0 ? 0 : Int(logUniform(1, 16384, using: &random))
        }
        return [Int.random(in: 1...8, using: &random), 16] + spatial
    }
}
