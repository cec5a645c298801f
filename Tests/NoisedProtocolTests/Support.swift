import Safetensors
import XCTest
import NoisedProtocol

typealias TensorSpec = (name: String, dtype: DType, shape: [Int], data: [UInt8])

func bytes<T>(_ values: [T]) -> [UInt8] { values.withUnsafeBytes { Array($0) } }

/// Deterministic filler bytes for a tensor, distinct per `salt`.
func filler(_ count: Int, salt: UInt8) -> [UInt8] {
    (0..<count).map { UInt8(truncatingIfNeeded: $0 &* 31) &+ salt }
}

func spec(_ name: String, _ dtype: DType, _ shape: [Int], salt: UInt8 = 1) -> TensorSpec {
    (name, dtype, shape, filler(shape.reduce(1, *) * dtype.byteCount, salt: salt))
}

func message(_ tensors: [TensorSpec], metadata: [String: String] = [:]) -> [UInt8] {
    try! encodeSafetensors(tensors, metadata: metadata)
}

/// Parses `message` as an input batch and hands it to `body` while the buffer is alive.
func withBatch<R>(
    _ message: [UInt8], latentTensor: String = "latents", maxBatch: Int = 4096, maxHeaderBytes: Int = 1 << 20,
    _ body: (InputBatch) throws -> R
) throws -> R {
    try message.withUnsafeBytes { raw in
        try body(try InputBatch(message: raw, latentTensor: latentTensor, maxBatch: maxBatch, maxHeaderBytes: maxHeaderBytes))
    }
}

func rejection(
    _ message: [UInt8], latentTensor: String = "latents", posterior: PosteriorTensors? = nil, maxBatch: Int = 4096,
    maxHeaderBytes: Int = 1 << 20
) -> ProtocolError? {
    message.withUnsafeBytes { raw in
        do throws(ProtocolError) {
            _ = try InputBatch(message: raw, latentTensor: latentTensor, posterior: posterior, maxBatch: maxBatch,
                               maxHeaderBytes: maxHeaderBytes)
            return nil
        } catch {
            return error
        }
    }
}
