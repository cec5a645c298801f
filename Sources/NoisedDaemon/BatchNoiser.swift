import Configuration
import Coupling
import Dispatch
import NoisedProtocol
import NoisedRuntime
import NoiseKernel
import NoiseKernelCore
import Safetensors
import Schedule

/// What the noising of one batch depends on, resolved from the config. Swapped as a whole on reload.
public struct NoisingSettings: Sendable {
    public var latentTensor: String
    public var maxMessageBytes: Int
    public var maxBatch: Int
    public var rejectNonfinite: Bool
    public var outputDType: OutputDType
    public var includeClean: Bool
    public var batchesPerStep: Int
    public var stepSource: StepSource
    public var instance: UInt16
    public var schedule: SigmaSchedule
    public var adaptive: AdaptiveSettings
    public var stratified: Bool
    public var frames: FrameSampling?
    public var posterior: PosteriorTensors?
    public var coupling: BatchCoupling
    /// The fan-out output this pipeline feeds (nil: the daemon's one output).
    public var output: OutputIdentity?

    public init(_ config: NoisedConfig, output: OutputIdentity? = nil) {
        self.output = output
        latentTensor = config.input.tensor
        maxMessageBytes = config.input.maxMessageBytes
        maxBatch = config.input.maxBatch
        rejectNonfinite = config.input.rejectNonfinite
        outputDType = config.output.dtype
        includeClean = config.output.includeClean
        batchesPerStep = config.steps.batchesPerStep
        stepSource = config.steps.source
        instance = config.instance
        schedule = config.schedule
        adaptive = config.adaptive
        stratified = config.stratified
        frames = config.frames
        posterior = config.input.posterior
        coupling = config.coupling
    }

    /// The curriculum's step: the largest step trainers reported, when steps come from feedback and
    /// one has; otherwise batches emitted over `steps.batches_per_step`.
    public func step(for state: DaemonState) -> Int64 {
        if stepSource == .feedback, let reported = state.reportedStep { return reported }
        return state.step(batchesPerStep: batchesPerStep)
    }
}

/// Which of a fan-out's outputs a pipeline feeds: its name and its place in `outputs`.
public struct OutputIdentity: Sendable, Equatable {
    public let name: String
    public let index: Int

    public init(name: String, index: Int) {
        self.name = name
        self.index = index
    }
}

/// One noised batch, in a pooled buffer, ready to send.
public struct NoisedMessage: Sendable {
    public let buffer: MessageBufferPool.Buffer
    public let byteCount: Int
    public let sampleCount: Int
    public let step: Int64
    /// The σ drawn (per sample, or per frame), conditioning frames left out: what the σ histogram counts.
    public let sigmas: [Float]
    /// The latents' shape as received.
    public let latentShape: [Int]
    /// The adaptive proposal's mass per σ bin when it shaped this batch.
    public let binWeights: [Double]?
    /// Time the kernel took over the whole batch, across the workers.
    public let kernelNanoseconds: Int64
    /// With `schedule.coupling`: the mean transport cost per element of the samples' own streams
    /// and of the streams they got.
    public let couplingCost: (independent: Double, coupled: Double)?
}

/// Turns one received message into one output message: validate the wire format, draw σ from the
/// schedule, run the kernel across the workers into a pooled buffer. No sockets here.
// @unchecked: used by the pipeline thread only; its workers see only the NoiseBatch of the running call.
public final class BatchNoiser: @unchecked Sendable {
    public let stream: NoiseStream
    private let kernel: NoiseKernel
    public let buffers: MessageBufferPool
    private var workers: WorkerPool
    /// A stream of batches of one shape repeats one input header and one output layout; these
    /// make the repeats a comparison and a metadata update.
    private var headers = SafetensorsHeaderCache()
    private var lastPlan: OutputPlan?
    private let posteriorSample: PosteriorSample
    private let coupling: NoiseCoupling
    /// z_0 drawn from a posterior before coupling (f32), kept for the next batch; grown to the largest seen.
    private var sampled = UnsafeMutableBufferPointer<Float>(start: nil, count: 0)

    public init(seed: UInt64, workers: Int, buffers: MessageBufferPool) {
        stream = NoiseStream(seed: seed)
        posteriorSample = PosteriorSample(seed: seed)
        coupling = NoiseCoupling(stream: stream)
        kernel = NoiseKernel(stream: stream)
        self.buffers = buffers
        self.workers = WorkerPool(workers: workers)
    }

