import Foundation
import NoiseKernel
import NoiseKernelCore

/// Float64 reference of noise stream v1, written straight from the spec.
enum Reference {
    static func boxMuller(_ x: SIMD4<UInt32>) -> [Double] {
        func uniform(_ v: UInt32) -> Double { (Double(v >> 8) + 0.5) * 0x1p-24 }
        func angle(_ v: UInt32) -> Double { Double(Int32(bitPattern: v)) / 0x1p31 }
        let r0 = (-2 * log(uniform(x.x))).squareRoot()
        let r1 = (-2 * log(uniform(x.z))).squareRoot()
        let a0 = angle(x.y), a1 = angle(x.w)
        return [r0 * cos(.pi * a0), r0 * sin(.pi * a0), r1 * cos(.pi * a1), r1 * sin(.pi * a1)]
    }

    static func eps(seed: UInt64, noiseID: UInt64, element: Int) -> Double {
        let group = UInt64(element / 4)
        let counter = SIMD4<UInt32>(
            UInt32(truncatingIfNeeded: group), UInt32(truncatingIfNeeded: group >> 32),
            UInt32(truncatingIfNeeded: noiseID), UInt32(truncatingIfNeeded: noiseID >> 32))
        let key = SIMD2<UInt32>(UInt32(truncatingIfNeeded: seed), UInt32(truncatingIfNeeded: seed >> 32))
        return boxMuller(Philox4x32_10.block(counter: counter, key: key))[element % 4]
    }

    /// z_t of the documented formula, rounded once to `output`.
    static func zt(z0: Float, sigma: Float, eps: Float, output: ElementType) -> Float {
        if sigma == 0 { return output.rounded(z0) }
        if sigma == 1 { return output.rounded(eps) }
        return output.rounded(((1 - sigma) * z0).addingProduct(sigma, eps))
    }
}

/// Owned buffers for one NoiseBatch.
final class BatchBuffers {
    let sampleCount: Int, elementsPerSample: Int
    let inputType: ElementType, outputType: ElementType
    var input: [UInt8], zt: [UInt8], eps: [UInt8], clean: [UInt8]
    var sigmas: [Float], noiseIDs: [UInt64]
    /// nil: one σ per sample.
    var layout: FrameLayout?

    init(samples: Int, elements: Int, input: ElementType, output: ElementType, values: (Int) -> Float) {
        sampleCount = samples
        elementsPerSample = elements
        inputType = input
        outputType = output
        let total = samples * elements
        self.input = [UInt8](repeating: 0, count: total * input.byteCount)
        zt = [UInt8](repeating: 0xAA, count: total * output.byteCount)
        eps = zt
        clean = zt
        sigmas = (0..<samples).map { Float($0 + 1) / Float(samples + 1) }
        noiseIDs = (0..<samples).map { UInt64($0) * 7919 + 3 }
        self.input.withUnsafeMutableBytes { raw in
            for index in 0..<total { input.store(values(index), to: raw.baseAddress!, at: index) }
        }
    }

    func inputValue(_ index: Int) -> Float {
        input.withUnsafeBytes { inputType.load(from: $0.baseAddress!, at: index) }
    }

    static func value(_ bytes: [UInt8], _ type: ElementType, _ index: Int) -> Float {
        bytes.withUnsafeBytes { type.load(from: $0.baseAddress!, at: index) }
    }

    /// Runs the kernel over each range in turn; returns whether any reported a non-finite z_0.
    @discardableResult
    func run(_ kernel: NoiseKernel, ranges: [Range<Int>], withClean: Bool = true) -> Bool {
        withBatch(withClean: withClean) { batch in
            ranges.reduce(false) { nonFinite, range in kernel.run(batch, elements: range) || nonFinite }
        }
    }

    /// The buffers as one NoiseBatch, lent to `body`.
    func withBatch<R>(withClean: Bool = true, _ body: (NoiseBatch) -> R) -> R {
        input.withUnsafeBytes { inputRaw in
            zt.withUnsafeMutableBytes { ztRaw in
                eps.withUnsafeMutableBytes { epsRaw in
                    clean.withUnsafeMutableBytes { cleanRaw in
                        sigmas.withUnsafeBufferPointer { sigmas in
                            noiseIDs.withUnsafeBufferPointer { ids in
                                body(NoiseBatch(
                                    sampleCount: sampleCount, elementsPerSample: elementsPerSample,
                                    input: inputRaw, inputType: inputType,
                                    zt: ztRaw, eps: epsRaw,
                                    clean: withClean ? cleanRaw : nil,
                                    outputType: outputType, sigmas: sigmas, noiseIDs: ids, layout: layout))
                            }
                        }
                    }
                }
            }
        }
    }

    var totalElements: Int { sampleCount * elementsPerSample }
}

func bits(_ value: Float) -> UInt32 { value.bitPattern }

func epsValues(
    _ stream: NoiseStream, id: UInt64, _ range: Range<Int>, implementation: NoiseKernel.Implementation = .best
) -> [Float] {
    var out = [Float](repeating: .nan, count: range.count)
    out.withUnsafeMutableBufferPointer { stream.fill(noiseID: id, elements: range, into: $0, implementation: implementation) }
    return out
}

/// Every kernel implementation this CPU runs (the tests compare them with one another).
let availableImplementations = NoiseKernel.Implementation.allCases.filter(\.isAvailable)
