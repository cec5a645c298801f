import XCTest
import NoiseKernel
import NoiseKernelCore
import NoisedTestSupport

final class KernelTests: XCTestCase {
    let kernel = NoiseKernel(stream: NoiseStream(seed: 0x5EED))
    let pairs = ElementType.allCases.flatMap { input in ElementType.allCases.map { (input, $0) } }

    /// Values with a spread of magnitudes and signs, zeros and subnormals of every type.
    static func awkwardValue(_ index: Int) -> Float {
        var random = SplitMix64(seed: UInt64(index))
        switch index % 8 {
        case 0: return -0.0
        case 1: return 0.0
        case 2: return Float(bitPattern: UInt32(random.below(0x7fffff) + 1))  // f32 subnormal
        case 3: return 0x1p-24 * Float(random.below(1023) + 1) * (index % 16 == 3 ? -1 : 1)  // f16 subnormal
        case 4: return Float(bitPattern: 0x0001_0000) * Float(random.below(100) + 1)  // bf16 subnormal
        default: return (random.uniformFloat() - 0.5) * Float(1 << random.below(12))
        }
    }

    func testFormulaMatchesScalarReferenceForEveryTypePair() {
        for (input, output) in pairs {
            let buffers = BatchBuffers(samples: 3, elements: 203, input: input, output: output, values: Self.awkwardValue)
            buffers.sigmas = [0.25, 0.7, 1e-3]
            buffers.run(kernel, ranges: [0..<buffers.totalElements])
            for index in 0..<buffers.totalElements {
                let sample = index / 203
                let eps = epsValues(kernel.stream, id: buffers.noiseIDs[sample], index % 203..<index % 203 + 1)[0]
                let z0 = buffers.inputValue(index)
                let expected = Reference.zt(z0: z0, sigma: buffers.sigmas[sample], eps: eps, output: output)
                XCTAssertEqual(bits(BatchBuffers.value(buffers.zt, output, index)), bits(expected), "\(input)->\(output) #\(index)")
                XCTAssertEqual(bits(BatchBuffers.value(buffers.eps, output, index)), bits(output.rounded(eps)))
                XCTAssertEqual(bits(BatchBuffers.value(buffers.clean, output, index)), bits(output.rounded(z0)))
            }
        }
    }

    func testSigmaZeroAndOneAreExact() {
        for (input, output) in pairs {
            let buffers = BatchBuffers(samples: 2, elements: 130, input: input, output: output, values: Self.awkwardValue)
            buffers.sigmas = [0, 1]
            buffers.run(kernel, ranges: [0..<buffers.totalElements])
            let half = 130 * output.byteCount
            XCTAssertEqual(buffers.zt[..<half], buffers.clean[..<half], "sigma 0, \(input)->\(output)")
            XCTAssertEqual(buffers.zt[half...], buffers.eps[half...], "sigma 1, \(input)->\(output)")
            if input == output {
                XCTAssertEqual(buffers.zt[..<half], buffers.input[..<half], "sigma 0 copies z_0, \(input)")
            }
        }
    }

    func testAnySplitGivesIdenticalBytes() {
        var random = SplitMix64(seed: 99)
        for (input, output) in pairs {
            let whole = BatchBuffers(samples: 3, elements: 301, input: input, output: output, values: Self.awkwardValue)
            whole.run(kernel, ranges: [0..<whole.totalElements])
            for _ in 0..<5 {
                let split = BatchBuffers(samples: 3, elements: 301, input: input, output: output, values: Self.awkwardValue)
                var cuts = (0..<random.below(8) + 1).map { _ in random.below(split.totalElements + 1) }
                cuts = ([0, split.totalElements] + cuts).sorted()
                // Reverse order too: ranges must not depend on each other.
                let ranges = zip(cuts, cuts.dropFirst()).map { $0..<$1 }.reversed()
                split.run(kernel, ranges: Array(ranges))
                XCTAssertEqual(split.zt, whole.zt, "\(input)->\(output) cuts \(cuts)")
                XCTAssertEqual(split.eps, whole.eps)
                XCTAssertEqual(split.clean, whole.clean)
            }
        }
    }

    func testSampleNoiseIsIndependentOfBatchComposition() {
        let alone = BatchBuffers(samples: 1, elements: 777, input: .f32, output: .bf16, values: Self.awkwardValue)
        alone.noiseIDs = [4242]
        alone.run(kernel, ranges: [0..<777])
        let inBatch = BatchBuffers(samples: 4, elements: 777, input: .f32, output: .bf16, values: Self.awkwardValue)
        inBatch.noiseIDs = [1, 2, 4242, 3]
        inBatch.run(kernel, ranges: NoiseKernel.partition(totalElements: inBatch.totalElements, parts: 3))
        let bytes = 777 * 2
        XCTAssertEqual(Array(inBatch.eps[2 * bytes..<3 * bytes]), alone.eps)
        XCTAssertNotEqual(Array(inBatch.eps[1 * bytes..<2 * bytes]), alone.eps)
    }