    /// Replaces the worker threads (a reload that changes `workers`); results do not depend on it.
    public func resize(workers count: Int) {
        guard count != workers.workers else { return }
        workers.shutdown()
        workers = WorkerPool(workers: count)
    }

    public func shutdown() { workers.shutdown() }

    deinit { sampled.deallocate() }

    /// Noises `message`, advancing `state` only when the batch is accepted.
    public func noise(
        _ message: UnsafeRawBufferPointer, settings: NoisingSettings, state: inout DaemonState
    ) throws(ProtocolError) -> NoisedMessage {
        guard message.count <= settings.maxMessageBytes else {
            throw ProtocolError(.messageTooLarge,
                                "message of \(message.count) bytes exceeds input.max_message_bytes \(settings.maxMessageBytes)")
        }
        let input = try InputBatch(message: message, latentTensor: settings.latentTensor, posterior: settings.posterior,
                                   maxBatch: settings.maxBatch,
                                   headers: &headers)
        let inputType = input.latentType, outputType = settings.outputDType.resolved(for: inputType)
        let step = settings.step(for: state)
        let frames = try Self.frameLayout(settings.frames, latentShape: input.latents.shape)
        let plan = try OutputPlan(
            input: input, outputDType: outputType, includeClean: settings.includeClean,
            includeWeight: settings.adaptive.enabled, frames: frames?.layout.frames,
            includeCondMask: frames.map { !$0.sampling.conditions.isEmpty } ?? false,
            metadata: Self.metadata(step: step, seq: state.seq, seed: stream.seed, frameAxis: frames?.sampling.axis,
                                    output: settings.output?.name),
            reusing: lastPlan)
        lastPlan = plan

        let samples = input.sampleCount
        if input.noiseIDs == nil, state.samples > WireNames.defaultIDsPerInstance - UInt64(samples) {
            throw ProtocolError(
                .idsExhausted,
                "instance \(settings.instance) has handed out \(state.samples) of its 2^48 default noise ids; "
                    + "\(samples) more would repeat ids: set another `instance`, or send `noise_id`")
        }
        var noiseIDs: [UInt64] = input.noiseIDs ?? (0..<samples).map {
            (UInt64(settings.instance) << 48) | (state.samples + UInt64($0))
        }
        if let output = settings.output, output.index != 0 {
            noiseIDs = noiseIDs.map { WireNames.noiseID($0, ofOutput: output.index) }
        }
        let draw = SigmaDraw(settings: settings, state: state, step: step, latentShape: input.latents.shape)
        var clean: [Bool]? = nil
        let (sigmas, weights): ([Float], [Float]?)
        if let frames {
            (sigmas, weights, clean) = draw.frameSigmas(frames.sampling, frames: frames.layout.frames, noiseIDs: noiseIDs, stream: stream)
        } else {
            (sigmas, weights) = draw.sigmas(noiseIDs.map { stream.sigmaUniforms(noiseID: $0) })
        }
        try Self.checkDrawn(sigmas: sigmas, weights: weights)

        let total = samples * input.elementsPerSample
        let logvar = input.logvarBytes
        // The coupling reads z_0 before any noise is made: a posterior's z_0 is drawn first (from
        // the samples' own ids), and the kernel then noises it like sent latents.
        var posteriorSeen = PosteriorSample.Finiteness()
        let drawnFirst = logvar != nil && settings.coupling != .none
        if drawnFirst, sampled.count < total {
            sampled.deallocate()
            sampled = .allocate(capacity: total)
        }
        if drawnFirst, let logvar {
            posteriorSeen = noiseIDs.withUnsafeBufferPointer { idView in
                drawPosterior(PosteriorSample.Batch(
                    mean: input.latentBytes, logvar: logvar, type: inputType, sampleCount: samples,
                    elementsPerSample: input.elementsPerSample, noiseIDs: idView, z0: sampled))
            }
            try Self.checkPosterior(posteriorSeen, settings.posterior)
        }
        let latents = drawnFirst
            ? LatentSamples(count: samples, elementsPerSample: input.elementsPerSample,
                            bytes: UnsafeRawBufferPointer(start: sampled.baseAddress, count: total * 4), type: .f32)
            : LatentSamples(count: samples, elementsPerSample: input.elementsPerSample, bytes: input.latentBytes, type: inputType)
        let coupled = try coupling.choose(settings.coupling, latents: latents, ids: noiseIDs, workers: workers)
        // ε comes from the coupled streams; σ stays each sample's own (drawn above).
        let epsIDs = coupled?.noiseIDs ?? noiseIDs

        let buffer = buffers.take(byteCount: plan.byteCount)
        let out = UnsafeMutableRawBufferPointer(start: buffer.pointer, count: plan.byteCount)
        plan.writeHeaderAndPassthrough(into: out, from: input)
        for b in 0..<samples {
            out.storeBytes(of: epsIDs[b].littleEndian, toByteOffset: plan.noiseID.lowerBound + 8 * b, as: UInt64.self)
        }
        for (index, sigma) in sigmas.enumerated() {
            out.storeBytes(of: sigma.bitPattern.littleEndian, toByteOffset: plan.sigma.lowerBound + 4 * index, as: UInt32.self)
        }
        if let weights, let range = plan.weight {
            for (index, weight) in weights.enumerated() {
                out.storeBytes(of: weight.bitPattern.littleEndian, toByteOffset: range.lowerBound + 4 * index, as: UInt32.self)
            }
        }
        if let clean, let range = plan.condMask {
            for (index, isClean) in clean.enumerated() {
                out.storeBytes(of: UInt8(isClean ? 1 : 0), toByteOffset: range.lowerBound + index, as: UInt8.self)
            }
        }
        let kernelStart = DispatchTime.now().uptimeNanoseconds
        let nonfinite = sigmas.withUnsafeBufferPointer { sigmaView in
            epsIDs.withUnsafeBufferPointer { epsView in
                // With a posterior drawn first (for the coupling) the kernel reads its z_0 from
                // `sampled`; otherwise it reads the mean and draws z_0 in the same pass.
                let batch = NoiseBatch(
                    sampleCount: samples, elementsPerSample: input.elementsPerSample,
                    input: drawnFirst ? UnsafeRawBufferPointer(start: sampled.baseAddress, count: total * 4) : input.latentBytes,
                    inputType: drawnFirst ? .f32 : inputType,
                    zt: UnsafeMutableRawBufferPointer(rebasing: out[plan.zt]),
                    eps: UnsafeMutableRawBufferPointer(rebasing: out[plan.eps]),
                    clean: plan.clean.map { UnsafeMutableRawBufferPointer(rebasing: out[$0]) }, outputType: outputType,
                    sigmas: sigmaView, noiseIDs: epsView, layout: frames?.layout)
                guard let logvar, !drawnFirst else { return run(batch) }
                let result = runPosterior(batch, logvar: logvar)
                posteriorSeen = result.finiteness
                return result.nonFinite
            }
        }
        do { try Self.checkPosterior(posteriorSeen, settings.posterior) } catch {
            buffers.recycle(buffer)
            throw error
        }
        let kernelNanoseconds = Int64(DispatchTime.now().uptimeNanoseconds - kernelStart)
        if nonfinite && settings.rejectNonfinite {
            buffers.recycle(buffer)
            if let posterior = settings.posterior {
                throw ProtocolError(.nonfinite, "z_0 sampled from '\(posterior.mean)' and '\(posterior.logvar)' overflowed to Inf")
            }
            throw ProtocolError(.nonfinite, "tensor '\(settings.latentTensor)' holds NaN or Inf values")
        }
        state.batches &+= 1
        state.samples &+= UInt64(samples)
        state.seq &+= 1
        return NoisedMessage(buffer: buffer, byteCount: plan.byteCount, sampleCount: samples, step: step,
                             sigmas: clean.map { clean in zip(sigmas, clean).filter { !$0.1 }.map(\.0) } ?? sigmas,
                             latentShape: input.latents.shape, binWeights: draw.proposal?.binWeights, kernelNanoseconds: kernelNanoseconds,
                             couplingCost: coupled.map { ($0.independentCost, $0.coupledCost) })
    }

