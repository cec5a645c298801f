import XCTest
import NoiseKernel
import NoiseKernelCore
import NoisedTestSupport

/// σ per frame: each run of a frame's elements is blended with its own σ, eps is the sample's
/// stream whatever the runs, and one frame per sample is the per-sample kernel.
final class FrameTests: XCTestCase {
    let kernel = NoiseKernel(stream: NoiseStream(seed: 0xF4A3E))
    let pairs = ElementType.allCases.flatMap { input in ElementType.allCases.map { (input, $0) } }

    /// [channels, frames, frameElements] per sample; frame sizes that cut blocks at odd offsets.
    let shapes = [(channels: 2, frames: 5, frameElements: 37), (channels: 1, frames: 3, frameElements: 64),
                  (channels: 3, frames: 4, frameElements: 100)]

    func testEveryElementTakesItsFramesSigma() {
        for (input, output) in pairs {
            for shape in shapes {
                let elements = shape.channels * shape.frames * shape.frameElements
                let buffers = BatchBuffers(samples: 3, elements: elements, input: input, output: output, values: KernelTests.awkwardValue)
                buffers.layout = FrameLayout(frames: shape.frames, frameElements: shape.frameElements)
                // σ 0 and 1 among the frames: the exact paths switch inside a sample.
                buffers.sigmas = (0..<3 * shape.frames).map { [0, 0.3, 1, 0.05, 0.9][$0 % 5] }
                buffers.run(kernel, ranges: [0..<buffers.totalElements])
                for index in 0..<buffers.totalElements {
                    let sample = index / elements, offset = index % elements
                    let frame = offset / shape.frameElements % shape.frames
                    let eps = epsValues(kernel.stream, id: buffers.noiseIDs[sample], offset..<offset + 1)[0]
                    let expected = Reference.zt(z0: buffers.inputValue(index), sigma: buffers.sigmas[sample * shape.frames + frame],
                                                eps: eps, output: output)
                    XCTAssertEqual(bits(BatchBuffers.value(buffers.zt, output, index)), bits(expected),
                                   "\(input)->\(output) \(shape) #\(index)")
                    XCTAssertEqual(bits(BatchBuffers.value(buffers.eps, output, index)), bits(output.rounded(eps)))
                }
            }
        }
    }

    func testFramesAtSigmaZeroKeepZ0BitForBit() {
        for type in ElementType.allCases {
            let buffers = BatchBuffers(samples: 2, elements: 2 * 3 * 50, input: type, output: type, values: KernelTests.awkwardValue)
            buffers.layout = FrameLayout(frames: 3, frameElements: 50)
            buffers.sigmas = [0, 0.5, 0.7, 0.2, 0.4, 0]
            buffers.run(kernel, ranges: [0..<buffers.totalElements])
            let size = type.byteCount
            for sample in 0..<2 {
                for channel in 0..<2 {
                    for frame in 0..<3 where buffers.sigmas[sample * 3 + frame] == 0 {
                        let start = (sample * 300 + channel * 150 + frame * 50) * size
                        XCTAssertEqual(buffers.zt[start..<start + 50 * size], buffers.input[start..<start + 50 * size],
                                       "\(type) sample \(sample) channel \(channel) frame \(frame)")
                    }
                }
            }
        }
    }

    func testOneFramePerSampleIsThePerSampleKernel() {
        for (input, output) in pairs {
            let plain = BatchBuffers(samples: 3, elements: 250, input: input, output: output, values: KernelTests.awkwardValue)
            plain.run(kernel, ranges: [0..<plain.totalElements])
            let framed = BatchBuffers(samples: 3, elements: 250, input: input, output: output, values: KernelTests.awkwardValue)
            framed.layout = FrameLayout(frames: 1, frameElements: 250)
            framed.run(kernel, ranges: [0..<framed.totalElements])
            XCTAssertEqual(plain.zt, framed.zt)
            XCTAssertEqual(plain.eps, framed.eps)
        }
    }

    func testAnySplitAndEveryImplementationGiveIdenticalBytes() {
        var random = SplitMix64(seed: 7)
        let implementations = NoiseKernel.Implementation.allCases.filter(\.isAvailable)
        for (input, output) in pairs {
            let shape = shapes[0], elements = shape.channels * shape.frames * shape.frameElements
            func run(_ implementation: NoiseKernel.Implementation, _ ranges: [Range<Int>]) -> BatchBuffers {
                let buffers = BatchBuffers(samples: 4, elements: elements, input: input, output: output, values: KernelTests.awkwardValue)
                buffers.layout = FrameLayout(frames: shape.frames, frameElements: shape.frameElements)
                buffers.sigmas = (0..<4 * shape.frames).map { Float($0 % 7) / 6 }
                buffers.run(NoiseKernel(stream: kernel.stream, implementation: implementation), ranges: ranges)
                return buffers
            }
            let whole = run(.best, [0..<4 * elements])
            for implementation in implementations {
                var cuts = (0..<3).map { _ in random.below(4 * elements + 1) }
                cuts = ([0, 4 * elements] + cuts).sorted()
                let split = run(implementation, zip(cuts, cuts.dropFirst()).map { $0..<$1 })
                XCTAssertEqual(split.zt, whole.zt, "\(implementation) \(input)->\(output) cuts \(cuts)")
                XCTAssertEqual(split.eps, whole.eps, "\(implementation) \(input)->\(output) cuts \(cuts)")
            }
        }
    }
}
