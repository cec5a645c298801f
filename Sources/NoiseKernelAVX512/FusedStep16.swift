#if arch(x86_64)
import NoiseKernelCore

/// eps of one sample in blocks of 64 consecutive elements (16 Philox groups, one per lane),
/// two blocks at a time.
struct BlockGenerator16: NoiseBlocks {
    static var blocksPerStep: Int { 2 }
    let key: SIMD2<UInt32>
    let noiseID: UInt64

    typealias Block = (SIMD16<Float>, SIMD16<Float>, SIMD16<Float>, SIMD16<Float>)

    init(key: SIMD2<UInt32>, noiseID: UInt64) {
        (self.key, self.noiseID) = (key, noiseID)
    }

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
        return Lanes16.transform(x, y)
    }

    /// Elements [64 b, 64 b + 64) of this stream and of `other` (the same noise id under another
    /// key), computed in lockstep: a posterior's ε and ξ.
    @inline(__always)
    func block(_ b: Int, beside other: BlockGenerator16) -> (Block, Block) {
        let group = UInt64(b) &* 16
        let (x, y) = Philox16.oneBlock(
            UInt32(truncatingIfNeeded: group), groupHigh: UInt32(truncatingIfNeeded: group >> 32),
            idLow: UInt32(truncatingIfNeeded: noiseID), idHigh: UInt32(truncatingIfNeeded: noiseID >> 32), keys: (key, other.key))
        return Lanes16.transform(x, y)
    }

    /// One block whose neighbour has a different high counter word (every 2^38 elements).
    private func single(_ firstGroup: UInt64) -> Block {
        let (x, _) = Philox16.twoBlocks(
            first: UInt32(truncatingIfNeeded: firstGroup), second: UInt32(truncatingIfNeeded: firstGroup),
            groupHigh: UInt32(truncatingIfNeeded: firstGroup >> 32),
            idLow: UInt32(truncatingIfNeeded: noiseID), idHigh: UInt32(truncatingIfNeeded: noiseID >> 32), key: key)
        return Lanes16.transform(x, x).0
    }

    func storeEps(_ block: Int, into target: UnsafeMutableRawPointer) {
        let (x, y) = blocks(block)
        F32x16.store32(x.0, x.1, target, 0)
        F32x16.store32(x.2, x.3, target, 32)
        F32x16.store32(y.0, y.1, target, 64)
        F32x16.store32(y.2, y.3, target, 96)
    }
}

/// The 512-bit fused step for one (input, output) pair, two blocks of 64 elements at a time.
struct FusedStep16<In: Element16, Out: Element16>: FusedStep {
    typealias Width = Lanes16
    private var nonFinite = NonFiniteScan<SIMD16<UInt32>>()
    private var nonFiniteMean = NonFiniteScan<SIMD16<UInt32>>(), nonFiniteLogvar = NonFiniteScan<SIMD16<UInt32>>()
    var sawNonFinite: Bool { nonFinite.found }
    var sawNonFiniteMean: Bool { nonFiniteMean.found }
    var sawNonFiniteLogvar: Bool { nonFiniteLogvar.found }

    @inline(__always)
    mutating func noise(
        _ blocks: BlockGenerator16, _ block: Int, count: Int, _ blend: Blend<Lanes16>,
        input: UnsafeRawPointer, _ inIndex: Int, outputs: FusedOutputs, _ outIndex: Int
    ) {
        let (x, y) = blocks.blocks(block)
        noise(x, blend, input: input, inIndex, outputs: outputs, outIndex)
        if count == 2 {
            noise(y, blend, input: input, inIndex &+ 64, outputs: outputs, outIndex &+ 64)
        }
    }

    @inline(__always)
    mutating func noisePosterior(
        _ blocks: BlockGenerator16, xi: BlockGenerator16, _ block: Int, count: Int, _ blend: Blend<Lanes16>,
        mean: UnsafeRawPointer, logvar: UnsafeRawPointer, _ inIndex: Int, outputs: FusedOutputs, _ outIndex: Int
    ) {
        for offset in 0..<count {
            let (eps, xiBlock) = blocks.block(block &+ offset, beside: xi)
            let z0 = draw(xiBlock, mean: mean, logvar: logvar, inIndex &+ 64 &* offset)
            noise(eps, blend, clean: z0, outputs: outputs, outIndex &+ 64 &* offset)
        }
    }

    /// z_0 of one block from its ξ, mean and logvar.
    @inline(__always)
    private mutating func draw(_ xi: BlockGenerator16.Block, mean: UnsafeRawPointer, logvar: UnsafeRawPointer, _ index: Int)
        -> BlockGenerator16.Block {
        @inline(__always)
        func sample(_ xi: SIMD16<Float>, _ offset: Int) -> SIMD16<Float> {
            let m = In.load16(mean, index &+ offset), lv = In.load16(logvar, index &+ offset)
            nonFiniteMean.observe(m)
            nonFiniteLogvar.observe(lv)
            return PosteriorMath<Lanes16>.sample(mean: m, logvar: lv, xi: xi)
        }
        return (sample(xi.0, 0), sample(xi.1, 16), sample(xi.2, 32), sample(xi.3, 48))
    }

    @inline(__always)
    private mutating func noise(
        _ eps: BlockGenerator16.Block, _ blend: Blend<Lanes16>,
        input: UnsafeRawPointer, _ inIndex: Int, outputs: FusedOutputs, _ outIndex: Int
    ) {
        let clean = (In.load16(input, inIndex), In.load16(input, inIndex &+ 16),
                     In.load16(input, inIndex &+ 32), In.load16(input, inIndex &+ 48))
        noise(eps, blend, clean: clean, outputs: outputs, outIndex)
    }

    @inline(__always)
    private mutating func noise(
        _ eps: BlockGenerator16.Block, _ blend: Blend<Lanes16>, clean z0: BlockGenerator16.Block,
        outputs: FusedOutputs, _ outIndex: Int
    ) {
        @inline(__always)
        func step(_ noiseLow: SIMD16<Float>, _ noiseHigh: SIMD16<Float>, _ z0Low: SIMD16<Float>, _ z0High: SIMD16<Float>,
                  _ offset: Int) {
            nonFinite.observe(z0Low)
            nonFinite.observe(z0High)
            Out.store32(blend.apply(clean: z0Low, noise: noiseLow), blend.apply(clean: z0High, noise: noiseHigh),
                        outputs.zt, outIndex &+ offset)
            // eps is never NaN.
            Out.storeFinite32(noiseLow, noiseHigh, outputs.eps, outIndex &+ offset)
            if let clean = outputs.clean { Out.store32(z0Low, z0High, clean, outIndex &+ offset) }
        }
        step(eps.0, eps.1, z0.0, z0.1, 0)
        step(eps.2, eps.3, z0.2, z0.3, 32)
    }
}
#endif
