import XCTest
import NoiseKernel
import NoiseKernelCore

/// The one-pass posterior (`PosteriorSample.noise`): the bytes of drawing z_0 into f32 and then
/// noising it, for every implementation, dtype pair, σ layout and split, with what it saw reported.
final class PosteriorPassTests: XCTestCase {
    let seed: UInt64 = 0x5EED_0000_0123_4567
    let samples = 3, frames = 3, frameElements = 45

    private var implementations: [NoiseKernel.Implementation] { NoiseKernel.Implementation.allCases.filter(\.isAvailable) }

    /// Means over several binades, and logvars past the exponential's clamp at both ends (z_0
    /// overflows to ±Inf at some of the upper ones).
    private func mean(_ index: Int) -> Float { KernelTests.awkwardValue(index) }
    private func logvar(_ index: Int) -> Float { [Float(-400), 300, -3.5, 0.25, 6, -11][index % 6] + Float(index % 7) * 0.125 }

    /// Buffers of `samples` samples of three frames, σ changing per frame with 0 and 1 among them.
    private func buffers(input: ElementType, output: ElementType, values: (Int) -> Float) -> BatchBuffers {
        let buffers = BatchBuffers(samples: samples, elements: frames * frameElements, input: input, output: output, values: values)
        buffers.layout = FrameLayout(frames: frames, frameElements: frameElements)
        buffers.sigmas = (0..<(samples * frames)).map { [0, 0.3, 1, 0.75, 0.5][$0 % 5] }
        return buffers
    }

    private func logvarBytes(_ type: ElementType, count: Int, values: (Int) -> Float) -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: count * type.byteCount)
        bytes.withUnsafeMutableBytes { raw in for i in 0..<count { type.store(values(i), to: raw.baseAddress!, at: i) } }
        return bytes
    }

    func testOnePassEqualsDrawingThenNoising() {
        let sample = PosteriorSample(seed: seed)
        let ranges = [0..<70, 70..<71, 71..<200, 200..<405]
        for implementation in implementations {
            let kernel = NoiseKernel(stream: NoiseStream(seed: seed), implementation: implementation)
            for input in ElementType.allCases {
                let fusedInput = buffers(input: input, output: .f32, values: mean)
                let total = fusedInput.totalElements
                let logvar = logvarBytes(input, count: total, values: logvar)
                // z_0 as `draw` makes it, in f32.
                var z0 = [Float](repeating: .nan, count: total)
                let seen = fusedInput.input.withUnsafeBytes { meanRaw in
                    logvar.withUnsafeBytes { logvarRaw in
                        fusedInput.noiseIDs.withUnsafeBufferPointer { ids in
                            z0.withUnsafeMutableBufferPointer { out in
                                sample.draw(PosteriorSample.Batch(mean: meanRaw, logvar: logvarRaw, type: input, sampleCount: samples,
                                                                  elementsPerSample: frames * frameElements, noiseIDs: ids, z0: out),
                                            elements: 0..<total, implementation: implementation)
                            }
                        }
                    }
                }
                XCTAssertEqual(seen, PosteriorSample.Finiteness())
                for output in ElementType.allCases {
                    let fused = buffers(input: input, output: output, values: mean)
                    let result = fused.noisePosterior(sample, logvar: logvar, kernel, ranges: ranges)
                    XCTAssertEqual(result.finiteness, PosteriorSample.Finiteness(), "\(implementation) \(input)->\(output)")
                    let twoPass = buffers(input: .f32, output: output, values: { z0[$0] })
                    // exp(150) clamps to e^88, which overflows z_0 where |ξ| > 2.06: both report it.
                    XCTAssertTrue(result.nonFinite, "\(implementation) \(input)->\(output)")
                    XCTAssertTrue(twoPass.run(kernel, ranges: [0..<total]))
                    XCTAssertEqual(fused.zt, twoPass.zt, "z_t, \(implementation) \(input)->\(output)")
                    XCTAssertEqual(fused.eps, twoPass.eps, "eps, \(implementation) \(input)->\(output)")
                    XCTAssertEqual(fused.clean, twoPass.clean, "z_0, \(implementation) \(input)->\(output)")
                }
            }
        }
    }

    func testNonFiniteMeanOrLogvarIsReportedInWholeAndEdgeBlocks() {
        let sample = PosteriorSample(seed: seed)
        // Element 10 sits in a whole block of the first range, 403 in the edge block of the last.
        for implementation in implementations {
            let kernel = NoiseKernel(stream: NoiseStream(seed: seed), implementation: implementation)
            for badIndex in [10, 403] {
                let meanNaN = buffers(input: .bf16, output: .f16, values: { $0 == badIndex ? .nan : 1 })
                let clean = logvarBytes(.bf16, count: meanNaN.totalElements, values: { _ in -2 })
                let seenNaN = meanNaN.noisePosterior(sample, logvar: clean, kernel, ranges: [0..<128, 128..<405])
                XCTAssertEqual(seenNaN.finiteness, PosteriorSample.Finiteness(mean: false, logvar: true), "\(implementation) #\(badIndex)")
                XCTAssertTrue(seenNaN.nonFinite, "\(implementation) #\(badIndex)")

                let finiteMean = buffers(input: .f32, output: .bf16, values: { _ in 1 })
                let logvarInf = logvarBytes(.f32, count: finiteMean.totalElements, values: { $0 == badIndex ? .infinity : -2 })
                let seenInf = finiteMean.noisePosterior(sample, logvar: logvarInf, kernel, ranges: [0..<128, 128..<405])
                // The clamp keeps z_0 finite; the daemon refuses the logvar on what the scan saw.
                XCTAssertEqual(seenInf.finiteness, PosteriorSample.Finiteness(mean: true, logvar: false), "\(implementation) #\(badIndex)")
                XCTAssertFalse(seenInf.nonFinite, "\(implementation) #\(badIndex)")
            }
        }
    }
}

extension BatchBuffers {
    /// Draws z_0 from `input` as the mean and `logvar`, and noises it, over each range in turn.
    func noisePosterior(_ sample: PosteriorSample, logvar: [UInt8], _ kernel: NoiseKernel, ranges: [Range<Int>])
        -> (finiteness: PosteriorSample.Finiteness, nonFinite: Bool) {
        logvar.withUnsafeBytes { logvarRaw in
            withBatch { batch in
                var finiteness = PosteriorSample.Finiteness(), nonFinite = false
                for range in ranges {
                    let seen = sample.noise(batch, logvar: logvarRaw, kernel: kernel, elements: range)
                    finiteness.mean = finiteness.mean && seen.finiteness.mean
                    finiteness.logvar = finiteness.logvar && seen.finiteness.logvar
                    nonFinite = nonFinite || seen.nonFinite
                }
                return (finiteness, nonFinite)
            }
        }
    }
}
