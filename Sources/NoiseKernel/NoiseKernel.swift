#if arch(x86_64)
import NoiseKernelAVX512
#endif

/// The fused noising kernel: one pass reads z_0 and writes z_t, eps (and z_0 re-encoded when asked).
///
/// z_t = fma(sigma, eps, (1 - sigma) * z_0) in f32, rounded once to the output type; samples with
/// sigma == 0 copy z_0 and samples with sigma == 1 copy eps, so both are exact bit for bit.
/// Every implementation writes the same bytes; they differ only in speed.
public struct NoiseKernel: Sendable {
    /// The instruction sets the kernel is built for, chosen once per process by CPU.
    public enum Implementation: String, Sendable, CaseIterable, CustomStringConvertible {
        /// Per-lane Swift SIMD code, for CPUs other than x86_64.
        case portable
        /// 256-bit vectors, x86-64-v3 (AVX2, FMA, F16C): the baseline on x86_64.
        case avx2
        /// 512-bit vectors, x86-64-v4 (AVX-512 F/BW/DQ/VL), when the CPU and OS support them.
        case avx512
        /// avx512, with bf16 outputs rounded by vcvtne2ps2bf16 (AVX512_BF16: Cooper Lake,
        /// Sapphire Rapids, Zen 4 and later) instead of integer arithmetic; f32 and f16 as avx512.
        case avx512bf16

        public var description: String { rawValue }

        /// Whether this build on this CPU can run it.
        public var isAvailable: Bool {
            #if arch(x86_64)
            switch self {
            case .portable: false
            case .avx2: true
            case .avx512: AVX512Kernel.isSupported
            case .avx512bf16: AVX512Kernel.hasBF16Instructions
            }
            #else
            self == .portable
            #endif
        }

        /// The fastest available implementation.
        public static var best: Implementation {
            allCases.last { $0.isAvailable }!
        }
    }

    public let stream: NoiseStream
    public let implementation: Implementation

    /// Elements per kernel block; `partition` aligns ranges to it.
    public static let blockSize = NoiseBlockGenerator.elementCount

    public init(stream: NoiseStream, implementation: Implementation = .best) {
        precondition(implementation.isAvailable, "NoiseKernel: \(implementation) is not available on this CPU")
        self.stream = stream
        self.implementation = implementation
    }

    /// Writes outputs for flattened elements [range) of the batch; returns true if any z_0 in range
    /// is non-finite. Any split of a batch into ranges gives the same bytes as one call for all.
    @discardableResult
    public func run(_ batch: NoiseBatch, elements: Range<Int>) -> Bool {
        precondition(batch.sampleCount >= 0 && batch.elementsPerSample >= 0,
                     "NoiseKernel.run: negative batch shape \(batch.sampleCount) x \(batch.elementsPerSample)")
        precondition(batch.sigmas.count >= batch.sampleCount,
                     "NoiseKernel.run: \(batch.sigmas.count) sigmas for \(batch.sampleCount) samples")
        precondition(batch.noiseIDs.count >= batch.sampleCount,
                     "NoiseKernel.run: \(batch.noiseIDs.count) noise ids for \(batch.sampleCount) samples")
        precondition(elements.lowerBound >= 0 && elements.upperBound <= batch.totalElements,
                     "NoiseKernel.run: range \(elements) outside the batch's \(batch.totalElements) elements")
        guard !elements.isEmpty else { return false }
        #if arch(x86_64)
        if implementation == .avx512 || implementation == .avx512bf16 {
            return AVX512Kernel.run(job(batch), elements: elements, bf16Instructions: implementation == .avx512bf16)
        }
        #endif
        switch batch.inputType {
        case .f32: return run(batch, elements, input: F32Element.self)
        case .f16: return run(batch, elements, input: F16Element.self)
        case .bf16: return run(batch, elements, input: BF16Element.self)
        }
    }

    private func run<In: KernelElement>(_ batch: NoiseBatch, _ elements: Range<Int>, input: In.Type) -> Bool {
        switch batch.outputType {
        case .f32: FusedPass<In, F32Element>(batch: batch, key: stream.key).run(elements)
        case .f16: FusedPass<In, F16Element>(batch: batch, key: stream.key).run(elements)
        case .bf16: FusedPass<In, BF16Element>(batch: batch, key: stream.key).run(elements)
        }
    }

    #if arch(x86_64)
    private func job(_ batch: NoiseBatch) -> AVX512Kernel.Job {
        func encoding(_ type: ElementType) -> AVX512Kernel.Encoding {
            switch type {
            case .f32: .f32
            case .f16: .f16
            case .bf16: .bf16
            }
        }
        return AVX512Kernel.Job(
            sampleCount: batch.sampleCount, elementsPerSample: batch.elementsPerSample,
            input: batch.input, inputEncoding: encoding(batch.inputType),
            zt: batch.zt, eps: batch.eps, clean: batch.clean, outputEncoding: encoding(batch.outputType),
            sigmas: batch.sigmas.baseAddress!, noiseIDs: batch.noiseIDs.baseAddress!, key: stream.key)
    }
    #endif

    /// Splits totalElements into `parts` contiguous ranges aligned to the kernel's block size
    /// (trailing ranges are empty when there are fewer blocks than parts).
    public static func partition(totalElements: Int, parts: Int) -> [Range<Int>] {
        precondition(parts > 0, "NoiseKernel.partition: parts must be positive, got \(parts)")
        precondition(totalElements >= 0, "NoiseKernel.partition: negative element count \(totalElements)")
        let blocks = (totalElements + blockSize - 1) / blockSize
        let chunk = (blocks + parts - 1) / parts * blockSize
        return (0..<parts).map { part in
            min(part * chunk, totalElements)..<min((part + 1) * chunk, totalElements)
        }
    }
}

