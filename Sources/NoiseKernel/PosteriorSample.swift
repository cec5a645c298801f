#if arch(x86_64)
import NoiseKernelAVX512
#endif
import NoiseKernelCore

/// A VAE posterior sample, z_0 = mean + exp(logvar / 2) · ξ in f32 (`input.posterior`): ξ is
/// noise stream v1 under the posterior key, the seed with its high word XOR "POST", so ξ of a
/// sample is eps of the same noise id under that seed (docs/noise-stream.md).
public struct PosteriorSample: Sendable {
    /// The ξ stream.
    public let xi: NoiseStream

    public init(seed: UInt64) {
        xi = NoiseStream(seed: seed ^ (UInt64(NoiseStreamV1.posteriorKeyTweak) << 32))
    }

    /// What the draw saw of its inputs.
    public struct Finiteness: Sendable, Equatable {
        public var mean = true
        public var logvar = true

        public init(mean: Bool = true, logvar: Bool = true) {
            (self.mean, self.logvar) = (mean, logvar)
        }
    }

    /// One batch's posterior: `sampleCount` samples of `elementsPerSample` elements of `mean` and
    /// `logvar` (of `type`), their noise ids, and where z_0 goes (f32). Sizes are checked once,
    /// here; the caller keeps the memory alive while a draw runs.
    // @unchecked: a view of memory the caller owns; draws write disjoint ranges of `z0`.
    public struct Batch: @unchecked Sendable {
        public let mean: UnsafeRawBufferPointer
        public let logvar: UnsafeRawBufferPointer
        public let type: ElementType
        public let sampleCount: Int
        public let elementsPerSample: Int
        public let noiseIDs: UnsafeBufferPointer<UInt64>
        public let z0: UnsafeMutableBufferPointer<Float>

        public init(mean: UnsafeRawBufferPointer, logvar: UnsafeRawBufferPointer, type: ElementType, sampleCount: Int,
                    elementsPerSample: Int, noiseIDs: UnsafeBufferPointer<UInt64>, z0: UnsafeMutableBufferPointer<Float>) {
            let (total, overflow) = sampleCount.multipliedReportingOverflow(by: elementsPerSample)
            precondition(sampleCount >= 0 && elementsPerSample >= 0 && !overflow,
                         "PosteriorSample.Batch: bad shape \(sampleCount) x \(elementsPerSample)")
            precondition(mean.count >= total * type.byteCount && logvar.count >= total * type.byteCount,
                         "PosteriorSample.Batch: mean or logvar holds fewer than \(total) \(type) elements")
            precondition(z0.count >= total && noiseIDs.count >= sampleCount, "PosteriorSample.Batch: z0 or noise ids too short")
            precondition(total == 0 || (mean.baseAddress != nil && logvar.baseAddress != nil && z0.baseAddress != nil),
                         "PosteriorSample.Batch: a buffer without memory")
            (self.mean, self.logvar, self.type) = (mean, logvar, type)
            (self.sampleCount, self.elementsPerSample, self.noiseIDs, self.z0) = (sampleCount, elementsPerSample, noiseIDs, z0)
        }

        public var totalElements: Int { sampleCount * elementsPerSample }
    }

    /// Writes z_0 for flattened elements [range) of the batch. Ranges of one batch can be drawn in
    /// parallel; the result does not depend on the split.
    public func draw(_ batch: Batch, elements range: Range<Int>, implementation: NoiseKernel.Implementation = .best) -> Finiteness {
        precondition(implementation.isAvailable, "PosteriorSample.draw: \(implementation) is not available on this CPU")
        precondition(range.lowerBound >= 0 && range.upperBound <= batch.totalElements,
                     "PosteriorSample: range \(range) outside \(batch.totalElements) elements")
        guard !range.isEmpty else { return Finiteness() }
        let z0Base = batch.z0.baseAddress!, perSample = batch.elementsPerSample
        let mean = batch.mean.baseAddress!, logvar = batch.logvar.baseAddress!
        var finiteness = Finiteness()
        // Chunk by chunk, so ξ is combined while it is still in cache.
        var lower = range.lowerBound
        while lower < range.upperBound {
            let sample = lower / perSample, start = sample * perSample
            let upper = min(range.upperBound, start + perSample, lower + Self.chunkElements)
            xi.fill(noiseID: batch.noiseIDs[sample], elements: (lower - start)..<(upper - start),
                    into: UnsafeMutableBufferPointer(start: z0Base + lower, count: upper - lower), implementation: implementation)
            let seen = Self.combine(batch.type, mean, logvar, z0Base, lower..<upper, implementation: implementation)
            finiteness.mean = finiteness.mean && seen.mean
            finiteness.logvar = finiteness.logvar && seen.logvar
            lower = upper
        }
        return finiteness
    }

