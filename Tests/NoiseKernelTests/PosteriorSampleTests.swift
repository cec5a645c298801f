import Foundation
import XCTest
import NoiseKernel
import NoiseKernelCore

/// z_0 = mean + exp(logvar / 2) · ξ: ξ is eps of the derived seed, the arithmetic is f32 within a
/// few ulp of exact, any split gives the same bytes, and non-finite inputs are reported.
final class PosteriorSampleTests: XCTestCase {
    let sample = PosteriorSample(seed: 0xABCD_0123_4567)

    private func draw(type: ElementType, samples: Int, elements: Int, mean: (Int) -> Float, logvar: (Int) -> Float,
                      ranges: [Range<Int>]? = nil, implementation: NoiseKernel.Implementation = .best)
        -> (z0: [Float], finiteness: [PosteriorSample.Finiteness]) {
        let total = samples * elements
        var meanBytes = [UInt8](repeating: 0, count: total * type.byteCount), logvarBytes = meanBytes
        meanBytes.withUnsafeMutableBytes { raw in for i in 0..<total { type.store(mean(i), to: raw.baseAddress!, at: i) } }
        logvarBytes.withUnsafeMutableBytes { raw in for i in 0..<total { type.store(logvar(i), to: raw.baseAddress!, at: i) } }
        var z0 = [Float](repeating: .nan, count: total)
        let ids = (0..<samples).map { UInt64($0) * 31 + 5 }
        var seen: [PosteriorSample.Finiteness] = []
        meanBytes.withUnsafeBytes { meanRaw in
            logvarBytes.withUnsafeBytes { logvarRaw in
                ids.withUnsafeBufferPointer { idView in
                    z0.withUnsafeMutableBufferPointer { out in
                        let batch = PosteriorSample.Batch(mean: meanRaw, logvar: logvarRaw, type: type, sampleCount: samples,
                                                          elementsPerSample: elements, noiseIDs: idView, z0: out)
                        for range in ranges ?? [0..<total] {
                            seen.append(sample.draw(batch, elements: range, implementation: implementation))
                        }
                    }
                }
            }
        }
        return (z0, seen)
    }

    func testZ0IsMeanPlusStandardDeviationTimesXi() {
        for type in ElementType.allCases {
            let elements = 203
            let mean = { (i: Int) in Float(i % 13) * 0.25 - 1.5 }, logvar = { (i: Int) in Float(i % 29) * 0.5 - 8 }
            let (z0, seen) = draw(type: type, samples: 3, elements: elements, mean: mean, logvar: logvar)
            XCTAssertEqual(seen, [PosteriorSample.Finiteness()])
            let xiStream = NoiseStream(seed: 0xABCD_0123_4567 ^ (0x504F_5354 << 32))
            for b in 0..<3 {
                var xi = [Float](repeating: 0, count: elements)
                xi.withUnsafeMutableBufferPointer { xiStream.fill(noiseID: UInt64(b) * 31 + 5, elements: 0..<elements, into: $0) }
                for e in 0..<elements {
                    let i = b * elements + e
                    // The inputs as stored in `type`, then exact math.
                    let m = Double(type.rounded(mean(i))), lv = Double(type.rounded(logvar(i)))
                    let exact = m + Foundation.exp(lv / 2) * Double(xi[e])
                    let scale = abs(m) + Foundation.exp(lv / 2) * abs(Double(xi[e]))
                    XCTAssertEqual(Double(z0[i]), exact, accuracy: 4e-7 * scale + 1e-30, "\(type) #\(i)")
                }
            }
        }
    }

    func testAnySplitGivesIdenticalValues() {
        let mean = { (i: Int) in Float(i % 7) - 3 }, logvar = { (i: Int) in Float(i % 5) - 2 }
        let whole = draw(type: .bf16, samples: 4, elements: 130, mean: mean, logvar: logvar).z0
        let split = draw(type: .bf16, samples: 4, elements: 130, mean: mean, logvar: logvar,
                         ranges: [0..<1, 1..<131, 131..<300, 300..<520]).z0
        XCTAssertEqual(whole.map(\.bitPattern), split.map(\.bitPattern))
    }

    func testEveryImplementationDrawsTheSameBits() throws {
        let implementations = NoiseKernel.Implementation.allCases.filter(\.isAvailable)
        guard implementations.count > 1 else { throw XCTSkip("only \(implementations) runs on this CPU") }
        // Logvars past the clamp at both ends and NaN among them: the clamp must agree too.
        let logvar = { (i: Int) -> Float in [Float(-400), 300, .nan, -3.5, 0.25, 17][i % 6] + Float(i % 7) * 0.125 }
        for type in ElementType.allCases {
            let results = implementations.map {
                draw(type: type, samples: 3, elements: 157, mean: { Float($0 % 11) - 5 }, logvar: logvar,
                     ranges: [0..<100, 100..<471], implementation: $0).z0.map(\.bitPattern)
            }
            for (implementation, result) in zip(implementations, results) {
                XCTAssertEqual(result, results[0], "\(implementation) \(type)")
            }
        }
    }

    func testNonFiniteMeanOrLogvarIsReported() {
        let nanAt = 150
        let meanNaN = draw(type: .f32, samples: 2, elements: 101, mean: { $0 == nanAt ? .nan : 0 }, logvar: { _ in 0 }).finiteness
        XCTAssertEqual(meanNaN, [PosteriorSample.Finiteness(mean: false, logvar: true)])
        // In the scalar tail too (the last 202 % 8 = 2 elements).
        let logvarInf = draw(type: .f16, samples: 2, elements: 101, mean: { _ in 0 }, logvar: { $0 == 201 ? .infinity : 0 }).finiteness
        XCTAssertEqual(logvarInf, [PosteriorSample.Finiteness(mean: true, logvar: false)])
    }
}
