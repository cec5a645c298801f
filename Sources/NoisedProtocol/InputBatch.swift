import NoiseKernelCore
import Safetensors

/// The tensors of a VAE posterior that replace the latents (`input.posterior`): z_0 is sampled
/// from N(mean, exp(logvar)) by the daemon.
public struct PosteriorTensors: Sendable, Equatable {
    public var mean: String
    public var logvar: String

    public init(mean: String, logvar: String) {
        (self.mean, self.logvar) = (mean, logvar)
    }
}

/// A validated view of one received input message. Nothing is copied except the noise ids; the
/// message buffer must stay alive while the batch is used.
public struct InputBatch {
    public let reader: SafetensorsReader
    /// The latents, or with a posterior its `mean`.
    public let latents: TensorInfo
    /// With a posterior: its `logvar`, of the latents' shape and dtype.
    public let logvar: TensorInfo?
    public let latentType: ElementType
    /// The batch size B (first dimension of the latents).
    public let sampleCount: Int
    /// Elements per sample: the product of the latent shape after B (1 for a 1-D latent).
    public let elementsPerSample: Int
    /// The producer's noise ids, one per sample, if it sent any.
    public let noiseIDs: [UInt64]?
    /// Every other tensor, in input data order, to copy to the output unchanged.
    public let passthrough: [TensorInfo]
    public var metadata: [String: String] { reader.metadata }

    /// The latent bytes in place in the message.
    public var latentBytes: UnsafeRawBufferPointer { reader.bytes(of: latents) }
    public var logvarBytes: UnsafeRawBufferPointer? { logvar.map { reader.bytes(of: $0) } }

    /// - Parameters:
    ///   - latentTensor: the config's `input.tensor`.
    ///   - maxBatch: the most samples accepted (`input.max_batch`).
    ///   - maxHeaderBytes: the longest safetensors header accepted.
    ///   - posterior: the config's `input.posterior`; when set, its `mean` is the latent tensor.
    public init(message: UnsafeRawBufferPointer, latentTensor: String, posterior: PosteriorTensors? = nil, maxBatch: Int,
                maxHeaderBytes: Int = 1 << 20) throws(ProtocolError) {
        var headers = SafetensorsHeaderCache()
        try self.init(message: message, latentTensor: latentTensor, posterior: posterior, maxBatch: maxBatch,
                      maxHeaderBytes: maxHeaderBytes, headers: &headers)
    }

    /// The same, parsing the header through `headers`, which a stream of batches of one shape
    /// makes a comparison of bytes.
    public init(
        message: UnsafeRawBufferPointer, latentTensor configuredTensor: String, posterior: PosteriorTensors? = nil,
        maxBatch: Int, maxHeaderBytes: Int = 1 << 20, headers: inout SafetensorsHeaderCache
    ) throws(ProtocolError) {
        let latentTensor = posterior?.mean ?? configuredTensor
        let reader: SafetensorsReader
        do {
            reader = try headers.reader(message, maxHeaderBytes: maxHeaderBytes)
        } catch {
            throw ProtocolError(error)
        }
        guard let latents = reader.tensor(named: latentTensor) else {
            let names = reader.tensors.map { "\"\($0.name)\"" }.joined(separator: ", ")
            throw ProtocolError(
                .missingLatents, "no tensor named \"\(latentTensor)\" (message has: \(names.isEmpty ? "none" : names))")
        }
        if let reserved = reader.tensors.first(where: { WireNames.reservedInputNames.contains($0.name) }) {
            throw ProtocolError(.reservedName, "input tensor \"\(reserved.name)\" uses a name reserved for the output")
        }
        guard let latentType = ElementType(latents.dtype) else {
            throw ProtocolError(
                .badLatentDType, "latents \"\(latentTensor)\" are \(latents.dtype.rawValue); expected F32, F16 or BF16")
        }
        guard let sampleCount = latents.shape.first else {
            throw ProtocolError(.emptyBatch, "latents \"\(latentTensor)\" are 0-d; expected shape [B, ...]")
        }
        guard sampleCount >= 1 else {
            throw ProtocolError(.emptyBatch, "latents \"\(latentTensor)\" have shape \(latents.shape): batch size 0")
        }
        // Checked before any per-sample allocation: zero-byte latents can claim any B.
        guard sampleCount <= maxBatch else {
            throw ProtocolError(
                .batchTooLarge,
                "latents \"\(latentTensor)\" have shape \(latents.shape): \(sampleCount) samples, over input.max_batch \(maxBatch)")
        }
        var logvar: TensorInfo?
        if let posterior {
            guard let found = reader.tensor(named: posterior.logvar) else {
                let names = reader.tensors.map { "\"\($0.name)\"" }.joined(separator: ", ")
                throw ProtocolError(.missingLatents, "no tensor named \"\(posterior.logvar)\" (input.posterior.logvar; message has: \(names))")
            }
            guard found.dtype == latents.dtype, found.shape == latents.shape else {
                throw ProtocolError(.posteriorMismatch, "logvar \"\(posterior.logvar)\" is \(found.dtype.rawValue) \(found.shape), "
                                    + "mean \"\(latentTensor)\" is \(latents.dtype.rawValue) \(latents.shape): they must match")
            }
            logvar = found
        }
        let elementsPerSample = latents.shape.dropFirst().reduce(1, *)
        guard elementsPerSample >= 1 else {
            throw ProtocolError(.emptyBatch, "latents \"\(latentTensor)\" have shape \(latents.shape): no elements per sample")
        }

        var noiseIDs: [UInt64]?
        if let noiseIDTensor = reader.tensor(named: WireNames.noiseID) {
            noiseIDs = try Self.readNoiseIDs(noiseIDTensor, bytes: reader.bytes(of: noiseIDTensor), sampleCount: sampleCount)
        }

        self.reader = reader
        self.latents = latents
        self.logvar = logvar
        self.latentType = latentType
        self.sampleCount = sampleCount
        self.elementsPerSample = elementsPerSample
        self.noiseIDs = noiseIDs
        self.passthrough = reader.tensors.filter {
            $0.name != latentTensor && $0.name != WireNames.noiseID && $0.name != logvar?.name
        }
    }

    private static func readNoiseIDs(
        _ tensor: TensorInfo, bytes: UnsafeRawBufferPointer, sampleCount: Int
    ) throws(ProtocolError) -> [UInt64] {
        guard tensor.dtype == .I64 || tensor.dtype == .U64 else {
            throw ProtocolError(.badNoiseID, "noise_id is \(tensor.dtype.rawValue); expected I64 or U64")
        }
        guard tensor.shape == [sampleCount] else {
            throw ProtocolError(.badNoiseID, "noise_id has shape \(tensor.shape); expected [\(sampleCount)] to match the latents")
        }
        // Producers need not align the data region, so load unaligned.
        var ids: [UInt64] = []
        ids.reserveCapacity(sampleCount)
        for index in 0..<sampleCount {
            let id = UInt64(littleEndian: bytes.loadUnaligned(fromByteOffset: index * 8, as: UInt64.self))
            if tensor.dtype == .I64 && Int64(bitPattern: id) < 0 {
                throw ProtocolError(.badNoiseID, "noise_id[\(index)] is \(Int64(bitPattern: id)); I64 noise ids must be >= 0")
            }
            ids.append(id)
        }
        return ids
    }
}
