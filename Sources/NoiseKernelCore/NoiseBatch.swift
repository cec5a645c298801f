/// One batch for the kernel: `sampleCount` samples of `elementsPerSample` contiguous elements
/// each, flattened, with their σ and noise ids. The buffers' sizes are checked once, here; the
/// caller keeps the memory alive while a kernel runs.
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

    public init(
        sampleCount: Int, elementsPerSample: Int,
        input: UnsafeRawBufferPointer, inputType: ElementType,
        zt: UnsafeMutableRawBufferPointer, eps: UnsafeMutableRawBufferPointer, clean: UnsafeMutableRawBufferPointer?,
        outputType: ElementType,
        sigmas: UnsafeBufferPointer<Float>, noiseIDs: UnsafeBufferPointer<UInt64>
    ) {
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
        precondition(sigmas.count >= sampleCount, "NoiseBatch: \(sigmas.count) sigmas for \(sampleCount) samples")
        precondition(noiseIDs.count >= sampleCount, "NoiseBatch: \(noiseIDs.count) noise ids for \(sampleCount) samples")
        precondition(total == 0 || (input.baseAddress != nil && zt.baseAddress != nil && eps.baseAddress != nil),
                     "NoiseBatch: a buffer without memory")
        (self.sampleCount, self.elementsPerSample) = (sampleCount, elementsPerSample)
        (self.input, self.inputType) = (input, inputType)
        (self.zt, self.eps, self.clean, self.outputType) = (zt, eps, clean, outputType)
        (self.sigmas, self.noiseIDs) = (sigmas, noiseIDs)
    }

    public var totalElements: Int { sampleCount * elementsPerSample }
}
