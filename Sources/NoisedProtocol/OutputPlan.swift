import Safetensors

/// Where every tensor of one output message lives, and its header bytes. Built once per message.
///
/// Data order: tensors by element size, largest first (8-byte dtypes, then 4, 2, 1), so each is
/// naturally aligned given the 8-aligned data start; ties keep z_t, eps, z_0, sigma, weight,
/// noise_id, then passthrough tensors in input order.
public struct OutputPlan: Sendable {
    /// Size of the whole output message.
    public let byteCount: Int
    public let outputType: LatentType
    /// Absolute byte ranges in the output message. `zt`, `eps` and `clean` hold `outputType`
    /// elements in the latents' shape; `sigma` and `weight` F32 [B]; `noiseID` U64 [B].
    public let zt: Range<Int>
    public let eps: Range<Int>
    public let clean: Range<Int>?
    public let sigma: Range<Int>
    public let weight: Range<Int>?
    public let noiseID: Range<Int>
    /// The merged metadata written to the header.
    public let metadata: [String: String]

    private let header: [UInt8]
    private let inputByteCount: Int
    private let passthroughCopies: [PassthroughCopy]

    private struct PassthroughCopy: Sendable {
        let source: Range<Int>       // absolute in the input message
        let destination: Range<Int>  // absolute in the output message
    }

    /// - Parameters:
    ///   - outputDType: the resolved output type (see `OutputDType.resolved(for:)`).
    ///   - includeClean: add `z_0`, the clean latents in the output type.
    ///   - includeWeight: add `weight`, F32 [B], for a loss-weighting scheduler.
    ///   - metadata: the daemon's `noised.*` keys; they override input keys of the same name, and
    ///     `noised.protocol` is always set to the protocol version.
    public init(
        input: InputBatch, outputDType: LatentType, includeClean: Bool, includeWeight: Bool,
        metadata: [String: String]
    ) throws(ProtocolError) {
        typealias Entry = SafetensorsLayout.Entry
        let batch = [input.sampleCount]
        var noised: [Entry] = [
            Entry(name: WireNames.noisedLatents, dtype: outputDType.dtype, shape: input.latents.shape),
            Entry(name: WireNames.noise, dtype: outputDType.dtype, shape: input.latents.shape),
        ]
        if includeClean {
            noised.append(Entry(name: WireNames.cleanLatents, dtype: outputDType.dtype, shape: input.latents.shape))
        }
        noised.append(Entry(name: WireNames.sigma, dtype: .F32, shape: batch))
        if includeWeight { noised.append(Entry(name: WireNames.weight, dtype: .F32, shape: batch)) }
        noised.append(Entry(name: WireNames.noiseID, dtype: .U64, shape: batch))
        let passthrough = input.passthrough.map { Entry(name: $0.name, dtype: $0.dtype, shape: $0.shape) }

        // A stable sort on element size alone keeps the tie order listed above.
        var entries: [Entry] = []
        entries.reserveCapacity(noised.count + passthrough.count)
        for size in [8, 4, 2, 1] {
            entries.append(contentsOf: noised.lazy.filter { $0.dtype.byteCount == size })
            entries.append(contentsOf: passthrough.lazy.filter { $0.dtype.byteCount == size })
        }

        var merged = input.metadata
        merged.merge(metadata) { _, daemon in daemon }
        merged[WireNames.protocolKey] = WireNames.protocolVersion

        let layout: SafetensorsLayout
        do {
            layout = try SafetensorsLayout(entries: entries, metadata: merged)
        } catch {
            throw ProtocolError(error)
        }
        // Every name below was placed in the layout just above.
        func range(_ name: String) -> Range<Int> { layout.range(of: name)! }

        self.byteCount = layout.byteCount
        self.outputType = outputDType
        self.zt = range(WireNames.noisedLatents)
        self.eps = range(WireNames.noise)
        self.clean = includeClean ? range(WireNames.cleanLatents) : nil
        self.sigma = range(WireNames.sigma)
        self.weight = includeWeight ? range(WireNames.weight) : nil
        self.noiseID = range(WireNames.noiseID)
        self.metadata = merged
        self.header = layout.header
        self.inputByteCount = input.reader.buffer.count
        let inputDataStart = input.reader.dataStart
        self.passthroughCopies = input.passthrough.map { tensor in
            PassthroughCopy(
                source: (inputDataStart + tensor.dataRange.lowerBound)..<(inputDataStart + tensor.dataRange.upperBound),
                destination: range(tensor.name))
        }
    }

    /// Writes the header and copies the passthrough tensors from the message this plan was made
    /// for; the caller fills z_t, eps, z_0, sigma, weight and noise_id.
    public func writeHeaderAndPassthrough(into output: UnsafeMutableRawBufferPointer, from input: InputBatch) {
        precondition(output.count == byteCount, "output buffer is \(output.count) bytes, plan needs \(byteCount)")
        precondition(input.reader.buffer.count == inputByteCount, "input is not the message this plan was made for")
        UnsafeMutableRawBufferPointer(rebasing: output[0..<header.count]).copyBytes(from: header)
        let source = input.reader.buffer
        for copy in passthroughCopies where !copy.source.isEmpty {
            UnsafeMutableRawBufferPointer(rebasing: output[copy.destination])
                .copyMemory(from: UnsafeRawBufferPointer(rebasing: source[copy.source]))
        }
    }
}
