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

    /// eps of one sample for elements [range) (f32, before any output rounding).
    public func fill(noiseID: UInt64, elements: Range<Int>, into buffer: UnsafeMutableBufferPointer<Float>) {
        precondition(elements.lowerBound >= 0, "NoiseStream.fill: negative element index \(elements.lowerBound)")
        precondition(
            buffer.count == elements.count,
            "NoiseStream.fill: buffer holds \(buffer.count) floats for \(elements.count) elements")
        guard let base = buffer.baseAddress, !elements.isEmpty else { return }
        let generator = NoiseBlockGenerator(key: key, noiseID: noiseID)
        let size = NoiseBlockGenerator.elementCount
        withUnsafeTemporaryAllocation(of: Float.self, capacity: size) { scratch in
            let scratchBase = scratch.baseAddress!
            var block = elements.lowerBound / size
            while block * size < elements.upperBound {
                let blockStart = block * size
                let eps = generator.block(block)
                let lower = max(blockStart, elements.lowerBound)
                let upper = min(blockStart + size, elements.upperBound)
                let whole = lower == blockStart && upper == blockStart + size
                // Whole blocks are stored in place; edge blocks through the scratch buffer.
                let target = whole ? base + (blockStart - elements.lowerBound) : scratchBase
                let raw = UnsafeMutableRawPointer(target)
                F32Element.store8(eps.0, raw, 0)
                F32Element.store8(eps.1, raw, 8)
                F32Element.store8(eps.2, raw, 16)
                F32Element.store8(eps.3, raw, 24)
                F32Element.store8(eps.4, raw, 32)
                F32Element.store8(eps.5, raw, 40)
                F32Element.store8(eps.6, raw, 48)
                F32Element.store8(eps.7, raw, 56)
                if !whole {
                    (base + (lower - elements.lowerBound)).update(from: scratchBase + (lower - blockStart), count: upper - lower)
                }
                block += 1
            }
        }
    }

    /// The per-sample uniforms sigma (and later choices) are drawn from. Their own Philox stream:
    /// key (seed_lo32, seed_hi32 ^ "SIGM"), counter (0, 0, id_lo32, id_hi32); each uniform takes 53
    /// bits from two outputs, (k + 0.5) * 2^-53 in f64.
    public func sigmaUniforms(noiseID: UInt64) -> (Double, Double) {
        let sigmaKey = SIMD2(UInt32(truncatingIfNeeded: seed), UInt32(truncatingIfNeeded: seed >> 32) ^ 0x5349_474D)
        let counter = SIMD4<UInt32>(0, 0, UInt32(truncatingIfNeeded: noiseID), UInt32(truncatingIfNeeded: noiseID >> 32))
        let x = Philox4x32_10.block(counter: counter, key: sigmaKey)
        func uniform(_ high: UInt32, _ low: UInt32) -> Double {
            (Double((UInt64(high) << 21) | (UInt64(low) >> 11)) + 0.5) * 0x1p-53
        }
        return (uniform(x.x, x.y), uniform(x.z, x.w))
    }
}

/// eps of one sample in blocks of 64 consecutive elements: 16 Philox groups, as two sets of eight
/// with one group per SIMD lane.
package struct NoiseBlockGenerator {
    static let groupCount = 16
    static let elementCount = 64

    /// 64 consecutive eps values, eight per vector.
    typealias Block = (
        SIMD8<Float>, SIMD8<Float>, SIMD8<Float>, SIMD8<Float>,
        SIMD8<Float>, SIMD8<Float>, SIMD8<Float>, SIMD8<Float>
    )

    let key: SIMD2<UInt32>
    let idLow: SIMD8<UInt32>
    let idHigh: SIMD8<UInt32>

    init(key: SIMD2<UInt32>, noiseID: UInt64) {
        self.key = key
        idLow = SIMD8(repeating: UInt32(truncatingIfNeeded: noiseID))
        idHigh = SIMD8(repeating: UInt32(truncatingIfNeeded: noiseID >> 32))
    }

    /// Elements [64 b, 64 b + 64) of the sample. Out of line: inlined into the fused loop it
    /// compiles to markedly slower code.
    @inline(never)
    func block(_ b: Int) -> Block {
        let firstGroup = UInt64(b) &* UInt64(Self.groupCount)
        // firstGroup is a multiple of 16, so adding the lane index never carries into the high word.
        let groupLow = SIMD8(repeating: UInt32(truncatingIfNeeded: firstGroup)) &+ SIMD8(0, 1, 2, 3, 4, 5, 6, 7)
        let groupHigh = SIMD8(repeating: UInt32(truncatingIfNeeded: firstGroup >> 32))
        let (first, second) = Philox4x32_10.block8x2(
            Counters8(x0: groupLow, x1: groupHigh, x2: idLow, x3: idHigh),
            Counters8(x0: groupLow &+ 8, x1: groupHigh, x2: idLow, x3: idHigh),
            key: key)
        let (e0, e1, e2, e3) = Self.transform(first)
        let (e4, e5, e6, e7) = Self.transform(second)
        return (e0, e1, e2, e3, e4, e5, e6, e7)
    }

    /// Box-Muller on eight groups: 32 consecutive eps values.
    @inline(__always)
    package static func transform(_ x: Counters8) -> (SIMD8<Float>, SIMD8<Float>, SIMD8<Float>, SIMD8<Float>) {
        let r0 = BoxMuller.radius(x.x0)
        let r1 = BoxMuller.radius(x.x2)
        let (cos0, sin0) = BoxMuller.cosSinPi(x.x1)
        let (cos1, sin1) = BoxMuller.cosSinPi(x.x3)
        // Lane g holds group g; element 4g + j takes component j of (r0 cos0, r0 sin0, r1 cos1, r1 sin1).
        let a = r0 * cos0, b = r0 * sin0, c = r1 * cos1, d = r1 * sin1
        return (
            SIMD8(a[0], b[0], c[0], d[0], a[1], b[1], c[1], d[1]),
            SIMD8(a[2], b[2], c[2], d[2], a[3], b[3], c[3], d[3]),
            SIMD8(a[4], b[4], c[4], d[4], a[5], b[5], c[5], d[5]),
            SIMD8(a[6], b[6], c[6], d[6], a[7], b[7], c[7], d[7])
        )
    }
}
