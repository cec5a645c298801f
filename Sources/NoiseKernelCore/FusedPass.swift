/// eps of one sample, block by block, as one kernel implementation computes it.
public protocol NoiseBlocks {
    /// Consecutive blocks the implementation computes at once at its best (1 or 2).
    static var blocksPerStep: Int { get }
    init(key: SIMD2<UInt32>, noiseID: UInt64)
    /// eps of blocks [block, block + blocksPerStep) of the sample, f32, stored at `target`.
    func storeEps(_ block: Int, into target: UnsafeMutableRawPointer)
}

/// Where the fused step writes: element 0 of z_t, eps and (when asked) z_0 re-encoded.
public struct FusedOutputs {
    public let zt: UnsafeMutableRawPointer
    public let eps: UnsafeMutableRawPointer
    public let clean: UnsafeMutableRawPointer?

    @inlinable @inline(__always)
    public init(zt: UnsafeMutableRawPointer, eps: UnsafeMutableRawPointer, clean: UnsafeMutableRawPointer?) {
        (self.zt, self.eps, self.clean) = (zt, eps, clean)
    }
}

/// One implementation's fused step for one (input, output) type pair: z_t, eps and z_0 for
/// whole blocks, in its own vector width. `FusedPass` drives it over a batch.
public protocol FusedStep {
    associatedtype Blocks: NoiseBlocks
    /// The lane width a sample's blend is splatted to.
    associatedtype Width: Lanes
    init()
    /// Noises `count` (1 or `Blocks.blocksPerStep`) whole blocks of a sample from block `block`:
    /// z_0 from element `inIndex` of `input`, outputs to element `outIndex` of `outputs`.
    mutating func noise(
        _ blocks: Blocks, _ block: Int, count: Int, _ blend: Blend<Width>,
        input: UnsafeRawPointer, _ inIndex: Int, outputs: FusedOutputs, _ outIndex: Int)
    /// As `noise`, with z_0 drawn in registers from a posterior first:
    /// `PosteriorMath.sample(mean, logvar, ξ)`, ξ the same blocks of the `xi` stream.
    mutating func noisePosterior(
        _ blocks: Blocks, xi: Blocks, _ block: Int, count: Int, _ blend: Blend<Width>,
        mean: UnsafeRawPointer, logvar: UnsafeRawPointer, _ inIndex: Int, outputs: FusedOutputs, _ outIndex: Int)
    /// Whether any z_0 read or drawn so far was NaN or infinite.
    var sawNonFinite: Bool { get }
    /// Whether any posterior mean, or logvar, read so far was NaN or infinite.
    var sawNonFiniteMean: Bool { get }
    var sawNonFiniteLogvar: Bool { get }
}

/// A posterior the fused pass draws z_0 from: the batch's input is the mean, `logvar` has its
/// type and shape, and ξ is the stream under `key`.
public struct PosteriorSource {
    public let logvar: UnsafeRawPointer
    public let key: SIMD2<UInt32>

    @inlinable @inline(__always)
    public init(logvar: UnsafeRawPointer, key: SIMD2<UInt32>) {
        (self.logvar, self.key) = (logvar, key)
    }
}

/// What a posterior pass saw: non-finite means, logvars, or drawn z_0.
public struct PosteriorScan: Sendable, Equatable {
    public var nonFiniteMean: Bool
    public var nonFiniteLogvar: Bool
    public var nonFiniteZ0: Bool

    @inlinable
    public init(nonFiniteMean: Bool = false, nonFiniteLogvar: Bool = false, nonFiniteZ0: Bool = false) {
        (self.nonFiniteMean, self.nonFiniteLogvar, self.nonFiniteZ0) = (nonFiniteMean, nonFiniteLogvar, nonFiniteZ0)
    }
}

/// Whether any z_0 lane seen was NaN or infinite, accumulated without a branch per vector.
public struct NonFiniteScan<Bits: SIMD> where Bits.Scalar == UInt32 {
    @usableFromInline var bits = Bits.zero