    func testNonFiniteInputIsReported() {
        var random = SplitMix64(seed: 5)
        for input in ElementType.allCases {
            let finite = BatchBuffers(samples: 2, elements: 150, input: input, output: .f32, values: Self.awkwardValue)
            XCTAssertFalse(finite.run(kernel, ranges: [0..<300]), "\(input)")
            for bad in [Float.nan, .infinity, -.infinity] {
                let position = random.below(300)
                let buffers = BatchBuffers(samples: 2, elements: 150, input: input, output: .f32) {
                    $0 == position ? bad : Self.awkwardValue($0)
                }
                XCTAssertTrue(buffers.run(kernel, ranges: [0..<300]), "\(input) \(bad) at \(position)")
                XCTAssertTrue(buffers.run(kernel, ranges: [position..<position + 1]))
                XCTAssertFalse(buffers.run(kernel, ranges: [0..<position, position + 1..<300]), "outside the range")
            }
        }
    }

    func testBFloat16RoundsToNearestEven() {
        let cases: [(UInt32, UInt16)] = [
            (0x3f80_8000, 0x3f80),  // tie, even below
            (0x3f81_8000, 0x3f82),  // tie, even above
            (0x3f80_8001, 0x3f81),
            (0x3f80_7fff, 0x3f80),
            (0x7f7f_ffff, 0x7f80),  // overflow to infinity
            (0xff7f_ffff, 0xff80),
            (0x7f80_0000, 0x7f80),
            (0x8000_0000, 0x8000),
            (0x0000_8000, 0x0000),  // subnormal tie to even zero
            (0x0001_8000, 0x0002),
        ]
        for (input, expected) in cases {
            XCTAssertEqual(BFloat16Bits.rounding(Float(bitPattern: input)), expected, String(input, radix: 16))
        }
        for nan: UInt32 in [0x7fc0_0000, 0x7f80_0001, 0xff80_0001, 0x7fff_ffff] {
            let rounded = BFloat16Bits.rounding(Float(bitPattern: nan))
            XCTAssertTrue(BFloat16Bits.float(rounded).isNaN, String(nan, radix: 16))
        }
        // The kernel's vector path agrees with the scalar one.
        let values = cases.map { Float(bitPattern: $0.0) } + [.nan, Float(bitPattern: 0x7f80_0001)]
        assertKernelEncodes(values, as: .bf16)
    }

    func testFloat16RoundsToNearestEven() {
        let cases: [(Float, UInt16)] = [
            (1 + 0x1p-11, 0x3c00),  // tie, even below
            (1 + 3 * 0x1p-11, 0x3c02),  // tie, even above
            (65504, 0x7bff),
            (65519, 0x7bff),
            (65520, 0x7c00),  // rounds to infinity
            (-65520, 0xfc00),
            (0x1p-25, 0x0000),  // tie to even zero
            (3 * 0x1p-25, 0x0002),
            (-0.0, 0x8000),
        ]
        for (value, expected) in cases {
            XCTAssertEqual(Float16(value).bitPattern, expected, "\(value)")
        }
        XCTAssertTrue(Float16(Float.nan).isNaN)
        assertKernelEncodes(cases.map(\.0) + [.nan], as: .f16)
    }

    /// Runs f32 values through the kernel's clean output and compares with the scalar encoding.
    private func assertKernelEncodes(_ values: [Float], as output: ElementType, file: StaticString = #filePath, line: UInt = #line) {
        let buffers = BatchBuffers(samples: 1, elements: values.count, input: .f32, output: output) { values[$0] }
        buffers.run(kernel, ranges: [0..<values.count])
        for (index, value) in values.enumerated() {
            var expected = [UInt8](repeating: 0, count: output.byteCount)
            expected.withUnsafeMutableBytes { output.store(value, to: $0.baseAddress!, at: 0) }
            let got = Array(buffers.clean[index * output.byteCount..<(index + 1) * output.byteCount])
            if value.isNaN {
                XCTAssertTrue(BatchBuffers.value(buffers.clean, output, index).isNaN, file: file, line: line)
            } else {
                XCTAssertEqual(got, expected, "\(value)", file: file, line: line)
            }
        }
    }

    func testPartitionCoversTheBatchInAlignedRanges() {
        for (total, parts) in [(0, 1), (1, 3), (1000, 2), (4_273_920, 2), (4_273_920, 7), (64, 4)] {
            let ranges = NoiseKernel.partition(totalElements: total, parts: parts)
            XCTAssertEqual(ranges.count, parts)
            XCTAssertEqual(ranges.first?.lowerBound, 0)
            XCTAssertEqual(ranges.last?.upperBound, total)
            for (a, b) in zip(ranges, ranges.dropFirst()) {
                XCTAssertEqual(a.upperBound, b.lowerBound)
                XCTAssertTrue(a.upperBound % NoiseKernel.blockSize == 0 || a.upperBound == total)
            }
        }
    }
}
