/// How σ varies inside a sample: element e of a sample is in frame (e / frameElements) % frames
/// (a [B, C, T, H, W] latent with frames on axis 2 has frames = T and frameElements = H·W), and
/// takes σ[sample · frames + frame]. One frame of the whole sample is one σ per sample.
public struct FrameLayout: Sendable, Equatable {
    public let frames: Int
    public let frameElements: Int

    public init(frames: Int, frameElements: Int) {
        precondition(frames >= 1 && frameElements >= 1, "FrameLayout: \(frames) frames of \(frameElements) elements")
        (self.frames, self.frameElements) = (frames, frameElements)
    }

    /// One σ per sample.
    public static func wholeSample(elements: Int) -> FrameLayout { FrameLayout(frames: 1, frameElements: max(elements, 1)) }
}

/// One batch for the kernel: `sampleCount` samples of `elementsPerSample` contiguous elements
/// each, flattened, with their σ (one per frame of `layout`) and noise ids. The buffers' sizes are
/// checked once, here; the caller keeps the memory alive while a kernel runs.
// @unchecked: a view of memory the caller owns; the kernel writes disjoint ranges of it.
public struct NoiseBatch: @unchecked Sendable {
    public let sampleCount: Int
    public let elementsPerSample: Int
    public let input: UnsafeRawBufferPointer
    public let inputType: ElementType
    public let zt: UnsafeMutableRawBufferPointer
    public let eps: UnsafeMutableRawBufferPointer
    /// z_0 re-encoded in `outputType`, written only when non-nil.
    public let clean: UnsafeMutableRawBufferPointer?
    public let outputType: ElementType
    public let sigmas: UnsafeBufferPointer<Float>
    public let noiseIDs: UnsafeBufferPointer<UInt64>
    public let layout: FrameLayout

    public init(
        sampleCount: Int, elementsPerSample: Int,
        input: UnsafeRawBufferPointer, inputType: ElementType,
        zt: UnsafeMutableRawBufferPointer, eps: UnsafeMutableRawBufferPointer, clean: UnsafeMutableRawBufferPointer?,
        outputType: ElementType,
        sigmas: UnsafeBufferPointer<Float>, noiseIDs: UnsafeBufferPointer<UInt64>, layout: FrameLayout? = nil
    ) {
        let layout = layout ?? .wholeSample(elements: elementsPerSample)
        precondition(sampleCount >= 0 && elementsPerSample >= 0,
                     "NoiseBatch: negative shape \(sampleCount) x \(elementsPerSample)")
        let (total, overflow) = sampleCount.multipliedReportingOverflow(by: elementsPerSample)
        precondition(!overflow, "NoiseBatch: \(sampleCount) x \(elementsPerSample) elements overflow")
        func check(_ name: String, _ count: Int, _ type: ElementType) {
            precondition(count >= total * type.byteCount,
                         "NoiseBatch: \(name) holds \(count) bytes for \(total) \(type) elements")
        }
        check("input", input.count, inputType)
        check("zt", zt.count, outputType)
        check("eps", eps.count, outputType)
        if let clean { check("clean", clean.count, outputType) }
        precondition(elementsPerSample % (layout.frames * layout.frameElements) == 0 || elementsPerSample == 0,
                     "NoiseBatch: \(layout.frames) frames of \(layout.frameElements) elements do not tile a sample of \(elementsPerSample)")
        precondition(sigmas.count >= sampleCount * layout.frames,
                     "NoiseBatch: \(sigmas.count) sigmas for \(sampleCount) samples of \(layout.frames) frames")
        precondition(noiseIDs.count >= sampleCount, "NoiseBatch: \(noiseIDs.count) noise ids for \(sampleCount) samples")
        precondition(total == 0 || (input.baseAddress != nil && zt.baseAddress != nil && eps.baseAddress != nil),
                     "NoiseBatch: a buffer without memory")
        (self.sampleCount, self.elementsPerSample) = (sampleCount, elementsPerSample)
        (self.input, self.inputType) = (input, inputType)
        (self.zt, self.eps, self.clean, self.outputType) = (zt, eps, clean, outputType)
        (self.sigmas, self.noiseIDs, self.layout) = (sigmas, noiseIDs, layout)
    }

    public var totalElements: Int { sampleCount * elementsPerSample }
}
