#if arch(x86_64)
import CCPUFeatures
import NoiseKernelCore

/// Noise stream v1's fused noising kernel at 512 bits: the same bytes as the 256-bit kernel in
/// NoiseKernel, for x86-64-v4 CPUs. Only `NoiseKernel` calls it, after checking `isSupported`.
package enum AVX512Kernel {
    /// Whether this CPU and OS run the kernel (AVX-512 F/BW/DQ/VL with ZMM state enabled).
    package static let isSupported = noised_cpu_supports_x86_64_v4() != 0
    /// Whether the CPU also has AVX512_BF16, which `run` may use for bf16 outputs.
    package static let hasBF16Instructions = noised_cpu_supports_avx512_bf16() != 0

    /// Writes outputs for flattened elements [range) of the batch (already checked against it by
    /// the caller); returns true if any z_0 in range is non-finite. `bf16Instructions` (only where
    /// `hasBF16Instructions`) rounds bf16 outputs with vcvtne2ps2bf16: the same bytes, fewer
    /// instructions.
    package static func run(_ batch: NoiseBatch, elements: Range<Int>, key: SIMD2<UInt32>, bf16Instructions: Bool) -> Bool {
        precondition(isSupported, "AVX512Kernel.run on a CPU without x86-64-v4")
        precondition(!bf16Instructions || hasBF16Instructions, "AVX512Kernel.run: this CPU has no AVX512_BF16")
        switch batch.inputType {
        case .f32: return run(batch, elements, key, input: F32x16.self, bf16Instructions)
        case .f16: return run(batch, elements, key, input: F16x16.self, bf16Instructions)
        case .bf16: return run(batch, elements, key, input: BF16x16.self, bf16Instructions)
        }
    }

    private static func run<In: Element16>(
        _ batch: NoiseBatch, _ elements: Range<Int>, _ key: SIMD2<UInt32>, input: In.Type, _ bf16Instructions: Bool
    ) -> Bool {
        switch batch.outputType {
        case .f32: FusedPass<FusedStep16<In, F32x16>>.run(batch, elements: elements, key: key)
        case .f16: FusedPass<FusedStep16<In, F16x16>>.run(batch, elements: elements, key: key)
        case .bf16 where bf16Instructions: FusedPass<FusedStep16<In, BF16x16Native>>.run(batch, elements: elements, key: key)
        case .bf16: FusedPass<FusedStep16<In, BF16x16>>.run(batch, elements: elements, key: key)
        }
    }

    /// As `run`, with z_0 drawn from `posterior` in the same pass (the batch's input is the mean).
    package static func runPosterior(
        _ batch: NoiseBatch, _ posterior: PosteriorSource, elements: Range<Int>, key: SIMD2<UInt32>, bf16Instructions: Bool
    ) -> PosteriorScan {
        precondition(isSupported, "AVX512Kernel.runPosterior on a CPU without x86-64-v4")
        precondition(!bf16Instructions || hasBF16Instructions, "AVX512Kernel.runPosterior: this CPU has no AVX512_BF16")
        switch batch.inputType {
        case .f32: return runPosterior(batch, posterior, elements, key, input: F32x16.self, bf16Instructions)
        case .f16: return runPosterior(batch, posterior, elements, key, input: F16x16.self, bf16Instructions)
        case .bf16: return runPosterior(batch, posterior, elements, key, input: BF16x16.self, bf16Instructions)
        }
    }

    private static func runPosterior<In: Element16>(
        _ batch: NoiseBatch, _ posterior: PosteriorSource, _ elements: Range<Int>, _ key: SIMD2<UInt32>, input: In.Type,
        _ bf16Instructions: Bool
    ) -> PosteriorScan {
        switch batch.outputType {
        case .f32: FusedPass<FusedStep16<In, F32x16>>.runPosterior(batch, posterior, elements: elements, key: key)
        case .f16: FusedPass<FusedStep16<In, F16x16>>.runPosterior(batch, posterior, elements: elements, key: key)
        case .bf16 where bf16Instructions:
            FusedPass<FusedStep16<In, BF16x16Native>>.runPosterior(batch, posterior, elements: elements, key: key)
        case .bf16: FusedPass<FusedStep16<In, BF16x16>>.runPosterior(batch, posterior, elements: elements, key: key)
        }
    }

    /// z0[i] = fma(exp(logvar[i] / 2), ξ[i], mean[i]) for i in [range), ξ already in z0; whether
    /// mean and logvar were finite there.
    package static func samplePosterior(
        type: ElementType, mean: UnsafeRawPointer, logvar: UnsafeRawPointer, z0: UnsafeMutablePointer<Float>,
        elements range: Range<Int>
    ) -> (mean: Bool, logvar: Bool) {
        precondition(isSupported, "AVX512Kernel.samplePosterior on a CPU without x86-64-v4")
        switch type {
        case .f32: return samplePosterior(F32x16.self, type, mean, logvar, z0, range)
        case .f16: return samplePosterior(F16x16.self, type, mean, logvar, z0, range)
        case .bf16: return samplePosterior(BF16x16.self, type, mean, logvar, z0, range)
        }
    }

    @inline(__always)
    private static func samplePosterior<In: Element16>(
        _: In.Type, _ type: ElementType, _ mean: UnsafeRawPointer, _ logvar: UnsafeRawPointer,
        _ z0: UnsafeMutablePointer<Float>, _ range: Range<Int>
    ) -> (mean: Bool, logvar: Bool) {
        var meanScan = NonFiniteScan<SIMD16<UInt32>>(), logvarScan = NonFiniteScan<SIMD16<UInt32>>()
        let raw = UnsafeMutableRawPointer(z0)
        var index = range.lowerBound
        while index + 16 <= range.upperBound {
            let m = In.load16(mean, index), lv = In.load16(logvar, index)
            meanScan.observe(m)
            logvarScan.observe(lv)
            let xi = raw.loadUnaligned(fromByteOffset: index &* 4, as: SIMD16<Float>.self)
            raw.storeBytes(of: PosteriorMath<Lanes16>.sample(mean: m, logvar: lv, xi: xi), toByteOffset: index &* 4,
                           as: SIMD16<Float>.self)
            index += 16
        }
        var finite = (mean: !meanScan.found, logvar: !logvarScan.found)
        // The last few elements one lane at a time, with the same arithmetic.
        while index < range.upperBound {
            let m = type.load(from: mean, at: index), lv = type.load(from: logvar, at: index)
            finite.mean = finite.mean && m.isFinite
            finite.logvar = finite.logvar && lv.isFinite
            z0[index] = PosteriorMath<Lanes16>.sample(mean: SIMD16(repeating: m), logvar: SIMD16(repeating: lv),
                                                      xi: SIMD16(repeating: z0[index]))[0]
            index += 1
        }
        return finite
    }

    /// eps of one sample for elements [range) in f32, before any output rounding (NoiseStream.fill).
    package static func fillEps(
        key: SIMD2<UInt32>, noiseID: UInt64, elements: Range<Int>, into base: UnsafeMutablePointer<Float>
    ) {
        precondition(isSupported, "AVX512Kernel.fillEps on a CPU without x86-64-v4")
        NoiseKernelCore.fillEps(BlockGenerator16.self, key: key, noiseID: noiseID, elements: elements, into: base)
    }
}
#endif