    /// A posterior's NaN or infinity is refused whatever `reject_nonfinite` says: the exponential
    /// would otherwise clamp a bad logvar without a trace.
    private static func checkPosterior(_ seen: PosteriorSample.Finiteness, _ tensors: PosteriorTensors?) throws(ProtocolError) {
        guard !seen.mean || !seen.logvar, let tensors else { return }
        let (which, name) = seen.mean ? ("logvar", tensors.logvar) : ("mean", tensors.mean)
        throw ProtocolError(.nonfinitePosterior, "posterior \(which) '\(name)' holds NaN or Inf values")
    }

    /// Draws every z_0 of a posterior into `batch.z0`, across the workers.
    private func drawPosterior(_ batch: PosteriorSample.Batch) -> PosteriorSample.Finiteness {
        let ranges = NoiseKernel.partition(totalElements: batch.totalElements, workers: workers.workers)
        let results = PartResults(count: ranges.count, initial: PosteriorSample.Finiteness())
        let sample = posteriorSample
        workers.run(parts: ranges.count) { part in results.set(part, sample.draw(batch, elements: ranges[part])) }
        return PosteriorSample.Finiteness(mean: results.values.allSatisfy(\.mean), logvar: results.values.allSatisfy(\.logvar))
    }

    /// Draws z_0 from the batch's mean and `logvar` and noises it in one pass, across the workers.
    private func runPosterior(_ batch: NoiseBatch, logvar: UnsafeRawBufferPointer)
        -> (finiteness: PosteriorSample.Finiteness, nonFinite: Bool) {
        let ranges = NoiseKernel.partition(totalElements: batch.totalElements, workers: workers.workers)
        let results = PartResults(count: ranges.count, initial: (finiteness: PosteriorSample.Finiteness(), nonFinite: false))
        let (sample, kernel) = (posteriorSample, self.kernel)
        // Unsafe: the workers only read the logvar, which outlives `run`.
        nonisolated(unsafe) let logvar = logvar
        workers.run(parts: ranges.count) { part in
            results.set(part, sample.noise(batch, logvar: logvar, kernel: kernel, elements: ranges[part]))
        }
        return (PosteriorSample.Finiteness(mean: results.values.allSatisfy(\.finiteness.mean),
                                           logvar: results.values.allSatisfy(\.finiteness.logvar)),
                results.values.contains { $0.nonFinite })
    }

