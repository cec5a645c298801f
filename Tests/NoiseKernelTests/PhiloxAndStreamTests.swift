import Foundation
import XCTest
import NoiseKernel
import NoiseKernelCore
import NoisedTestSupport

final class PhiloxAndStreamTests: XCTestCase {
    func testPhiloxKnownAnswers() {
        XCTAssertEqual(Philox4x32_10.block(counter: .zero, key: .zero),
                       SIMD4(0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8))
        XCTAssertEqual(Philox4x32_10.block(counter: SIMD4(repeating: 0xffff_ffff), key: SIMD2(repeating: 0xffff_ffff)),
                       SIMD4(0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd))
        XCTAssertEqual(Philox4x32_10.block(counter: SIMD4(0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344),
                                           key: SIMD2(0xa4093822, 0x299f31d0)),
                       SIMD4(0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1))
    }

    func testVectorPhiloxMatchesScalar() {
        var random = SplitMix64(seed: 11)
        let key = SIMD2(UInt32(truncatingIfNeeded: random.next()), UInt32(truncatingIfNeeded: random.next()))
        func words() -> SIMD8<UInt32> { SIMD8((0..<8).map { _ in UInt32(truncatingIfNeeded: random.next()) }) }
        let a = Counters8(x0: words(), x1: words(), x2: words(), x3: words())
        let b = Counters8(x0: words(), x1: words(), x2: words(), x3: words())
        let (outA, outB) = Philox4x32_10.block8x2(a, b, key: key)
        for (input, output) in [(a, outA), (b, outB)] {
            for lane in 0..<8 {
                let expected = Philox4x32_10.block(
                    counter: SIMD4(input.x0[lane], input.x1[lane], input.x2[lane], input.x3[lane]), key: key)
                XCTAssertEqual(SIMD4(output.x0[lane], output.x1[lane], output.x2[lane], output.x3[lane]), expected)
            }
        }
    }

    func testSixteenBlocksMatchScalar() {
        var random = SplitMix64(seed: 12)
        for _ in 0..<20 {
            let key = SIMD2(UInt32(truncatingIfNeeded: random.next()), UInt32(truncatingIfNeeded: random.next()))
            let groupLow = UInt32(truncatingIfNeeded: random.next()) & ~15
            let (groupHigh, idLow, idHigh) = (UInt32(truncatingIfNeeded: random.next()),
                                              UInt32(truncatingIfNeeded: random.next()),
                                              UInt32(truncatingIfNeeded: random.next()))
            let order = NoiseBlockGenerator.laneGroups
            let (first, second) = Philox4x32_10.sixteenBlocks(
                groupLow: groupLow, groupHigh: groupHigh, idLow: idLow, idHigh: idHigh, key: key)
            for (set, output) in [first, second].enumerated() {
                for lane in 0..<8 {
                    let group = groupLow + UInt32(8 * set) + order[lane]
                    let expected = Philox4x32_10.block(counter: SIMD4(group, groupHigh, idLow, idHigh), key: key)
                    XCTAssertEqual(SIMD4(output.x0[lane], output.x1[lane], output.x2[lane], output.x3[lane]), expected)
                }
            }
        }
    }

    func testEpsMatchesFloat64Reference() {
        var maxError = 0.0
        for seed: UInt64 in [0, 1, 0xDEAD_BEEF_0123_4567, .max] {
            for id: UInt64 in [0, 5, 1 << 40, .max] {
                let range = 1000..<1000 + 4099
                let eps = epsValues(NoiseStream(seed: seed), id: id, range)
                for (offset, value) in eps.enumerated() {
                    let expected = Reference.eps(seed: seed, noiseID: id, element: range.lowerBound + offset)
                    maxError = max(maxError, abs(Double(value) - expected))
                }
            }
        }
        XCTAssertLessThanOrEqual(maxError, 5e-6)
    }

