import NoisedProtocol
import Safetensors

/// The daemon's default `input.max_batch`.
private let maxBatch = 4096

/// libFuzzer entry: any bytes are an input message. An accepted one gets an output plan under
/// every option; a plan that is written out must read back with its tensors where it says.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOne(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let message = UnsafeRawBufferPointer(start: data, count: size)
    guard let input = try? InputBatch(message: message, latentTensor: "latents", maxBatch: maxBatch) else { return 0 }
    precondition(input.sampleCount >= 1 && input.sampleCount <= maxBatch, "accepted a batch of \(input.sampleCount)")
    precondition(input.latentBytes.count == input.sampleCount * input.elementsPerSample * input.latentType.dtype.byteCount,
                 "latent bytes do not match B x elements")
    if let ids = input.noiseIDs { precondition(ids.count == input.sampleCount, "noise ids not one per sample") }
    let options = size > 0 ? Int(data[size - 1]) : 0
    let outputType = OutputDType.allCases[options & 3].resolved(for: input.latentType)
    let metadata = [WireNames.stepKey: "7", WireNames.seqKey: "3", WireNames.seedKey: "1",
                    WireNames.protocolKey: WireNames.protocolVersion]
    guard let plan = try? OutputPlan(input: input, outputDType: outputType, includeClean: options & 4 != 0,
                                     includeWeight: options & 8 != 0, metadata: metadata) else { return 0 }
    // No message may cost more than a small multiple of its own bytes: three latent-sized outputs
    // at up to twice the width (f16 to f32), the passthrough, 16 bytes per sample and the header.
    precondition(plan.byteCount <= 7 * size + 16 * maxBatch + (64 << 10),
                 "an output of \(plan.byteCount) bytes for a message of \(size)")
    let out = UnsafeMutableRawBufferPointer.allocate(byteCount: plan.byteCount, alignment: 64)
    defer { out.deallocate() }
    out.initializeMemory(as: UInt8.self, repeating: 0)
    plan.writeHeaderAndPassthrough(into: out, from: input)
    let reader: SafetensorsReader
    do {
        reader = try SafetensorsReader(UnsafeRawBufferPointer(out))
    } catch {
        preconditionFailure("the output does not read back: \(error)")
    }
    for (name, range) in [(WireNames.noisedLatents, plan.zt), (WireNames.noise, plan.eps), (WireNames.sigma, plan.sigma),
                          (WireNames.noiseID, plan.noiseID)] {
        guard let tensor = reader.tensor(named: name) else { preconditionFailure("output lacks \(name)") }
        precondition(reader.dataStart + tensor.dataRange.lowerBound == range.lowerBound, "\(name) is not where the plan says")
    }
    for tensor in input.passthrough {
        guard let copied = reader.tensor(named: tensor.name) else { preconditionFailure("output lacks \(tensor.name)") }
        precondition(Array(reader.bytes(of: copied)) == Array(input.reader.bytes(of: tensor)), "\(tensor.name) changed")
    }
    return 0
}
