import NoisedDaemon
import NoisedRuntime
import NoiseKernel
import NoiseKernelCore
import Safetensors

/// One output message as the tap sees it: views into the received bytes.
struct TapBatch {
    let zt: UnsafeRawBufferPointer
    let eps: UnsafeRawBufferPointer
    let clean: UnsafeRawBufferPointer?
    let type: ElementType
    let sampleCount: Int
    let elementsPerSample: Int
    /// One per sample, or with σ per frame `frames` per sample, [B, T] flattened.
    let sigmas: [Float]
    let frames: Int
    /// Elements of one frame (the product of the dims after the frame axis); the sample's size
    /// when σ is per sample.
    let frameElements: Int
    let noiseIDs: [UInt64]
    let seq: UInt64?
    let step: Int64?
    let seed: UInt64?

    init(_ bytes: UnsafeRawBufferPointer) throws {
        let reader = try SafetensorsReader(bytes, maxHeaderBytes: 1 << 20)
        func tensor(_ name: String) throws -> TensorInfo {
            guard let t = reader.tensor(named: name) else { throw FeedError("no tensor '\(name)'") }
            return t
        }
        let zt = try tensor("z_t"), eps = try tensor("eps"), sigma = try tensor("sigma"), ids = try tensor("noise_id")
        guard let type = ElementType(zt.dtype), eps.dtype == zt.dtype, eps.shape == zt.shape, let samples = zt.shape.first,
              sigma.dtype == .F32, sigma.shape.first == samples, ids.dtype == .U64, ids.shape == [samples]
        else { throw FeedError("tensors z_t, eps, sigma, noise_id do not agree in dtype or shape") }
        self.type = type
        self.sampleCount = samples
        self.elementsPerSample = samples == 0 ? 0 : zt.elementCount / samples
        if sigma.shape.count == 2 {
            guard let axis = reader.metadata["noised.frame_axis"].flatMap(Int.init), axis >= 1, axis < zt.shape.count,
                  zt.shape[axis] == sigma.shape[1]
            else { throw FeedError("sigma \(sigma.shape) per frame, but noised.frame_axis does not name an axis of z_t \(zt.shape) with \(sigma.shape[1]) frames") }
            frames = sigma.shape[1]
            frameElements = zt.shape[(axis + 1)...].reduce(1, *)
        } else {
            guard sigma.shape == [samples] else { throw FeedError("sigma has shape \(sigma.shape), expected [\(samples)] or [\(samples), T]") }
            frames = 1
            frameElements = max(1, elementsPerSample)
        }
        self.zt = reader.bytes(of: zt)
        self.eps = reader.bytes(of: eps)
        if let clean = reader.tensor(named: "z_0") {
            guard clean.dtype == zt.dtype, clean.shape == zt.shape else { throw FeedError("z_0 does not match z_t") }
            self.clean = reader.bytes(of: clean)
        } else {
            self.clean = nil
        }
        let sigmaBytes = reader.bytes(of: sigma), idBytes = reader.bytes(of: ids)
        sigmas = (0..<samples * frames).map { Float(bitPattern: UInt32(littleEndian: sigmaBytes.loadUnaligned(fromByteOffset: 4 * $0, as: UInt32.self))) }
        noiseIDs = (0..<samples).map { UInt64(littleEndian: idBytes.loadUnaligned(fromByteOffset: 8 * $0, as: UInt64.self)) }
        seq = reader.metadata["noised.seq"].flatMap { UInt64($0) }
        step = reader.metadata["noised.step"].flatMap { Int64($0) }
        seed = reader.metadata["noised.seed"].flatMap { UInt64($0) }
    }
}

/// The checks `noised tap --verify` makes on every triple.
struct TripleVerifier {
    /// Elements per sample compared with noise stream v1 exactly (the rest by moments only).
    static let exactElements = 4096