    /// Draws z_0 for elements [range) and noises it with `kernel` in one pass: `batch` reads the
    /// posterior's mean as its input and `logvar` holds the same elements of the same type. The
    /// bytes equal noising the z_0 of `draw`. Returns what the draw saw and whether any z_0 was
    /// non-finite.
    public func noise(_ batch: NoiseBatch, logvar: UnsafeRawBufferPointer, kernel: NoiseKernel, elements range: Range<Int>)
        -> (finiteness: Finiteness, nonFinite: Bool) {
        precondition(logvar.count >= batch.totalElements * batch.inputType.byteCount && (batch.totalElements == 0 || logvar.baseAddress != nil),
                     "PosteriorSample.noise: logvar holds fewer than \(batch.totalElements) \(batch.inputType) elements")
        guard !range.isEmpty else { return (Finiteness(), false) }
        let scan = kernel.runPosterior(batch, PosteriorSource(logvar: logvar.baseAddress!, key: xi.key), elements: range)
        return (Finiteness(mean: !scan.nonFiniteMean, logvar: !scan.nonFiniteLogvar), scan.nonFiniteZ0)
    }

    /// Elements drawn at a time: ξ, mean, logvar and z_0 of a chunk stay in the L1/L2 caches.
    static let chunkElements = 8192

    /// z0[i] = fma(exp(logvar[i] / 2), ξ[i], mean[i]) over the range in the implementation's width
    /// (the same bits at every width: `PosteriorMath`).
    private static func combine(
        _ type: ElementType, _ mean: UnsafeRawPointer, _ logvar: UnsafeRawPointer, _ z0: UnsafeMutablePointer<Float>,
        _ range: Range<Int>, implementation: NoiseKernel.Implementation
    ) -> Finiteness {
        #if arch(x86_64)
        if implementation == .avx512 || implementation == .avx512bf16 {
            let seen = AVX512Kernel.samplePosterior(type: type, mean: mean, logvar: logvar, z0: z0, elements: range)
            return Finiteness(mean: seen.mean, logvar: seen.logvar)
        }
        #endif
        switch type {
        case .f32: return combine(F32Element.self, mean, logvar, z0, range)
        case .f16: return combine(F16Element.self, mean, logvar, z0, range)
        case .bf16: return combine(BF16Element.self, mean, logvar, z0, range)
        }
    }

    /// z0[i] = fma(exp(logvar[i] / 2), ξ[i], mean[i]) over the range, ξ already in z0.
    @inline(__always)
    private static func combine<In: KernelElement>(
        _: In.Type, _ mean: UnsafeRawPointer, _ logvar: UnsafeRawPointer, _ z0: UnsafeMutablePointer<Float>,
        _ range: Range<Int>
    ) -> Finiteness {
        var meanScan = NonFiniteScan<SIMD8<UInt32>>(), logvarScan = NonFiniteScan<SIMD8<UInt32>>()
        var index = range.lowerBound
        let raw = UnsafeMutableRawPointer(z0)
        while index + 8 <= range.upperBound {
            let m = In.load8(mean, index), lv = In.load8(logvar, index)
            meanScan.observe(m)
            logvarScan.observe(lv)
            let xi = raw.loadUnaligned(fromByteOffset: index &* 4, as: SIMD8<Float>.self)
            raw.storeBytes(of: PosteriorMath<Lanes8>.sample(mean: m, logvar: lv, xi: xi), toByteOffset: index &* 4, as: SIMD8<Float>.self)
            index += 8
        }
        var finiteness = Finiteness(mean: !meanScan.found, logvar: !logvarScan.found)
        let type = In.elementType
        // The last few elements one lane at a time, with the same arithmetic.
        while index < range.upperBound {
            let m = type.load(from: mean, at: index), lv = type.load(from: logvar, at: index)
            finiteness.mean = finiteness.mean && m.isFinite
            finiteness.logvar = finiteness.logvar && lv.isFinite
            let lanes = PosteriorMath<Lanes8>.sample(mean: SIMD8(repeating: m), logvar: SIMD8(repeating: lv), xi: SIMD8(repeating: z0[index]))
            z0[index] = lanes[0]
            index += 1
        }
        return finiteness
    }
}
