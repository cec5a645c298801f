#if arch(x86_64)
import _Builtin_intrinsics.intel

/// eps of one sample in blocks of 64 consecutive elements (16 Philox groups, one per lane).
struct BlockGenerator16 {
    static let elementCount = 64
    let key: SIMD2<UInt32>
    let noiseID: UInt64

    typealias Block = (SIMD16<Float>, SIMD16<Float>, SIMD16<Float>, SIMD16<Float>)

    /// Elements [64 b, 64 b + 128) of the sample: blocks b and b + 1, sixteen elements per vector.
    /// Inlined into the fused loop, unlike the 256-bit kernel's: with 32 registers it is faster so.
    @inline(__always)
    func blocks(_ b: Int) -> (Block, Block) {
        let first = UInt64(b) &* 16, second = UInt64(b + 1) &* 16
        // Both are multiples of 16, so adding a group offset never carries into the high word;
        // the two blocks share the high word unless the second starts a new 2^32 groups.
        if first >> 32 != second >> 32 {
            return (single(first), single(second))
        }
        let (x, y) = Philox16.twoBlocks(
            first: UInt32(truncatingIfNeeded: first), second: UInt32(truncatingIfNeeded: second),
            groupHigh: UInt32(truncatingIfNeeded: first >> 32),
            idLow: UInt32(truncatingIfNeeded: noiseID), idHigh: UInt32(truncatingIfNeeded: noiseID >> 32), key: key)
        return BoxMuller16.transform(x, y)
    }

    /// One block whose neighbour has a different high counter word (every 2^38 elements).
    private func single(_ firstGroup: UInt64) -> Block {
        let (x, _) = Philox16.twoBlocks(
            first: UInt32(truncatingIfNeeded: firstGroup), second: UInt32(truncatingIfNeeded: firstGroup),
            groupHigh: UInt32(truncatingIfNeeded: firstGroup >> 32),
            idLow: UInt32(truncatingIfNeeded: noiseID), idHigh: UInt32(truncatingIfNeeded: noiseID >> 32), key: key)
        return BoxMuller16.transform(x, x).0
    }
}

/// How a sample's z_t is formed; chosen once per sample so that sigma 0 and 1 stay exact. A
/// struct with a payload-free mode: an enum carrying the two vectors is copied through
/// out-of-line value witnesses at every use.
private struct Blend16 {
    enum Mode { case keepClean, copyNoise, mix }
    let mode: Mode
    let sigma: SIMD16<Float>
    let complement: SIMD16<Float>

    init(sigma: Float) {
        mode = sigma == 0 ? .keepClean : sigma == 1 ? .copyNoise : .mix
        self.sigma = SIMD16(repeating: sigma)
        complement = SIMD16(repeating: 1 - sigma)
    }

    @inline(__always)
    func apply(clean: SIMD16<Float>, noise: SIMD16<Float>) -> SIMD16<Float> {
        switch mode {
        case .keepClean: clean
        case .copyNoise: noise
        case .mix: _mm512_fmadd_ps(sigma, noise, _mm512_mul_ps(complement, clean))
        }
    }
}

/// The fused pass for one (input, output) pair: z_t = fma(sigma, eps, (1 - sigma) z_0), eps and
/// (optionally) z_0 re-encoded, in one read of z_0.
struct FusedPass16<In: Element16, Out: Element16> {
    let job: AVX512Kernel.Job

    func run(_ elements: Range<Int>) -> Bool {
        let size = BlockGenerator16.elementCount
        // Edge blocks are computed whole in a scratch area and only their needed part copied out,
        // so every element sees exactly the same arithmetic wherever the range cuts.
        return withUnsafeTemporaryAllocation(byteCount: 4 * size * 4, alignment: 64) { scratch in
            let scratchInput = scratch.baseAddress!
            var nonFinite = SIMD16<UInt32>.zero
            var sampleIndex = elements.lowerBound / job.elementsPerSample
            while sampleIndex * job.elementsPerSample < elements.upperBound {
                let sampleStart = sampleIndex * job.elementsPerSample
                let lower = max(elements.lowerBound, sampleStart) - sampleStart
                let upper = min(elements.upperBound, sampleStart + job.elementsPerSample) - sampleStart
                let generator = BlockGenerator16(key: job.key, noiseID: job.noiseIDs[sampleIndex])
                let blend = Blend16(sigma: job.sigmas[sampleIndex])
                var block = lower / size
                while block * size < upper {
                    let blockStart = block * size
                    if blockStart >= lower && blockStart + 2 * size <= upper {
                        let index = sampleStart &+ blockStart
                        let (x, y) = generator.blocks(block)
                        process(x, blend, input: job.input, index,
                                zt: job.zt, eps: job.eps, clean: job.clean, index, nonFinite: &nonFinite)
                        process(y, blend, input: job.input, index &+ size,
                                zt: job.zt, eps: job.eps, clean: job.clean, index &+ size, nonFinite: &nonFinite)
                        block += 2
                        continue
                    } else if blockStart >= lower && blockStart + size <= upper {
                        let index = sampleStart &+ blockStart
                        process(generator.blocks(block).0, blend, input: job.input, index,
                                zt: job.zt, eps: job.eps, clean: job.clean, index, nonFinite: &nonFinite)
                    } else {
                        processEdge(generator, block, blend, sampleStart: sampleStart,
                                    needed: max(lower, blockStart)..<min(upper, blockStart + size),
                                    scratch: scratchInput, nonFinite: &nonFinite)
                    }
                    block += 1
                }
                sampleIndex += 1
            }
            return nonFinite & 0x8000_0000 != .zero
        }
    }

