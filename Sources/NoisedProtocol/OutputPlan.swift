import NoiseKernelCore
import Safetensors

/// Where every tensor of one output message lives, and its header bytes. One per message; batches
/// of one shape share all but the header (see `init(…, reusing:)`).
///
/// Data order: tensors by element size, largest first (8-byte dtypes, then 4, 2, 1), so each is
/// naturally aligned given the 8-aligned data start; ties keep z_t, eps, z_0, sigma, weight,
/// noise_id, cond_mask, then passthrough tensors in input order.
public struct OutputPlan: Sendable {
    /// Size of the whole output message.
    public let byteCount: Int
    public let outputType: ElementType
    /// Absolute byte ranges in the output message. `zt`, `eps` and `clean` hold `outputType`
    /// elements in the latents' shape; `sigma` and `weight` F32 [B], or [B, T] with σ per frame;
    /// `noiseID` U64 [B]; `condMask` BOOL [B, T].
    public let zt: Range<Int>
    public let eps: Range<Int>
    public let clean: Range<Int>?
    public let sigma: Range<Int>
    public let weight: Range<Int>?
    public let noiseID: Range<Int>
    public let condMask: Range<Int>?
    /// σ per sample (1) or frames per sample (T).
    public let sigmasPerSample: Int
    /// The merged metadata written to the header.
    public let metadata: [String: String]

    private let layout: SafetensorsLayout
    private let passthroughCopies: [PassthroughCopy]
    /// What the plan was made from, beyond the metadata: a plan for an input equal in all of
    /// these is this plan with another header.
    private let source: Source

    private struct PassthroughCopy: Sendable {
        let source: Range<Int>       // absolute in the input message
        let destination: Range<Int>  // absolute in the output message
    }

    private struct Source: Equatable, Sendable {
        let latents: TensorInfo
        let passthrough: [TensorInfo]
        let inputMetadata: [String: String]
        let inputDataStart: Int
        let inputByteCount: Int
        let outputDType: ElementType
        let includeClean: Bool
        let includeWeight: Bool
        let frames: Int?
        let includeCondMask: Bool

        init(_ input: InputBatch, outputDType: ElementType, includeClean: Bool, includeWeight: Bool,
             frames: Int?, includeCondMask: Bool) {
            latents = input.latents
            passthrough = input.passthrough
            inputMetadata = input.metadata
            inputDataStart = input.reader.dataStart
            inputByteCount = input.reader.buffer.count
            self.outputDType = outputDType
            self.includeClean = includeClean
            self.includeWeight = includeWeight
            self.frames = frames
            self.includeCondMask = includeCondMask
        }
    }

    /// - Parameters:
    ///   - outputDType: the resolved output type (see `OutputDType.resolved(for:)`).
    ///   - includeClean: add `z_0`, the clean latents in the output type.
    ///   - includeWeight: add `weight`, F32 [B], for a loss-weighting scheduler.
    ///   - frames: T when σ (and weight) go per frame, [B, T]; nil for [B].
    ///   - includeCondMask: add `cond_mask`, BOOL [B, T] (needs `frames`).
    ///   - metadata: the daemon's `noised.*` keys; they override input keys of the same name, and
    ///     `noised.protocol` is always set to the protocol version.
    ///   - previous: a plan made before. When it was made from an input with the same tensors,
    ///     metadata and size, and the same options, only the header is written again (batches of
    ///     one shape differ only in their step and seq). The result is the same either way.
    public init(
        input: InputBatch, outputDType: ElementType, includeClean: Bool, includeWeight: Bool,
        frames: Int? = nil, includeCondMask: Bool = false,
        metadata: [String: String], reusing previous: OutputPlan? = nil
    ) throws(ProtocolError) {
        precondition(!includeCondMask || frames != nil, "OutputPlan: cond_mask needs frames")
        let source = Source(input, outputDType: outputDType, includeClean: includeClean, includeWeight: includeWeight,
                            frames: frames, includeCondMask: includeCondMask)
        var merged = input.metadata
        merged.reserveCapacity(merged.count + metadata.count + 1)
        for (key, value) in metadata { merged[key] = value }
        merged[WireNames.protocolKey] = WireNames.protocolVersion
        do {
            if let previous, previous.source == source {
                try self.init(source: source, layout: previous.layout.replacingMetadata(merged), metadata: merged)
            } else {
                try self.init(source: source, layout: Self.layout(source, metadata: merged), metadata: merged)
            }
        } catch {
            throw ProtocolError(error)
        }
    }