    mutating func check(_ batch: TapBatch) -> [String] {
        var problems: [String] = []
        let n = batch.elementsPerSample
        for b in 0..<batch.sampleCount {
            let sampleSigmas = Array(batch.sigmas[(b * batch.frames)..<((b + 1) * batch.frames)])
            if let bad = sampleSigmas.first(where: { !($0.isFinite && (0...1).contains($0)) }) {
                problems.append("sample \(b): sigma \(bad) outside [0, 1]")
                continue
            }
            // Element i of the sample is in frame (i / frameElements) % frames.
            let sigmaOf = { (i: Int) in sampleSigmas[i / batch.frameElements % batch.frames] }
            let offset = b * n
            let eps = batch.type.decode(UnsafeRawBufferPointer(rebasing: batch.eps[(offset * batch.type.byteCount)...]), count: n)
            problems += momentProblems(eps, sample: b)
            if let seed = batch.seed {
                problems += streamProblems(eps, seed: seed, noiseID: batch.noiseIDs[b], type: batch.type, sample: b)
            }
            let zt = batch.type.decode(UnsafeRawBufferPointer(rebasing: batch.zt[(offset * batch.type.byteCount)...]), count: n)
            if let cleanBytes = batch.clean {
                let clean = batch.type.decode(UnsafeRawBufferPointer(rebasing: cleanBytes[(offset * batch.type.byteCount)...]), count: n)
                problems += formulaProblems(zt: zt, clean: clean, eps: eps, sigma: sigmaOf, type: batch.type, sample: b)
            } else if let i = zt.indices.first(where: { sigmaOf($0) == 1 && zt[$0].bitPattern != eps[$0].bitPattern }) {
                problems.append("sample \(b): sigma 1 but z_t[\(i)] differs from eps")
            }
        }
        return problems
    }

    /// ε of one sample should look N(0, 1): bounds about 6 standard errors wide.
    private func momentProblems(_ eps: [Float], sample: Int) -> [String] {
        guard eps.count >= 256 else { return [] }
        let n = Double(eps.count)
        let mean = eps.reduce(0.0) { $0 + Double($1) } / n
        let variance = eps.reduce(0.0) { $0 + (Double($1) - mean) * (Double($1) - mean) } / n
        var problems: [String] = []
        if abs(mean) > 6 / n.squareRoot() { problems.append("sample \(sample): eps mean \(mean) too far from 0") }
        if abs(variance - 1) > 6 * (2 / n).squareRoot() + 0.01 { problems.append("sample \(sample): eps variance \(variance) too far from 1") }
        return problems
    }

    private func streamProblems(_ eps: [Float], seed: UInt64, noiseID: UInt64, type: ElementType, sample: Int) -> [String] {
        let count = min(eps.count, Self.exactElements)
        var reference = [Float](repeating: 0, count: count)
        reference.withUnsafeMutableBufferPointer { NoiseStream(seed: seed).fill(noiseID: noiseID, elements: 0..<count, into: $0) }
        for i in 0..<count {
            let expected = type.rounded(reference[i])
            if abs(eps[i] - expected) > 5e-6 + abs(expected) * type.relativeStep {
                return ["sample \(sample): eps[\(i)] = \(eps[i]) but noise stream v1 gives \(expected) (noise id \(noiseID))"]
            }
        }
        return []
    }

    private func formulaProblems(zt: [Float], clean: [Float], eps: [Float], sigma sigmaOf: (Int) -> Float, type: ElementType,
                                 sample: Int) -> [String] {
        for i in zt.indices {
            let sigma = sigmaOf(i)
            if sigma == 0, zt[i].bitPattern != clean[i].bitPattern { return ["sample \(sample): sigma 0 but z_t[\(i)] differs from z_0"] }
            if sigma == 1, zt[i].bitPattern != eps[i].bitPattern { return ["sample \(sample): sigma 1 but z_t[\(i)] differs from eps"] }
            if sigma == 0 || sigma == 1 { continue }
            let expected = (1 - sigma) * clean[i] + sigma * eps[i]
            // eps as received is already rounded once, so allow one rounding step of it as well.
            let tolerance = 2 * type.relativeStep * (abs(expected) + sigma * abs(eps[i]) + abs(clean[i])) + 1e-5
            if abs(zt[i] - expected) > tolerance {
                return ["sample \(sample): z_t[\(i)] = \(zt[i]) but (1 - σ)·z_0 + σ·ε = \(expected)"]
            }
        }
        return []
    }
}

extension ElementType {
    /// The largest relative rounding error of one rounding to this type.
    var relativeStep: Float {
        switch self {
        case .f32: 0x1p-24
        case .f16: 0x1p-11
        case .bf16: 0x1p-8
        }
    }
}
