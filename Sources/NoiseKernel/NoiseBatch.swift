/// Raw views of one batch for the kernel; the caller keeps the memory alive while the kernel runs.
/// Layout: `sampleCount` samples of `elementsPerSample` contiguous elements each, flattened.
public struct NoiseBatch: @unchecked Sendable {
    public var sampleCount: Int
    public var elementsPerSample: Int
    public var input: UnsafeRawPointer
    public var inputType: ElementType
    public var zt: UnsafeMutableRawPointer
    public var eps: UnsafeMutableRawPointer
    /// z_0 re-encoded in `outputType`, written only when non-nil.
    public var clean: UnsafeMutableRawPointer?
    public var outputType: ElementType
    public var sigmas: UnsafeBufferPointer<Float>
    public var noiseIDs: UnsafeBufferPointer<UInt64>

    public init(
        sampleCount: Int, elementsPerSample: Int,
        input: UnsafeRawPointer, inputType: ElementType,
        zt: UnsafeMutableRawPointer, eps: UnsafeMutableRawPointer, clean: UnsafeMutableRawPointer?,
        outputType: ElementType,
        sigmas: UnsafeBufferPointer<Float>, noiseIDs: UnsafeBufferPointer<UInt64>
    ) {
        self.sampleCount = sampleCount
        self.elementsPerSample = elementsPerSample
        self.input = input
        self.inputType = inputType
        self.zt = zt
        self.eps = eps
        self.clean = clean
        self.outputType = outputType
        self.sigmas = sigmas
        self.noiseIDs = noiseIDs
    }

    public var totalElements: Int { sampleCount * elementsPerSample }
}
