import NoisedProtocol
import Safetensors

/// The largest output this harness writes out, against the input's size: the daemon bounds B by
/// `input.max_batch`, which keeps per-sample outputs a small multiple of the message; without it a
/// few bytes can announce 2^40 samples of zero-sized latents.
private let outputAllowance = 1 << 20

/// libFuzzer entry: any bytes are an input message. An accepted one gets an output plan under
/// every option; a plan that is written out must read back with its tensors where it says.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOne(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let message = UnsafeRawBufferPointer(start: data, count: size)
    guard let input = try? InputBatch(message: message, latentTensor: "latents") else { return 0 }
    precondition(input.sampleCount >= 1, "accepted an empty batch")
    precondition(input.latentBytes.count == input.sampleCount * input.elementsPerSample * input.latentType.dtype.byteCount,
                 "latent bytes do not match B x elements")
    if let ids = input.noiseIDs { precondition(ids.count == input.sampleCount, "noise ids not one per sample") }
    let options = size > 0 ? Int(data[size - 1]) : 0
    let outputType = [OutputDType.input, .f32, .f16, .bf16][options & 3].resolved(for: input.latentType)
    let metadata = [WireNames.stepKey: "7", WireNames.seqKey: "3", WireNames.seedKey: "1",
                    WireNames.protocolKey: WireNames.protocolVersion]
    guard let plan = try? OutputPlan(input: input, outputDType: outputType, includeClean: options & 4 != 0,
                                     includeWeight: options & 8 != 0, metadata: metadata) else { return 0 }
    guard plan.byteCount <= 4 * size + outputAllowance else { return 0 }
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
