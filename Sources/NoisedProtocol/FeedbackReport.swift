import Safetensors

/// A trainer's report on the feedback socket: the step it reached and, optionally, the σ and loss
/// of each sample it trained on. One ZeroMQ frame holding one safetensors file:
/// metadata `step` (decimal integer >= 0), optionally `generation` (decimal integer >= 0, 0 when
/// absent), tensors `sigma` and `loss` (F32 [N], both or neither).
///
/// A generation above the daemon's starts it (a trainer resumed from a checkpoint): the step is
/// set to this report's, back or forth. Reports of the running generation raise the step to the
/// largest reported; reports of an earlier generation are stale and ignored.
public struct FeedbackReport: Sendable, Equatable {
    public let step: Int64
    public let generation: UInt64
    public let sigmas: [Float]
    public let losses: [Float]

    public static let stepKey = "step"
    public static let generationKey = "generation"
    public static let sigmaTensor = "sigma"
    public static let lossTensor = "loss"

    public init(step: Int64, generation: UInt64 = 0, sigmas: [Float] = [], losses: [Float] = []) {
        self.step = step
        self.generation = generation
        self.sigmas = sigmas
        self.losses = losses
    }

    public init(message: UnsafeRawBufferPointer, maxHeaderBytes: Int = 1 << 20) throws(FeedbackError) {
        let reader: SafetensorsReader
        do { reader = try SafetensorsReader(message, maxHeaderBytes: maxHeaderBytes) } catch {
            throw FeedbackError("not a safetensors message: \(error.message)")
        }
        guard let text = reader.metadata[Self.stepKey] else { throw FeedbackError("metadata 'step' is missing") }
        guard let step = Int64(text), step >= 0 else {
            throw FeedbackError("metadata 'step' must be a decimal integer >= 0, got '\(text)'")
        }
        var generation: UInt64 = 0
        if let text = reader.metadata[Self.generationKey] {
            guard let value = UInt64(text) else {
                throw FeedbackError("metadata 'generation' must be a decimal integer >= 0, got '\(text)'")
            }
            generation = value
        }
        let sigma = reader.tensor(named: Self.sigmaTensor), loss = reader.tensor(named: Self.lossTensor)
        for tensor in reader.tensors where tensor.name != Self.sigmaTensor && tensor.name != Self.lossTensor {
            throw FeedbackError("unexpected tensor '\(tensor.name)' (a report holds only 'sigma' and 'loss')")
        }
        guard (sigma == nil) == (loss == nil) else {
            throw FeedbackError("'sigma' and 'loss' come together: got only '\(sigma == nil ? "loss" : "sigma")'")
        }
        guard let sigma, let loss else {
            self.init(step: step, generation: generation)
            return
        }
        for tensor in [sigma, loss] {
            guard tensor.dtype == .F32, tensor.shape.count == 1, tensor.shape[0] >= 1 else {
                throw FeedbackError("'\(tensor.name)' must be F32 of shape [N], N >= 1, got \(tensor.dtype.rawValue) \(tensor.shape)")
            }
        }
        guard sigma.shape == loss.shape else {
            throw FeedbackError("'sigma' has \(sigma.shape[0]) values but 'loss' has \(loss.shape[0])")
        }
        let sigmas = Self.floats(reader.bytes(of: sigma)), losses = Self.floats(reader.bytes(of: loss))
        if let i = sigmas.firstIndex(where: { !($0.isFinite && (0...1).contains($0)) }) {
            throw FeedbackError("sigma[\(i)] = \(sigmas[i]) is not in [0, 1]")
        }
        if let i = losses.firstIndex(where: { !$0.isFinite }) {
            throw FeedbackError("loss[\(i)] = \(losses[i]) is not finite")
        }
        self.init(step: step, generation: generation, sigmas: sigmas, losses: losses)
    }

    private static func floats(_ bytes: UnsafeRawBufferPointer) -> [Float] {
        (0..<bytes.count / 4).map { Float(bitPattern: UInt32(littleEndian: bytes.loadUnaligned(fromByteOffset: 4 * $0, as: UInt32.self))) }
    }
}

/// Why a feedback report was rejected.
public struct FeedbackError: Error, Equatable, CustomStringConvertible {
    public let detail: String
    public init(_ detail: String) { self.detail = detail }
    public var description: String { "bad_report: \(detail)" }
}
