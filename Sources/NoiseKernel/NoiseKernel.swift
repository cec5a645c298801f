#if arch(x86_64)
import NoiseKernelAVX512
#endif
import NoiseKernelCore

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
    public static var blockSize: Int { NoiseStreamV1.blockElements }

    public init(stream: NoiseStream, implementation: Implementation = .best) {
        precondition(implementation.isAvailable, "NoiseKernel: \(implementation) is not available on this CPU")
        self.stream = stream
        self.implementation = implementation
    }

    /// Writes outputs for flattened elements [range) of the batch; returns true if any z_0 in range
    /// is non-finite. Any split of a batch into ranges gives the same bytes as one call for all.
    @discardableResult
    public func run(_ batch: NoiseBatch, elements: Range<Int>) -> Bool {
        precondition(elements.lowerBound >= 0 && elements.upperBound <= batch.totalElements,
                     "NoiseKernel.run: range \(elements) outside the batch's \(batch.totalElements) elements")
        guard !elements.isEmpty else { return false }
        #if arch(x86_64)
        if implementation == .avx512 || implementation == .avx512bf16 {
            return AVX512Kernel.run(batch, elements: elements, key: stream.key, bf16Instructions: implementation == .avx512bf16)
        }
        #endif
        switch batch.inputType {
        case .f32: return run(batch, elements, input: F32Element.self)
        case .f16: return run(batch, elements, input: F16Element.self)
        case .bf16: return run(batch, elements, input: BF16Element.self)
        }
    }

    /// As `run`, with z_0 drawn from a posterior in the same pass: the batch's input is the mean,
    /// `posterior` holds the logvar and ξ's key (`PosteriorSample.noise`).
    func runPosterior(_ batch: NoiseBatch, _ posterior: PosteriorSource, elements: Range<Int>) -> PosteriorScan {
        precondition(elements.lowerBound >= 0 && elements.upperBound <= batch.totalElements,
                     "NoiseKernel.runPosterior: range \(elements) outside the batch's \(batch.totalElements) elements")
        guard !elements.isEmpty else { return PosteriorScan() }
        #if arch(x86_64)
        if implementation == .avx512 || implementation == .avx512bf16 {
            return AVX512Kernel.runPosterior(batch, posterior, elements: elements, key: stream.key,
                                             bf16Instructions: implementation == .avx512bf16)
        }
        #endif
        switch batch.inputType {
        case .f32: return runPosterior(batch, posterior, elements, input: F32Element.self)
        case .f16: return runPosterior(batch, posterior, elements, input: F16Element.self)
        case .bf16: return runPosterior(batch, posterior, elements, input: BF16Element.self)
        }
    }

    private func runPosterior<In: KernelElement>(_ batch: NoiseBatch, _ posterior: PosteriorSource, _ elements: Range<Int>,
                                                 input: In.Type) -> PosteriorScan {
        switch batch.outputType {
        case .f32: FusedPass<FusedStep8<In, F32Element>>.runPosterior(batch, posterior, elements: elements, key: stream.key)
        case .f16: FusedPass<FusedStep8<In, F16Element>>.runPosterior(batch, posterior, elements: elements, key: stream.key)
        case .bf16: FusedPass<FusedStep8<In, BF16Element>>.runPosterior(batch, posterior, elements: elements, key: stream.key)
        }
    }

    private func run<In: KernelElement>(_ batch: NoiseBatch, _ elements: Range<Int>, input: In.Type) -> Bool {
        switch batch.outputType {
        case .f32: FusedPass<FusedStep8<In, F32Element>>.run(batch, elements: elements, key: stream.key)
        case .f16: FusedPass<FusedStep8<In, F16Element>>.run(batch, elements: elements, key: stream.key)
        case .bf16: FusedPass<FusedStep8<In, BF16Element>>.run(batch, elements: elements, key: stream.key)
        }
    }

    /// Below this many elements per part (about a quarter of a millisecond of kernel time), waking
    /// another worker costs more than it saves: on cores shared with producers and trainers the
    /// woken worker waits for a core while the caller waits for it.
    static let minimumElementsPerPart = 1 << 18
    /// Parts per worker for larger batches. The workers take parts as they become free, so a
    /// worker that waits for a core (or loses it to a neighbour) leaves its later parts to the
    /// others instead of holding up the batch, as one part per worker would.
    static let partsPerWorker = 4

    /// How a batch of `totalElements` is split across `workers`: one part below two minimum
    /// parts, otherwise parts of at least `minimumElementsPerPart`, at most `partsPerWorker` per
    /// worker. The daemon and `noised bench` split their batches so.
    public static func partition(totalElements: Int, workers: Int) -> [Range<Int>] {
        let parts = workers == 1 ? 1 : min(workers * partsPerWorker, totalElements / minimumElementsPerPart)
        return partition(totalElements: totalElements, parts: max(1, parts))
    }

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

