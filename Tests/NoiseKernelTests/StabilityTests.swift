import XCTest
import NoiseKernel
import NoiseKernelCore

/// Noise stream v1 is a reproducibility contract: the exact bytes must not change when the kernel is
/// optimised. The digests were recorded from the first (unoptimised) implementation.
final class StabilityTests: XCTestCase {
    /// FNV-1a 64 over bytes.
    private func digest(_ bytes: some Sequence<UInt8>, into hash: inout UInt64) {
        for byte in bytes {
            hash = (hash ^ UInt64(byte)) &* 0x0000_0100_0000_01B3
        }
    }

    func testEpsBytesAreStable() {
        for implementation in availableImplementations {
            var hash: UInt64 = 0xcbf2_9ce4_8422_2325
            for seed: UInt64 in [0, 0xDEAD_BEEF_0123_4567, .max] {
                for id: UInt64 in [0, 7, 1 << 40 | 3, .max] {
                    let eps = epsValues(NoiseStream(seed: seed), id: id, 13..<13 + 65_536, implementation: implementation)
                    digest(eps.flatMap { withUnsafeBytes(of: $0.bitPattern, Array.init) }, into: &hash)
                }
            }
            XCTAssertEqual(hash, 0x9792_9598_6fec_9ec3, "\(implementation) eps digest 0x\(String(hash, radix: 16))")
        }
    }

    func testKernelBytesAreStable() {
        for implementation in availableImplementations {
            XCTAssertEqual(kernelDigest(implementation), 0xb6b0_6901_680f_e53f, "\(implementation)")
        }
    }

    private func kernelDigest(_ implementation: NoiseKernel.Implementation) -> UInt64 {
        let kernel = NoiseKernel(stream: NoiseStream(seed: 0x5EED_0F_5EED), implementation: implementation)
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for input in ElementType.allCases {
            for output in ElementType.allCases {
                let buffers = BatchBuffers(samples: 4, elements: 1000, input: input, output: output,
                                           values: KernelTests.awkwardValue)
                buffers.sigmas = [0.25, 0, 1, 0.7]
                buffers.run(kernel, ranges: NoiseKernel.partition(totalElements: buffers.totalElements, parts: 3))
                digest(buffers.zt + buffers.eps + buffers.clean, into: &hash)
            }
        }
        return hash
    }
}
