import Configuration
import NoiseKernel
import NoisedProtocol
import Safetensors
import Schedule

/// What the noising of one batch depends on, resolved from the config. Swapped as a whole on reload.
public struct NoisingSettings: Sendable {
    public var latentTensor: String
    public var maxMessageBytes: Int
    public var rejectNonfinite: Bool
    public var outputDType: OutputDType
    public var includeClean: Bool
    public var batchesPerStep: Int
    public var instance: UInt16
    public var schedule: SigmaSchedule

    public init(_ config: NoisedConfig) {
        latentTensor = config.input.tensor
        maxMessageBytes = config.input.maxMessageBytes
        rejectNonfinite = config.input.rejectNonfinite
        outputDType = config.output.dtype
        includeClean = config.output.includeClean
        batchesPerStep = config.steps.batchesPerStep
        instance = config.instance
        schedule = config.schedule
    }
}

/// One noised batch, in a pooled buffer, ready to send.
public struct NoisedMessage: Sendable {
    public let buffer: MessageBufferPool.Buffer
    public let byteCount: Int
    public let sampleCount: Int
    public let step: Int64
    public let sigmas: [Float]
}

/// Turns one received message into one output message: validate the wire format, draw σ from the
/// schedule, run the kernel across the workers into a pooled buffer. No sockets here.
public final class BatchNoiser: @unchecked Sendable {
    public let stream: NoiseStream
    private let kernel: NoiseKernel
    public let buffers: MessageBufferPool
    private var workers: WorkerPool
    /// Below this many elements per part, waking another worker costs more than it saves.
    private static let minimumElementsPerPart = 1 << 16

    public init(seed: UInt64, workers: Int, buffers: MessageBufferPool) {
        stream = NoiseStream(seed: seed)
        kernel = NoiseKernel(stream: stream)
        self.buffers = buffers
        self.workers = WorkerPool(workers: workers)
    }

    public var workerCount: Int { workers.workers }

    /// Replaces the worker threads (a reload that changes `workers`); results do not depend on it.
    public func resize(workers count: Int) {
        guard count != workers.workers else { return }
        workers.shutdown()
        workers = WorkerPool(workers: count)
    }

    public func shutdown() { workers.shutdown() }

    /// Noises `message`, advancing `state` only when the batch is accepted.
    public func noise(
        _ message: UnsafeRawBufferPointer, settings: NoisingSettings, state: inout DaemonState
    ) throws(ProtocolError) -> NoisedMessage {
        guard message.count <= settings.maxMessageBytes else {
            throw ProtocolError(.messageTooLarge,
                                "message of \(message.count) bytes exceeds input.max_message_bytes \(settings.maxMessageBytes)")
        }
        let input = try InputBatch(message: message, latentTensor: settings.latentTensor)
        let outputLatentType = settings.outputDType.resolved(for: input.latentType)
        let inputType = ElementType(input.latentType), outputType = ElementType(outputLatentType)
        let step = state.step(batchesPerStep: settings.batchesPerStep)
        let plan = try OutputPlan(
            input: input, outputDType: outputLatentType, includeClean: settings.includeClean, includeWeight: false,
            metadata: [
                WireNames.stepKey: String(step), WireNames.seqKey: String(state.seq),
                WireNames.seedKey: String(stream.seed), WireNames.protocolKey: WireNames.protocolVersion,
            ])

        let samples = input.sampleCount
        let noiseIDs: [UInt64] = input.noiseIDs ?? (0..<samples).map {
            (UInt64(settings.instance) << 48) | ((state.samples &+ UInt64($0)) & 0xFFFF_FFFF_FFFF)
        }
        let distribution = settings.schedule.distribution(atStep: step)
        let sigmas = noiseIDs.map { Float(distribution.quantile(stream.sigmaUniforms(noiseID: $0).0)) }

        let buffer = buffers.take(byteCount: plan.byteCount)
        let out = UnsafeMutableRawBufferPointer(start: buffer.pointer, count: plan.byteCount)
        plan.writeHeaderAndPassthrough(into: out, from: input)
        for b in 0..<samples {
            out.storeBytes(of: sigmas[b].bitPattern.littleEndian, toByteOffset: plan.sigma.lowerBound + 4 * b, as: UInt32.self)
            out.storeBytes(of: noiseIDs[b].littleEndian, toByteOffset: plan.noiseID.lowerBound + 8 * b, as: UInt64.self)
        }
        let nonfinite = sigmas.withUnsafeBufferPointer { sigmaView in
            noiseIDs.withUnsafeBufferPointer { idView in
                run(NoiseBatch(
                    sampleCount: samples, elementsPerSample: input.elementsPerSample,
                    input: input.latentBytes.baseAddress!, inputType: inputType,
                    zt: buffer.pointer + plan.zt.lowerBound, eps: buffer.pointer + plan.eps.lowerBound,
                    clean: plan.clean.map { buffer.pointer + $0.lowerBound }, outputType: outputType,
                    sigmas: sigmaView, noiseIDs: idView))
            }
        }
        if nonfinite && settings.rejectNonfinite {
            buffers.recycle(buffer)
            throw ProtocolError(.nonfinite, "tensor '\(settings.latentTensor)' holds NaN or Inf values")
        }
        state.batches &+= 1
        state.samples &+= UInt64(samples)
        state.seq &+= 1
        return NoisedMessage(buffer: buffer, byteCount: plan.byteCount, sampleCount: samples, step: step, sigmas: sigmas)
    }

    /// Runs the kernel over the batch, split across the workers; true if any z_0 was non-finite.
    private func run(_ batch: NoiseBatch) -> Bool {
        let parts = max(1, min(workers.workers, batch.totalElements / Self.minimumElementsPerPart))
        let ranges = NoiseKernel.partition(totalElements: batch.totalElements, parts: parts)
        if ranges.count == 1 { return kernel.run(batch, elements: ranges[0]) }
        let flags = NonfiniteFlags(count: ranges.count)
        let kernel = self.kernel
        workers.run(parts: ranges.count) { part in
            flags.set(part, kernel.run(batch, elements: ranges[part]))
        }
        return flags.any
    }
}

/// One flag per kernel part; each part writes only its own slot, read after all parts joined.
private final class NonfiniteFlags: @unchecked Sendable {
    private let flags: UnsafeMutableBufferPointer<Bool>
    init(count: Int) { flags = .allocate(capacity: count); flags.initialize(repeating: false) }
    deinit { flags.deallocate() }
    func set(_ i: Int, _ value: Bool) { flags[i] = value }
    var any: Bool { flags.contains(true) }
}