    @inlinable public init() {}

    @inlinable @inline(__always)
    public mutating func observe<Floats: SIMD>(_ z0: Floats) where Floats.Scalar == Float {
        // The exponent field plus one carries into the sign bit only for Inf/NaN.
        bits |= (unsafeBitCast(z0, to: Bits.self) & 0x7f80_0000) &+ 0x0080_0000
    }

    @inlinable public var found: Bool { bits & 0x8000_0000 != .zero }
}

/// The sample/block/edge loop of every kernel, written once: each implementation's module
/// instantiates it with its own step, so it is compiled with that module's target features.
public enum FusedPass<Step: FusedStep> {
    /// Writes outputs for flattened elements [range) of the batch (already checked against it);
    /// true if any z_0 in range is non-finite.
    @inlinable @inline(__always)
    public static func run(_ batch: NoiseBatch, elements: Range<Int>, key: SIMD2<UInt32>) -> Bool {
        pass(batch, elements: elements, key: key, posterior: nil).sawNonFinite
    }

    /// As `run`, with each z_0 drawn from the posterior (the batch's input is its mean) in the
    /// same pass: the same bytes as drawing z_0 into an f32 buffer and noising that.
    @inlinable @inline(__always)
    public static func runPosterior(_ batch: NoiseBatch, _ posterior: PosteriorSource, elements: Range<Int>, key: SIMD2<UInt32>)
        -> PosteriorScan {
        let step = pass(batch, elements: elements, key: key, posterior: posterior)
        return PosteriorScan(nonFiniteMean: step.sawNonFiniteMean, nonFiniteLogvar: step.sawNonFiniteLogvar, nonFiniteZ0: step.sawNonFinite)
    }