    private static func layout(_ source: Source, metadata: [String: String]) throws(SafetensorsError) -> SafetensorsLayout {
        typealias Entry = SafetensorsLayout.Entry
        let shape = source.latents.shape, batch = [shape[0]], dtype = source.outputDType.dtype
        let perSample = source.frames.map { [shape[0], $0] } ?? batch
        var noised: [Entry] = [
            Entry(name: WireNames.noisedLatents, dtype: dtype, shape: shape),
            Entry(name: WireNames.noise, dtype: dtype, shape: shape),
        ]
        if source.includeClean { noised.append(Entry(name: WireNames.cleanLatents, dtype: dtype, shape: shape)) }
        noised.append(Entry(name: WireNames.sigma, dtype: .F32, shape: perSample))
        if source.includeWeight { noised.append(Entry(name: WireNames.weight, dtype: .F32, shape: perSample)) }
        noised.append(Entry(name: WireNames.noiseID, dtype: .U64, shape: batch))
        if source.includeCondMask { noised.append(Entry(name: WireNames.condMask, dtype: .BOOL, shape: perSample)) }
        let passthrough = source.passthrough.map { Entry(name: $0.name, dtype: $0.dtype, shape: $0.shape) }

        // A stable sort on element size alone keeps the tie order listed above.
        var entries: [Entry] = []
        entries.reserveCapacity(noised.count + passthrough.count)
        for size in [8, 4, 2, 1] {
            entries.append(contentsOf: noised.lazy.filter { $0.dtype.byteCount == size })
            entries.append(contentsOf: passthrough.lazy.filter { $0.dtype.byteCount == size })
        }
        return try SafetensorsLayout(entries: entries, metadata: metadata)
    }

    private init(source: Source, layout: SafetensorsLayout, metadata: [String: String]) {
        // Every name below was placed in the layout.
        func range(_ name: String) -> Range<Int> { layout.range(of: name)! }
        self.byteCount = layout.byteCount
        self.outputType = source.outputDType
        self.zt = range(WireNames.noisedLatents)
        self.eps = range(WireNames.noise)
        self.clean = source.includeClean ? range(WireNames.cleanLatents) : nil
        self.sigma = range(WireNames.sigma)
        self.weight = source.includeWeight ? range(WireNames.weight) : nil
        self.noiseID = range(WireNames.noiseID)
        self.condMask = source.includeCondMask ? range(WireNames.condMask) : nil
        self.sigmasPerSample = source.frames ?? 1
        self.metadata = metadata
        self.layout = layout
        self.source = source
        self.passthroughCopies = source.passthrough.map { tensor in
            PassthroughCopy(
                source: (source.inputDataStart + tensor.dataRange.lowerBound)..<(source.inputDataStart + tensor.dataRange.upperBound),
                destination: range(tensor.name))
        }
    }

    /// The header bytes: the 8-byte length, then the JSON.
    public var header: [UInt8] { layout.header }

    /// Writes the header and copies the passthrough tensors from the message this plan was made
    /// for; the caller fills z_t, eps, z_0, sigma, weight and noise_id.
    public func writeHeaderAndPassthrough(into output: UnsafeMutableRawBufferPointer, from input: InputBatch) {
        precondition(output.count == byteCount, "output buffer is \(output.count) bytes, plan needs \(byteCount)")
        precondition(input.reader.buffer.count == source.inputByteCount, "input is not the message this plan was made for")
        let header = layout.header
        UnsafeMutableRawBufferPointer(rebasing: output[0..<header.count]).copyBytes(from: header)
        let source = input.reader.buffer
        for copy in passthroughCopies where !copy.source.isEmpty {
            UnsafeMutableRawBufferPointer(rebasing: output[copy.destination])
                .copyMemory(from: UnsafeRawBufferPointer(rebasing: source[copy.source]))
        }
    }
}
