import XCTest
import NoiseKernel
import NoiseKernelCore
import NoisedTestSupport

/// The 256-bit and 512-bit kernels are two implementations of one noise stream: every byte they
/// write must agree, for every type pair, value, sigma and split of the batch.
final class ImplementationTests: XCTestCase {
    func testSelection() {
        XCTAssertTrue(NoiseKernel.Implementation.best.isAvailable)
        XCTAssertEqual(NoiseKernel(stream: NoiseStream(seed: 1)).implementation, .best)
        #if arch(x86_64)
        XCTAssertTrue(NoiseKernel.Implementation.avx2.isAvailable)
        XCTAssertFalse(NoiseKernel.Implementation.portable.isAvailable)
        #else
        XCTAssertEqual(availableImplementations, [.portable])
        #endif
    }

    /// The cpuid checks agree with what the kernel reports to Linux: AVX-512 runs exactly when the
    /// CPU has the F, BW, DQ and VL subsets (the OS enabling ZMM state is implied by the flags),
    /// its bf16 variant exactly when the CPU also has AVX512_BF16.
    func testAVX512IsChosenExactlyWhenTheCPUHasIt() throws {
        #if arch(x86_64) && os(Linux)
        let cpuinfo = try String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8)
        let flagsLine = try XCTUnwrap(cpuinfo.split(separator: "\n").first { $0.hasPrefix("flags") })
        let flags = Set(flagsLine.split(separator: ":").last!.split(separator: " ").map(String.init))
        let hasAVX512 = ["avx512f", "avx512bw", "avx512dq", "avx512vl"].allSatisfy(flags.contains)
        let hasBF16 = hasAVX512 && flags.contains("avx512_bf16")
        XCTAssertEqual(NoiseKernel.Implementation.avx512.isAvailable, hasAVX512, "flags: \(flags.sorted())")
        XCTAssertEqual(NoiseKernel.Implementation.avx512bf16.isAvailable, hasBF16, "flags: \(flags.sorted())")
        XCTAssertEqual(NoiseKernel.Implementation.best, hasBF16 ? .avx512bf16 : hasAVX512 ? .avx512 : .avx2)
        #else
        throw XCTSkip("reads /proc/cpuinfo on x86_64 Linux")
        #endif
    }

    /// Inputs with NaN and infinities among the awkward values, sigmas 0 and 1 among the others,
    /// sample lengths that cut blocks and block pairs at every offset, random splits.
    func testImplementationsWriteIdenticalBytes() throws {
        guard availableImplementations.count > 1 else {
            throw XCTSkip("only \(availableImplementations) runs on this CPU")
        }
        var random = SplitMix64(seed: 2024)
        func value(_ index: Int) -> Float {
            switch index % 97 {
            case 13: .nan
            case 14: .infinity
            case 15: -.infinity
            default: KernelTests.awkwardValue(index)
            }
        }
        for (input, output) in ElementType.allCases.flatMap({ i in ElementType.allCases.map { (i, $0) } }) {
            for elements in [1, 63, 64, 65, 127, 128, 129, 200, 1000] {
                let samples = 5
                var cuts = (0..<random.below(4)).map { _ in random.below(samples * elements + 1) }
                cuts = ([0, samples * elements] + cuts).sorted()
                let ranges = zip(cuts, cuts.dropFirst()).map { $0..<$1 }
                let results = availableImplementations.map { implementation in
                    let buffers = BatchBuffers(samples: samples, elements: elements, input: input, output: output, values: value)
                    buffers.sigmas = [0.25, 0, 1, 0.7, 1e-3]
                    let kernel = NoiseKernel(stream: NoiseStream(seed: 0xFACE), implementation: implementation)
                    let nonFinite = buffers.run(kernel, ranges: ranges)
                    return (buffers.zt, buffers.eps, buffers.clean, nonFinite)
                }
                for (implementation, result) in zip(availableImplementations, results).dropFirst() {
                    let context = "\(implementation) vs \(availableImplementations[0]), \(input)->\(output), \(elements) per sample, cuts \(cuts)"
                    XCTAssertTrue(result.0 == results[0].0, "z_t bytes differ, \(context)")
                    XCTAssertTrue(result.1 == results[0].1, "eps bytes differ, \(context)")
                    XCTAssertTrue(result.2 == results[0].2, "clean bytes differ, \(context)")
                    XCTAssertEqual(result.3, results[0].3, "non-finite report, \(context)")
                }
            }
        }
    }

    /// bf16 outputs rounded by vcvtne2ps2bf16 and by integer arithmetic agree over a million
    /// values of eps and z_t (subnormals and NaN are among the awkward values of the test above).
    func testBF16InstructionsRoundAsTheIntegerPath() throws {
        guard NoiseKernel.Implementation.avx512bf16.isAvailable else {
            throw XCTSkip("this CPU has no AVX512_BF16")
        }
        let elements = 1 << 19
        let results = [NoiseKernel.Implementation.avx2, .avx512, .avx512bf16].map { implementation in
            let buffers = BatchBuffers(samples: 2, elements: elements, input: .f32, output: .bf16) { _ in 0.5 }
            buffers.sigmas = [0.3, 0.9]
            buffers.run(NoiseKernel(stream: NoiseStream(seed: 0xB16), implementation: implementation), ranges: [0..<2 * elements])
            return (buffers.zt, buffers.eps)
        }
        for (name, result) in zip(["avx512", "avx512bf16"], results.dropFirst()) {
            XCTAssertTrue(result.0 == results[0].0, "z_t bytes differ, \(name) vs avx2")
            XCTAssertTrue(result.1 == results[0].1, "eps bytes differ, \(name) vs avx2")
        }
    }

    /// Element 2^38 starts group 2^36, where the counter's high word first changes: the 512-bit
    /// kernel generates blocks in pairs and must not pair blocks across it.
    func testHighCounterWordBoundary() throws {
        guard availableImplementations.count > 1 else {
            throw XCTSkip("only \(availableImplementations) runs on this CPU")
        }
        let stream = NoiseStream(seed: 77)
        for start in [(1 << 38) - 64, (1 << 38) - 128, (1 << 38) - 1, (1 << 38) - 100, (1 << 39) - 64 + 3] {
            let range = start..<start + 300
            let values = availableImplementations.map { epsValues(stream, id: 5, range, implementation: $0).map(bits) }
            for (implementation, result) in zip(availableImplementations, values).dropFirst() {
                let firstDifference = result.indices.first { result[$0] != values[0][$0] }
                XCTAssertNil(firstDifference, "\(implementation) differs from element \(range.lowerBound + (firstDifference ?? 0)) of \(range)")
            }
        }
    }
}