    /// The transform on chosen Philox outputs: u next to 1 and 0, angles next to every quarter turn
    /// and the wrap-around at 2^31.
    func testBoxMullerEdgeCases() {
        let uWords: [UInt32] = [0xffff_ffff, 0xffff_ff00, 0xffff_feff, 0xfeff_ffff, 0x8000_0000, 0x7fff_ffff,
                                0xb504_f333, 0xb504_f334, 0x5a82_7999, 0x0000_00ff, 0, 0x100, 0x1ff, 0xffff_0000]
        var angleWords: [UInt32] = []
        for quarter: UInt32 in [0, 0x2000_0000, 0x4000_0000, 0x6000_0000, 0x8000_0000, 0xa000_0000, 0xc000_0000, 0xe000_0000] {
            for delta: Int32 in [-2, -1, 0, 1, 2, 12345] {
                angleWords.append(quarter &+ UInt32(bitPattern: delta))
            }
        }
        angleWords += [0x7fff_ffff, 0xffff_ffff, 0x3fff_ffff, 0xbfff_ffff]
        var cases: [SIMD4<UInt32>] = []
        for (i, u) in uWords.enumerated() {
            for (j, a) in angleWords.enumerated() {
                cases.append(SIMD4(u, a, uWords[(i + j) % uWords.count], angleWords[(i * 7 + j) % angleWords.count]))
            }
        }
        var maxError = 0.0
        for start in stride(from: 0, to: cases.count, by: 8) {
            let chunk = (0..<8).map { cases[min(start + $0, cases.count - 1)] }
            // Lane i of the transform's input holds group laneGroups[i].
            let lanes = (0..<8).map { chunk[Int(NoiseBlockGenerator.laneGroups[$0])] }
            let counters = Counters8(
                x0: SIMD8(lanes.map(\.x)), x1: SIMD8(lanes.map(\.y)), x2: SIMD8(lanes.map(\.z)), x3: SIMD8(lanes.map(\.w)))
            let (v0, v1, v2, v3) = NoiseBlockGenerator.transform(counters)
            let values = [v0, v1, v2, v3].flatMap { v in (0..<8).map { v[$0] } }
            for (group, x) in chunk.enumerated() {
                for (lane, expected) in Reference.boxMuller(x).enumerated() {
                    maxError = max(maxError, abs(Double(values[4 * group + lane]) - expected))
                }
            }
        }
        XCTAssertLessThanOrEqual(maxError, 5e-6)
        // u rounding to 1 would give r = 0 here; the exact reduction keeps r ~ 2.4e-4.
        let top = NoiseBlockGenerator.transform(Counters8(
            x0: SIMD8(repeating: 0xffff_ffff), x1: .zero, x2: .zero, x3: .zero)).0
        XCTAssertEqual(Double(top[0]), (-2 * log1p(-0x1p-25)).squareRoot(), accuracy: 1e-10)
    }

    func testFillOfAnySubrangeEqualsTheWhole() {
        let stream = NoiseStream(seed: 42)
        let whole = epsValues(stream, id: 9, 0..<1000)
        var random = SplitMix64(seed: 3)
        for _ in 0..<50 {
            let a = random.below(1001), b = random.below(1001)
            let range = min(a, b)..<max(a, b)
            XCTAssertEqual(epsValues(stream, id: 9, range).map(bits), whole[range].map(bits), "range \(range)")
        }
    }

    func testSigmaUniformsFollowTheirDefinition() {
        let stream = NoiseStream(seed: 0x0123_4567_89AB_CDEF)
        let x = Philox4x32_10.block(counter: SIMD4(0, 0, 77, 0), key: SIMD2(0x89AB_CDEF, 0x0123_4567 ^ 0x5349_474D))
        let (u1, u2) = stream.sigmaUniforms(noiseID: 77)
        XCTAssertEqual(u1, (Double(UInt64(x.x) << 21 | UInt64(x.y) >> 11) + 0.5) * 0x1p-53)
        XCTAssertEqual(u2, (Double(UInt64(x.z) << 21 | UInt64(x.w) >> 11) + 0.5) * 0x1p-53)
        // Uniform on (0, 1): KS over many ids, and no coupling between the two.
        let n = 100_000
        var first = [Double](), second = [Double]()
        for id in 0..<n {
            let (a, b) = stream.sigmaUniforms(noiseID: UInt64(id))
            XCTAssertTrue(a > 0 && a < 1 && b > 0 && b < 1)
            first.append(a)
            second.append(b)
        }
        XCTAssertLessThan(Statistics.ksStatistic(first, cdf: { $0 }) * Double(n).squareRoot(), 2.2)
        XCTAssertLessThan(abs(Statistics.correlation(first, second)), 4.5 / Double(n).squareRoot())
    }
}