    private static func metadata(step: Int64, seq: UInt64, seed: UInt64, frameAxis: Int?, output: String?) -> [String: String] {
        var metadata = [WireNames.stepKey: String(step), WireNames.seqKey: String(seq), WireNames.seedKey: String(seed),
                        WireNames.protocolKey: WireNames.protocolVersion]
        if let frameAxis { metadata[WireNames.frameAxisKey] = String(frameAxis) }
        if let output { metadata[WireNames.outputKey] = output }
        return metadata
    }

    /// The frame layout `schedule.frames` gives latents of this shape (nil: one σ per sample), or
    /// the reason it cannot apply to them.
    static func frameLayout(_ sampling: FrameSampling?, latentShape shape: [Int])
        throws(ProtocolError) -> (sampling: FrameSampling, layout: FrameLayout)? {
        guard let sampling else { return nil }
        if let problem = sampling.problem(latentShape: shape) { throw ProtocolError(.badFrames, problem) }
        guard sampling.perFrame else { return nil }
        let frames = shape[sampling.axis], frameElements = shape[(sampling.axis + 1)...].reduce(1, *)
        guard frames > 0, frameElements > 0 else {
            throw ProtocolError(.badFrames, "latents \(shape) have no elements in a frame on axis \(sampling.axis)")
        }
        return (sampling, FrameLayout(frames: frames, frameElements: frameElements))
    }

    /// A σ outside [0, 1] or a non-finite weight would make every z_t of its sample garbage: the
    /// batch is refused rather than sent. The schedule keeps σ finite by construction; this is the
    /// last line should a schedule ever fail to.
    public static func checkDrawn(sigmas: [Float], weights: [Float]?) throws(ProtocolError) {
        if let b = sigmas.firstIndex(where: { !($0 >= 0 && $0 <= 1) }) {
            throw ProtocolError(.nonfiniteSigma, "sample \(b) drew sigma \(sigmas[b]), outside [0, 1]")
        }
        if let weights, let b = weights.firstIndex(where: { !($0.isFinite && $0 >= 0) }) {
            throw ProtocolError(.nonfiniteSigma, "sample \(b) drew weight \(weights[b]), not finite and >= 0")
        }
    }

