import Configuration
import Schedule

/// Latent shapes the daemon may see, the very long sequences that once made σ NaN among them.
private let shapes: [[Int]] = [
    [1, 16, 128, 128], [2, 12, 28, 60, 106], [1, 1, 16, 1024, 1024], [1, 16, 0, 0], [4, 16],
    [1, 1, Int(Int32.max), 1 << 16, 1 << 16],
]

/// libFuzzer entry: any bytes are a config file. An accepted one must draw a finite σ in
/// [0, 1] for every shape, at its keyframes and between them, at the ends of [0, 1] and inside.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOne(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let yaml = String(decoding: UnsafeBufferPointer(start: data, count: size), as: UTF8.self)
    guard let config = try? NoisedConfig.parse(yaml: yaml) else { return 0 }
    let schedule = config.schedule
    var steps: [Int64] = [0]
    for keyframe in schedule.keyframes {
        steps.append(keyframe.atStep)
        steps.append(keyframe.atStep &+ 1)
    }
    steps.append(schedule.keyframes.last!.atStep / 2 + schedule.keyframes.first!.atStep / 2)
    // The bytes themselves pick a few uniforms, so the fuzzer can steer them.
    var uniforms = [0, 1e-300, 0.5, 1 - 0x1p-53, 1]
    for offset in stride(from: 0, to: min(size, 32), by: 8) {
        var bits: UInt64 = 0
        for i in offset..<min(offset + 8, size) { bits = bits << 8 | UInt64(data[i]) }
        uniforms.append(Double(bits >> 11) * 0x1p-53)
    }
    for step in steps {
        for shape in schedule.usesLatentShape ? shapes : [shapes[0]] {
            let distribution = schedule.distribution(atStep: step, latentShape: shape)
            for u in uniforms {
                let sigma = distribution.quantile(u)
                precondition(sigma.isFinite && sigma >= 0 && sigma <= 1, "σ = \(sigma) at u = \(u), step \(step), shape \(shape)")
            }
        }
    }
    return 0
}