    @inline(__always)
    private func process(
        _ eps: BlockGenerator16.Block, _ blend: Blend16,
        input: UnsafeRawPointer, _ inIndex: Int,
        zt: UnsafeMutableRawPointer, eps epsOut: UnsafeMutableRawPointer, clean: UnsafeMutableRawPointer?,
        _ outIndex: Int, nonFinite: inout SIMD16<UInt32>
    ) {
        @inline(__always)
        func load(_ offset: Int) -> SIMD16<Float> {
            let z0 = In.load16(input, inIndex &+ offset)
            // The exponent field plus one carries into the sign bit only for Inf/NaN.
            nonFinite |= (unsafeBitCast(z0, to: SIMD16<UInt32>.self) & 0x7f80_0000) &+ 0x0080_0000
            return z0
        }
        @inline(__always)
        func step(_ noiseLow: SIMD16<Float>, _ noiseHigh: SIMD16<Float>, _ offset: Int) {
            let z0Low = load(offset), z0High = load(offset &+ 16)
            Out.store32(blend.apply(clean: z0Low, noise: noiseLow), blend.apply(clean: z0High, noise: noiseHigh),
                        zt, outIndex &+ offset)
            // eps is never NaN.
            Out.storeFinite32(noiseLow, noiseHigh, epsOut, outIndex &+ offset)
            if let clean { Out.store32(z0Low, z0High, clean, outIndex &+ offset) }
        }
        step(eps.0, eps.1, 0)
        step(eps.2, eps.3, 32)
    }

    /// A block only partly inside the range (or the sample): run it whole on a zero-padded copy.
    private func processEdge(
        _ generator: BlockGenerator16, _ block: Int, _ blend: Blend16, sampleStart: Int,
        needed: Range<Int>, scratch: UnsafeMutableRawPointer, nonFinite: inout SIMD16<UInt32>
    ) {
        let size = BlockGenerator16.elementCount
        let blockStart = block * size
        let skip = needed.lowerBound - blockStart
        let count = needed.count
        let scratchZt = scratch + 4 * size, scratchEps = scratch + 8 * size, scratchClean = scratch + 12 * size
        scratch.initializeMemory(as: UInt8.self, repeating: 0, count: size * In.byteCount)
        (scratch + skip * In.byteCount).copyMemory(
            from: job.input + (sampleStart + needed.lowerBound) * In.byteCount, byteCount: count * In.byteCount)
        process(generator.blocks(block).0, blend, input: UnsafeRawPointer(scratch), 0, zt: scratchZt, eps: scratchEps,
                clean: job.clean == nil ? nil : scratchClean, 0, nonFinite: &nonFinite)
        let outOffset = (sampleStart + needed.lowerBound) * Out.byteCount
        let byteCount = count * Out.byteCount
        (job.zt + outOffset).copyMemory(from: scratchZt + skip * Out.byteCount, byteCount: byteCount)
        (job.eps + outOffset).copyMemory(from: scratchEps + skip * Out.byteCount, byteCount: byteCount)
        if let clean = job.clean {
            (clean + outOffset).copyMemory(from: scratchClean + skip * Out.byteCount, byteCount: byteCount)
        }
    }
}
#endif

#if arch(x86_64)
extension AVX512Kernel {
    /// eps of one sample for elements [range) in f32, before any output rounding (NoiseStream.fill).
    package static func fillEps(
        key: SIMD2<UInt32>, noiseID: UInt64, elements: Range<Int>, into base: UnsafeMutablePointer<Float>
    ) {
        precondition(isSupported, "AVX512Kernel.fillEps on a CPU without x86-64-v4")
        let generator = BlockGenerator16(key: key, noiseID: noiseID)
        let size = BlockGenerator16.elementCount
        withUnsafeTemporaryAllocation(of: Float.self, capacity: 2 * size) { scratch in
            let raw = UnsafeMutableRawPointer(scratch.baseAddress!)
            var block = elements.lowerBound / size
            while block * size < elements.upperBound {
                let blockStart = block * size
                let (x, y) = generator.blocks(block)
                F32x16.store32(x.0, x.1, raw, 0)
                F32x16.store32(x.2, x.3, raw, 32)
                F32x16.store32(y.0, y.1, raw, 64)
                F32x16.store32(y.2, y.3, raw, 96)
                // Both blocks, clipped to the range.
                let lower = max(blockStart, elements.lowerBound), upper = min(blockStart + 2 * size, elements.upperBound)
                (base + (lower - elements.lowerBound)).update(from: scratch.baseAddress! + (lower - blockStart), count: upper - lower)
                block += 2
            }
        }
    }
}
#endif