/// How a sample's z_t is formed; chosen once per sample so that the exact cases stay exact.
private enum Blend {
    case keepClean
    case copyNoise
    case mix(sigma: SIMD8<Float>, complement: SIMD8<Float>)

    init(sigma: Float) {
        if sigma == 0 {
            self = .keepClean
        } else if sigma == 1 {
            self = .copyNoise
        } else {
            self = .mix(sigma: SIMD8(repeating: sigma), complement: SIMD8(repeating: 1 - sigma))
        }
    }

    @inline(__always)
    func apply(clean: SIMD8<Float>, noise: SIMD8<Float>) -> SIMD8<Float> {
        switch self {
        case .keepClean: clean
        case .copyNoise: noise
        case .mix(let sigma, let complement): VectorMath.fma(sigma, noise, complement * clean)
        }
    }
}

/// One specialisation of the kernel for an (input, output) type pair.
private struct FusedPass<In: KernelElement, Out: KernelElement> {
    let batch: NoiseBatch
    let key: SIMD2<UInt32>

    func run(_ elements: Range<Int>) -> Bool {
        let size = NoiseBlockGenerator.elementCount
        // Edge blocks are computed whole in a scratch area and only their needed part copied out,
        // so every element sees exactly the same arithmetic wherever the range cuts.
        return withUnsafeTemporaryAllocation(byteCount: 4 * size * 4, alignment: 64) { scratch in
            let scratchInput = scratch.baseAddress!
            var nonFinite = SIMD8<UInt32>.zero
            var sampleIndex = elements.lowerBound / batch.elementsPerSample
            while sampleIndex * batch.elementsPerSample < elements.upperBound {
                let sampleStart = sampleIndex * batch.elementsPerSample
                let lower = max(elements.lowerBound, sampleStart) - sampleStart
                let upper = min(elements.upperBound, sampleStart + batch.elementsPerSample) - sampleStart
                let generator = NoiseBlockGenerator(key: key, noiseID: batch.noiseIDs[sampleIndex])
                let blend = Blend(sigma: batch.sigmas[sampleIndex])
                var block = lower / size
                while block * size < upper {
                    let blockStart = block * size
                    if blockStart >= lower && blockStart + size <= upper {
                        let eps = generator.block(block)
                        let index = sampleStart &+ blockStart
                        process(eps, blend, input: batch.input, index, zt: batch.zt, eps: batch.eps,
                                clean: batch.clean, index, nonFinite: &nonFinite)
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

    /// The fused step on 64 consecutive elements at `inIndex` of `input` and `outIndex` of the outputs.
    @inline(__always)
    private func process(
        _ eps: NoiseBlockGenerator.Block, _ blend: Blend,
        input: UnsafeRawPointer, _ inIndex: Int,
        zt: UnsafeMutableRawPointer, eps epsOut: UnsafeMutableRawPointer, clean: UnsafeMutableRawPointer?,
        _ outIndex: Int, nonFinite: inout SIMD8<UInt32>
    ) {
        // Always inlined: with a bf16 output LLVM otherwise leaves it an out-of-line call per vector.
        @inline(__always)
        func step(_ noise: SIMD8<Float>, _ offset: Int) {
            let z0 = In.load8(input, inIndex &+ offset)
            // The exponent field plus one carries into the sign bit only for Inf/NaN.
            nonFinite |= (unsafeBitCast(z0, to: SIMD8<UInt32>.self) & 0x7f80_0000) &+ 0x0080_0000
            Out.store8(blend.apply(clean: z0, noise: noise), zt, outIndex &+ offset)
            Out.store8(noise, epsOut, outIndex &+ offset)
            if let clean { Out.store8(z0, clean, outIndex &+ offset) }
        }
        step(eps.0, 0)
        step(eps.1, 8)
        step(eps.2, 16)
        step(eps.3, 24)
        step(eps.4, 32)
        step(eps.5, 40)
        step(eps.6, 48)
        step(eps.7, 56)
    }

    /// A block only partly inside the range (or the sample): run it whole on a zero-padded copy.
    private func processEdge(
        _ generator: NoiseBlockGenerator, _ block: Int, _ blend: Blend, sampleStart: Int,
        needed: Range<Int>, scratch: UnsafeMutableRawPointer, nonFinite: inout SIMD8<UInt32>
    ) {
        let size = NoiseBlockGenerator.elementCount
        let inBytes = In.elementType.byteCount
        let outBytes = Out.elementType.byteCount
        let blockStart = block * size
        let skip = needed.lowerBound - blockStart
        let count = needed.count
        let scratchZt = scratch + 4 * size, scratchEps = scratch + 8 * size, scratchClean = scratch + 12 * size
        scratch.initializeMemory(as: UInt8.self, repeating: 0, count: size * inBytes)
        (scratch + skip * inBytes).copyMemory(
            from: batch.input + (sampleStart + needed.lowerBound) * inBytes, byteCount: count * inBytes)
        process(generator.block(block), blend, input: UnsafeRawPointer(scratch), 0, zt: scratchZt, eps: scratchEps,
                clean: batch.clean == nil ? nil : scratchClean, 0, nonFinite: &nonFinite)
        let outOffset = (sampleStart + needed.lowerBound) * outBytes
        let byteCount = count * outBytes
        (batch.zt + outOffset).copyMemory(from: scratchZt + skip * outBytes, byteCount: byteCount)
        (batch.eps + outOffset).copyMemory(from: scratchEps + skip * outBytes, byteCount: byteCount)
        if let clean = batch.clean {
            (clean + outOffset).copyMemory(from: scratchClean + skip * outBytes, byteCount: byteCount)
        }
    }
}