/// The 256-bit fused step for one (input, output) type pair, one block of 64 elements at a time.
struct FusedStep8<In: KernelElement, Out: KernelElement>: FusedStep {
    typealias Width = Lanes8
    private var nonFinite = NonFiniteScan<SIMD8<UInt32>>()
    private var nonFiniteMean = NonFiniteScan<SIMD8<UInt32>>(), nonFiniteLogvar = NonFiniteScan<SIMD8<UInt32>>()
    var sawNonFinite: Bool { nonFinite.found }
    var sawNonFiniteMean: Bool { nonFiniteMean.found }
    var sawNonFiniteLogvar: Bool { nonFiniteLogvar.found }

    @inline(__always)
    mutating func noise(
        _ blocks: NoiseBlockGenerator, _ block: Int, count: Int, _ blend: Blend<Lanes8>,
        input: UnsafeRawPointer, _ inIndex: Int, outputs: FusedOutputs, _ outIndex: Int
    ) {
        let eps = blocks.block(block)
        // Always inlined: with a bf16 output LLVM otherwise leaves it an out-of-line call per vector.
        @inline(__always)
        func step(_ noise: SIMD8<Float>, _ offset: Int) {
            self.step(noise, In.load8(input, inIndex &+ offset), blend, outputs: outputs, outIndex &+ offset)
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

    @inline(__always)
    mutating func noisePosterior(
        _ blocks: NoiseBlockGenerator, xi: NoiseBlockGenerator, _ block: Int, count: Int, _ blend: Blend<Lanes8>,
        mean: UnsafeRawPointer, logvar: UnsafeRawPointer, _ inIndex: Int, outputs: FusedOutputs, _ outIndex: Int
    ) {
        let xi = xi.block(block), eps = blocks.block(block)
        @inline(__always)
        func step(_ noise: SIMD8<Float>, _ xi: SIMD8<Float>, _ offset: Int) {
            let m = In.load8(mean, inIndex &+ offset), lv = In.load8(logvar, inIndex &+ offset)
            nonFiniteMean.observe(m)
            nonFiniteLogvar.observe(lv)
            self.step(noise, PosteriorMath<Lanes8>.sample(mean: m, logvar: lv, xi: xi), blend, outputs: outputs, outIndex &+ offset)
        }
        step(eps.0, xi.0, 0)
        step(eps.1, xi.1, 8)
        step(eps.2, xi.2, 16)
        step(eps.3, xi.3, 24)
        step(eps.4, xi.4, 32)
        step(eps.5, xi.5, 40)
        step(eps.6, xi.6, 48)
        step(eps.7, xi.7, 56)
    }

    /// z_t, eps and z_0 of eight elements.
    @inline(__always)
    private mutating func step(_ noise: SIMD8<Float>, _ z0: SIMD8<Float>, _ blend: Blend<Lanes8>, outputs: FusedOutputs, _ index: Int) {
        nonFinite.observe(z0)
        Out.store8(blend.apply(clean: z0, noise: noise), outputs.zt, index)
        Out.store8(noise, outputs.eps, index)
        if let clean = outputs.clean { Out.store8(z0, clean, index) }
    }
}
