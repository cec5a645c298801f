#if arch(x86_64)
import CCPUFeatures

/// Noise stream v1's fused noising kernel at 512 bits: the same bytes as the 256-bit kernel in
/// NoiseKernel, for x86-64-v4 CPUs. Only `NoiseKernel` calls it, after checking `isSupported`.
package enum AVX512Kernel {
    /// Whether this CPU and OS run the kernel (AVX-512 F/BW/DQ/VL with ZMM state enabled).
    package static let isSupported = noised_cpu_supports_x86_64_v4() != 0
    /// Whether the CPU also has AVX512_BF16, which `run` may use for bf16 outputs.
    package static let hasBF16Instructions = noised_cpu_supports_avx512_bf16() != 0

    package enum Encoding: Sendable {
        case f32, f16, bf16
    }

    /// One batch as raw views; the layout and meaning are those of NoiseKernel's `NoiseBatch`.
    package struct Job {
        package var sampleCount: Int
        package var elementsPerSample: Int
        package var input: UnsafeRawPointer
        package var inputEncoding: Encoding
        package var zt: UnsafeMutableRawPointer
        package var eps: UnsafeMutableRawPointer
        package var clean: UnsafeMutableRawPointer?
        package var outputEncoding: Encoding
        package var sigmas: UnsafePointer<Float>
        package var noiseIDs: UnsafePointer<UInt64>
        package var key: SIMD2<UInt32>

        package init(
            sampleCount: Int, elementsPerSample: Int, input: UnsafeRawPointer, inputEncoding: Encoding,
            zt: UnsafeMutableRawPointer, eps: UnsafeMutableRawPointer, clean: UnsafeMutableRawPointer?,
            outputEncoding: Encoding, sigmas: UnsafePointer<Float>, noiseIDs: UnsafePointer<UInt64>,
            key: SIMD2<UInt32>
        ) {
            (self.sampleCount, self.elementsPerSample) = (sampleCount, elementsPerSample)
            (self.input, self.inputEncoding) = (input, inputEncoding)
            (self.zt, self.eps, self.clean, self.outputEncoding) = (zt, eps, clean, outputEncoding)
            (self.sigmas, self.noiseIDs, self.key) = (sigmas, noiseIDs, key)
        }
    }

    /// Writes outputs for flattened elements [range) (already checked against the job by the
    /// caller); returns true if any z_0 in range is non-finite. `bf16Instructions` (only where
    /// `hasBF16Instructions`) rounds bf16 outputs with vcvtne2ps2bf16: the same bytes, fewer
    /// instructions.
    package static func run(_ job: Job, elements: Range<Int>, bf16Instructions: Bool) -> Bool {
        precondition(isSupported, "AVX512Kernel.run on a CPU without x86-64-v4")
        precondition(!bf16Instructions || hasBF16Instructions, "AVX512Kernel.run: this CPU has no AVX512_BF16")
        switch job.inputEncoding {
        case .f32: return run(job, elements, input: F32x16.self, bf16Instructions)
        case .f16: return run(job, elements, input: F16x16.self, bf16Instructions)
        case .bf16: return run(job, elements, input: BF16x16.self, bf16Instructions)
        }
    }

    private static func run<In: Element16>(
        _ job: Job, _ elements: Range<Int>, input: In.Type, _ bf16Instructions: Bool
    ) -> Bool {
        switch job.outputEncoding {
        case .f32: FusedPass16<In, F32x16>(job: job).run(elements)
        case .f16: FusedPass16<In, F16x16>(job: job).run(elements)
        case .bf16 where bf16Instructions: FusedPass16<In, BF16x16Native>(job: job).run(elements)
        case .bf16: FusedPass16<In, BF16x16>(job: job).run(elements)
        }
    }
}
#endif