    /// Runs the kernel over the batch, split across the workers; true if any z_0 was non-finite.
    private func run(_ batch: NoiseBatch) -> Bool {
        let ranges = NoiseKernel.partition(totalElements: batch.totalElements, workers: workers.workers)
        if ranges.count == 1 { return kernel.run(batch, elements: ranges[0]) }
        let flags = PartResults(count: ranges.count, initial: false)
        let kernel = self.kernel
        workers.run(parts: ranges.count) { part in
            flags.set(part, kernel.run(batch, elements: ranges[part]))
        }
        return flags.values.contains(true)
    }
}

/// How a batch's σ are drawn: the curriculum at the step, reshaped by the adaptive proposal when it
/// is on, each sample by the inverse CDF of its own uniform (stratified across the batch when asked).
struct SigmaDraw {
    let distribution: SigmaDistribution
    let proposal: SigmaProposal?
    let stratified: Bool

    init(settings: NoisingSettings, state: DaemonState, step: Int64, latentShape: [Int]) {
        distribution = settings.schedule.distribution(
            atStep: step, latentShape: settings.schedule.usesLatentShape ? latentShape : nil)
        proposal = settings.adaptive.enabled
            ? SigmaProposal(curriculum: distribution, history: state.lossHistory, settings: settings.adaptive) : nil
        stratified = settings.stratified
    }

    /// σ per frame, [B, T] flattened: each sample's chunks drawn from their own uniforms (counter
    /// (1 + chunk, 0, id) of the σ key; mode `same` the sample's own, (0, 0, id)), each chunk index
    /// stratified across the batch when asked, then laid over the frames by `sampling`, with the
    /// conditioning option drawn from counter (0, 1, id).
    func frameSigmas(_ sampling: FrameSampling, frames: Int, noiseIDs: [UInt64], stream: NoiseStream)
        -> (sigmas: [Float], weights: [Float]?, clean: [Bool]?) {
        let draws = sampling.draws(frames: frames)
        let columns = (0..<draws).map { chunk in
            let word0 = sampling.mode == .same ? 0 : UInt32(1 + chunk)
            return sigmas(noiseIDs.map { stream.sigmaUniforms(noiseID: $0, word0: word0) })
        }
        var sigmaOut = [Float](), weightOut = [Float](), cleanOut = [Bool]()
        sigmaOut.reserveCapacity(noiseIDs.count * frames)
        for (b, id) in noiseIDs.enumerated() {
            let condition = sampling.condition(stream.sigmaUniforms(noiseID: id, word1: 1).0)
            let sampleDraws = columns.map { (sigma: $0.0[b], weight: $0.1?[b] ?? 1) }
            let values = sampling.frameValues(draws: sampleDraws, frames: frames, condition: condition)
            sigmaOut += values.sigmas
            weightOut += values.weights
            cleanOut += values.clean
        }
        return (sigmaOut, proposal == nil ? nil : weightOut, sampling.conditions.isEmpty ? nil : cleanOut)
    }

    /// σ per sample (f32, as sent) and, with the adaptive proposal, the weight p(σ)/q(σ) of each.
    func sigmas(_ uniforms: [(Double, Double)]) -> ([Float], [Float]?) {
        var u = uniforms.map(\.0)
        if stratified, let first = uniforms.first {
            // The permutation of strata comes from the first sample's second uniform.
            u = Stratification.stratify(u, permutation: UInt64(first.1 * 0x1p53))
        }
        guard let proposal else { return (u.map { Float(distribution.quantile($0)) }, nil) }
        let exact = u.map { proposal.quantile($0) }
        return (exact.map { Float($0) }, exact.map { Float(proposal.weight($0)) })
    }
}

/// One result per part of a batch split across the workers; each part writes only its own slot.
// @unchecked: each part writes only its own slot; the slots are read after all parts joined.
private final class PartResults<Value>: @unchecked Sendable {
    private let slots: UnsafeMutableBufferPointer<Value>
    init(count: Int, initial: Value) { slots = .allocate(capacity: count); slots.initialize(repeating: initial) }
    deinit { slots.deinitialize().deallocate() }
    func set(_ part: Int, _ value: Value) { slots[part] = value }
    var values: UnsafeMutableBufferPointer<Value> { slots }
}
