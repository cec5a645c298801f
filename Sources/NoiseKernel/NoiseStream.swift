#if arch(x86_64)
import NoiseKernelAVX512
#endif
import NoiseKernelCore

/// Noise stream v1: eps of a sample depends only on (seed, noise id, element index).
/// The normative definition is docs/noise-stream.md.
public struct NoiseStream: Sendable, Equatable {
    public let seed: UInt64

    public init(seed: UInt64) {
        self.seed = seed
    }

    /// The Philox key of the eps stream.
    var key: SIMD2<UInt32> {
        SIMD2(UInt32(truncatingIfNeeded: seed), UInt32(truncatingIfNeeded: seed >> 32))
    }

    /// eps of one sample for elements [range) (f32, before any output rounding); every
    /// implementation gives the same values.
    public func fill(
        noiseID: UInt64, elements: Range<Int>, into buffer: UnsafeMutableBufferPointer<Float>,
        implementation: NoiseKernel.Implementation = .best
    ) {
        precondition(elements.lowerBound >= 0, "NoiseStream.fill: negative element index \(elements.lowerBound)")
        precondition(
            buffer.count == elements.count,
            "NoiseStream.fill: buffer holds \(buffer.count) floats for \(elements.count) elements")
        precondition(implementation.isAvailable, "NoiseStream.fill: \(implementation) is not available on this CPU")
        guard let base = buffer.baseAddress, !elements.isEmpty else { return }
        #if arch(x86_64)
        if implementation == .avx512 || implementation == .avx512bf16 {
            AVX512Kernel.fillEps(key: key, noiseID: noiseID, elements: elements, into: base)
            return
        }
        #endif
        NoiseKernelCore.fillEps(NoiseBlockGenerator.self, key: key, noiseID: noiseID, elements: elements, into: base)
    }

    /// The per-sample uniforms sigma (and later choices) are drawn from. Their own Philox stream:
    /// key (seed_lo32, seed_hi32 ^ "SIGM"), counter (word0, word1, id_lo32, id_hi32); each uniform
    /// takes 53 bits from two outputs, (k + 0.5) * 2^-53 in f64. (0, 0) is the sample's σ, (1 + c, 0)
    /// frame chunk c's σ, (0, 1) the sample's conditioning choice (docs/noise-stream.md).
    public func sigmaUniforms(noiseID: UInt64, word0: UInt32 = 0, word1: UInt32 = 0) -> (Double, Double) {
        let sigmaKey = SIMD2(UInt32(truncatingIfNeeded: seed), UInt32(truncatingIfNeeded: seed >> 32) ^ NoiseStreamV1.sigmaKeyTweak)
        let counter = SIMD4<UInt32>(word0, word1, UInt32(truncatingIfNeeded: noiseID), UInt32(truncatingIfNeeded: noiseID >> 32))
        let x = Philox4x32_10.block(counter: counter, key: sigmaKey)
        func uniform(_ high: UInt32, _ low: UInt32) -> Double {
            (Double((UInt64(high) << 21) | (UInt64(low) >> 11)) + 0.5) * 0x1p-53
        }
        return (uniform(x.x, x.y), uniform(x.z, x.w))
    }
}

/// eps of one sample in blocks of 64 consecutive elements: 16 Philox groups, as two sets of eight
/// with one group per SIMD lane. Within a set, lane i holds group `laneGroups[i]` (the even groups
/// in the low 128-bit half, the odd ones in the high half), so that interleaving the four outputs
/// of each group into consecutive elements needs only in-half shuffles.
package struct NoiseBlockGenerator: NoiseBlocks {
    package static var laneGroups: SIMD8<UInt32> { SIMD8(0, 2, 4, 6, 1, 3, 5, 7) }
    package static var blocksPerStep: Int { 1 }

    /// 64 consecutive eps values, eight per vector.
    typealias Block = (
        SIMD8<Float>, SIMD8<Float>, SIMD8<Float>, SIMD8<Float>,
        SIMD8<Float>, SIMD8<Float>, SIMD8<Float>, SIMD8<Float>
    )

    let key: SIMD2<UInt32>
    let noiseID: UInt64

    package init(key: SIMD2<UInt32>, noiseID: UInt64) {
        self.key = key
        self.noiseID = noiseID
    }

    /// Elements [64 b, 64 b + 64) of the sample. Out of line: inlined into the fused loop it
    /// compiles to markedly slower code.
    @inline(never)
    func block(_ b: Int) -> Block {
        let firstGroup = UInt64(b) &* UInt64(NoiseStreamV1.blockGroups)
        // firstGroup is a multiple of 16, so adding the group offset never carries into the high word.
        let (first, second) = Philox4x32_10.sixteenBlocks(
            groupLow: UInt32(truncatingIfNeeded: firstGroup), groupHigh: UInt32(truncatingIfNeeded: firstGroup >> 32),
            idLow: UInt32(truncatingIfNeeded: noiseID), idHigh: UInt32(truncatingIfNeeded: noiseID >> 32), key: key)
        let (e0, e1, e2, e3) = Self.transform(first)
        let (e4, e5, e6, e7) = Self.transform(second)
        return (e0, e1, e2, e3, e4, e5, e6, e7)
    }

    package func storeEps(_ block: Int, into target: UnsafeMutableRawPointer) {
        let eps = self.block(block)
        F32Element.store8(eps.0, target, 0)
        F32Element.store8(eps.1, target, 8)
        F32Element.store8(eps.2, target, 16)
        F32Element.store8(eps.3, target, 24)
        F32Element.store8(eps.4, target, 32)
        F32Element.store8(eps.5, target, 40)
        F32Element.store8(eps.6, target, 48)
        F32Element.store8(eps.7, target, 56)
    }

    /// Box-Muller on eight groups (lane i holding group `laneGroups[i]`): 32 consecutive eps values.
    @inline(__always)
    package static func transform(_ x: Counters8) -> (SIMD8<Float>, SIMD8<Float>, SIMD8<Float>, SIMD8<Float>) {
        let (a, b, c, d) = BoxMuller<Lanes8>.components(
            VectorMath.signed(x.x0), VectorMath.signed(x.x1), VectorMath.signed(x.x2), VectorMath.signed(x.x3))
        // Element 4g + j takes component j of group g.
        return VectorMath.interleaveGroups(a, b, c, d)
    }
}