    /// Edge blocks are computed whole in a scratch area and only their needed part copied out, so
    /// every element sees the same arithmetic wherever the range cuts.
    @inlinable @inline(__always)
    static func pass(_ batch: NoiseBatch, elements: Range<Int>, key: SIMD2<UInt32>, posterior: PosteriorSource?) -> Step {
        let size = NoiseStreamV1.blockElements, step = Step.Blocks.blocksPerStep
        let inBytes = batch.inputType.byteCount, outBytes = batch.outputType.byteCount
        let input = batch.input.baseAddress!
        let outputs = FusedOutputs(zt: batch.zt.baseAddress!, eps: batch.eps.baseAddress!, clean: batch.clean?.baseAddress)
        var pass = Step()
        withUnsafeTemporaryAllocation(byteCount: 5 * size * 4, alignment: 64) { scratch in
            let scratchInput = scratch.baseAddress!, scratchLogvar = scratchInput + 4 * size
            let scratchOutputs = FusedOutputs(zt: scratchInput + 8 * size, eps: scratchInput + 12 * size,
                                              clean: outputs.clean == nil ? nil : scratchInput + 16 * size)
            let frames = batch.layout.frames, frameElements = batch.layout.frameElements
            var sampleIndex = elements.lowerBound / batch.elementsPerSample
            while sampleIndex * batch.elementsPerSample < elements.upperBound {
                let sampleStart = sampleIndex * batch.elementsPerSample
                let sampleLower = max(elements.lowerBound, sampleStart) - sampleStart
                let sampleUpper = min(elements.upperBound, sampleStart + batch.elementsPerSample) - sampleStart
                let noiseID = batch.noiseIDs[sampleIndex]
                let blocks = Step.Blocks(key: key, noiseID: noiseID)
                let xi = posterior.map { Step.Blocks(key: $0.key, noiseID: noiseID) }
                @inline(__always)
                func noise(_ block: Int, count: Int, _ blend: Blend<Step.Width>, input: UnsafeRawPointer, logvar: UnsafeRawPointer?,
                           _ inIndex: Int, outputs: FusedOutputs, _ outIndex: Int) {
                    if let xi, let logvar {
                        pass.noisePosterior(blocks, xi: xi, block, count: count, blend, mean: input, logvar: logvar, inIndex,
                                            outputs: outputs, outIndex)
                    } else {
                        pass.noise(blocks, block, count: count, blend, input: input, inIndex, outputs: outputs, outIndex)
                    }
                }
                // Runs of one σ: the whole sample, or one frame's elements. A block that straddles
                // two runs goes through the edge path once for each, so eps is the same either way.
                var run = sampleLower / frameElements
                while run * frameElements < sampleUpper {
                    let lower = max(sampleLower, run * frameElements), upper = min(sampleUpper, (run + 1) * frameElements)
                    let blend = Blend<Step.Width>(sigma: batch.sigmas[sampleIndex &* frames &+ run % frames])
                    var block = lower / size
                    while block * size < upper {
                        let blockStart = block * size
                        let index = sampleStart &+ blockStart
                        if blockStart >= lower && blockStart + step * size <= upper {
                            noise(block, count: step, blend, input: input, logvar: posterior?.logvar, index, outputs: outputs, index)
                            block += step
                            continue
                        }
                        if blockStart >= lower && blockStart + size <= upper {
                            noise(block, count: 1, blend, input: input, logvar: posterior?.logvar, index, outputs: outputs, index)
                        } else {
                            // A block only partly inside the range (or the sample): run it whole on a
                            // zero-padded copy.
                            let needed = max(lower, blockStart)..<min(upper, blockStart + size)
                            let skip = needed.lowerBound - blockStart
                            let inOffset = (sampleStart + needed.lowerBound) * inBytes
                            scratchInput.initializeMemory(as: UInt8.self, repeating: 0, count: size * inBytes)
                            (scratchInput + skip * inBytes).copyMemory(from: input + inOffset, byteCount: needed.count * inBytes)
                            if let posterior {
                                scratchLogvar.initializeMemory(as: UInt8.self, repeating: 0, count: size * inBytes)
                                (scratchLogvar + skip * inBytes).copyMemory(from: posterior.logvar + inOffset, byteCount: needed.count * inBytes)
                            }
                            noise(block, count: 1, blend, input: scratchInput, logvar: posterior == nil ? nil : UnsafeRawPointer(scratchLogvar),
                                  0, outputs: scratchOutputs, 0)
                            let outOffset = (sampleStart + needed.lowerBound) * outBytes, byteCount = needed.count * outBytes
                            (outputs.zt + outOffset).copyMemory(from: scratchOutputs.zt + skip * outBytes, byteCount: byteCount)
                            (outputs.eps + outOffset).copyMemory(from: scratchOutputs.eps + skip * outBytes, byteCount: byteCount)
                            if let clean = outputs.clean, let scratchClean = scratchOutputs.clean {
                                (clean + outOffset).copyMemory(from: scratchClean + skip * outBytes, byteCount: byteCount)
                            }
                        }
                        block += 1
                    }
                    run += 1
                }
                sampleIndex += 1
            }
        }
        return pass
    }
}

/// eps of one sample for elements [range) in f32, before any output rounding: the loop over
/// blocks of `NoiseStream.fill`, written once for every implementation.
@inlinable
public func fillEps<Blocks: NoiseBlocks>(
    _: Blocks.Type, key: SIMD2<UInt32>, noiseID: UInt64, elements: Range<Int>, into base: UnsafeMutablePointer<Float>
) {
    let blocks = Blocks(key: key, noiseID: noiseID)
    let size = NoiseStreamV1.blockElements * Blocks.blocksPerStep
    withUnsafeTemporaryAllocation(of: Float.self, capacity: size) { scratch in
        var start = elements.lowerBound / size * size
        while start < elements.upperBound {
            blocks.storeEps(start / NoiseStreamV1.blockElements, into: UnsafeMutableRawPointer(scratch.baseAddress!))
            // The blocks, clipped to the range.
            let lower = max(start, elements.lowerBound), upper = min(start + size, elements.upperBound)
            (base + (lower - elements.lowerBound)).update(from: scratch.baseAddress! + (lower - start), count: upper - lower)
            start += size
        }
    }
}
