import Configuration
import NoisedDaemon
import NoisedProtocol
import NoisedRuntime
import NoiseKernel
import Safetensors
import Schedule
import XCTest

/// `schedule.frames` through the BatchNoiser: the output's shapes, each frame's σ from its own
/// uniform, the conditioning frames clean and marked, and bad shapes refused.
final class FrameNoisingTests: XCTestCase {
    private let shape = [3, 2, 5, 4, 3]  // [B, C, T, H, W]: frames on axis 2, 12 elements each
    private let seed: UInt64 = 77

    private func settings(_ frames: FrameSampling?, adaptive: Bool = false) -> NoisingSettings {
        var config = NoisedConfig()
        config.schedule = try! SigmaSchedule(sigmaMin: 0, sigmaMax: 1, interpolation: .linear,
                                             keyframes: [Keyframe(atStep: 0, distribution: .uniform)])
        config.frames = frames
        config.output.includeClean = true
        config.adaptive.enabled = adaptive
        return NoisingSettings(config)
    }

    private func message(_ shape: [Int]) throws -> [UInt8] {
        let count = shape.reduce(1, *)
        let values = (0..<count).map { Float($0 % 17) * 0.125 - 1 }
        return try encodeSafetensors([("latents", .F32, shape, values.flatMap { withUnsafeBytes(of: $0.bitPattern.littleEndian, Array.init) })],
                                     metadata: [:])
    }

    private struct Output {
        var tensors: [String: (shape: [Int], bytes: [UInt8])] = [:]
        /// What the σ histogram is given.
        var recordedSigmas: [Float] = []
        func floats(_ name: String) -> [Float] {
            tensors[name]!.bytes.withUnsafeBytes { raw in (0..<raw.count / 4).map { raw.loadUnaligned(fromByteOffset: 4 * $0, as: Float.self) } }
        }
        func ids() -> [UInt64] {
            tensors["noise_id"]!.bytes.withUnsafeBytes { raw in (0..<raw.count / 8).map { raw.loadUnaligned(fromByteOffset: 8 * $0, as: UInt64.self) } }
        }
    }

    private func run(_ settings: NoisingSettings, shape: [Int]? = nil, workers: Int = 1) throws -> Output {
        let noiser = BatchNoiser(seed: seed, workers: workers, buffers: MessageBufferPool(maxIdle: 2))
        defer { noiser.shutdown() }
        var state = DaemonState()
        let bytes = try message(shape ?? self.shape)
        let noised = try bytes.withUnsafeBytes { try noiser.noise($0, settings: settings, state: &state) }
        defer { noiser.buffers.recycle(noised.buffer) }
        let reader = try SafetensorsReader(UnsafeRawBufferPointer(start: noised.buffer.pointer, count: noised.byteCount))
        var output = Output(recordedSigmas: noised.sigmas)
        for tensor in reader.tensors { output.tensors[tensor.name] = (tensor.shape, Array(reader.bytes(of: tensor))) }
        return output
    }

    func testIndependentChunksDrawTheirOwnUniformsAndEveryFrameIsBlendedWithItsSigma() throws {
        let out = try run(settings(try FrameSampling(axis: 2, mode: .independent, chunk: 2)))
        XCTAssertEqual(out.tensors["sigma"]!.shape, [3, 5])
        XCTAssertNil(out.tensors["cond_mask"])
        let stream = NoiseStream(seed: seed), sigmas = out.floats("sigma"), ids = out.ids()
        for (b, id) in ids.enumerated() {
            for frame in 0..<5 {
                let u = stream.sigmaUniforms(noiseID: id, word0: UInt32(1 + frame / 2)).0
                XCTAssertEqual(sigmas[b * 5 + frame], Float(u), "sample \(b) frame \(frame)")
            }
        }
        // z_t = (1 - σ_f) z_0 + σ_f ε in f32, frame by frame.
        let zt = out.floats("z_t"), eps = out.floats("eps"), z0 = out.floats("z_0")
        for index in 0..<zt.count {
            let b = index / 120, frame = index % 120 / 12 % 5
            let sigma = sigmas[b * 5 + frame]
            XCTAssertEqual(zt[index], (sigma * eps[index]).addingProduct(1 - sigma, z0[index]), accuracy: 1e-6, "#\(index)")
        }
    }

    func testSortedFramesNeverGetLessNoisy() throws {
        let out = try run(settings(try FrameSampling(axis: 2, mode: .sorted)))
        let sigmas = out.floats("sigma")
        for b in 0..<3 { XCTAssertEqual(Array(sigmas[b * 5..<b * 5 + 5]), sigmas[b * 5..<b * 5 + 5].sorted()) }
        XCTAssertGreaterThan(Set(sigmas).count, 10, "each frame its own draw")
    }

    func testConditioningFramesAreExactlyZ0AndMarked() throws {
        let options = [FrameSampling.Condition(weight: 1, first: 1), .init(weight: 1, first: 1, last: 1)]
        let out = try run(settings(try FrameSampling(axis: 2, mode: .same, conditions: options), adaptive: true))
        XCTAssertEqual(out.tensors["cond_mask"]!.shape, [3, 5])
        XCTAssertEqual(out.tensors["weight"]!.shape, [3, 5])
        let mask = out.tensors["cond_mask"]!.bytes, sigmas = out.floats("sigma"), weights = out.floats("weight")
        let stream = NoiseStream(seed: seed)
        for (b, id) in out.ids().enumerated() {
            let last = stream.sigmaUniforms(noiseID: id, word1: 1).0 < 0.5 ? 0 : 1
            let expected: [UInt8] = (0..<5).map { $0 == 0 || (last == 1 && $0 == 4) ? 1 : 0 }
            XCTAssertEqual(Array(mask[b * 5..<b * 5 + 5]), expected, "sample \(b)")
            let perSample = Float(stream.sigmaUniforms(noiseID: id).0)
            for frame in 0..<5 {
                XCTAssertEqual(sigmas[b * 5 + frame], expected[frame] == 1 ? 0 : perSample)
                if expected[frame] == 1 { XCTAssertEqual(weights[b * 5 + frame], 0) }
            }
        }
        XCTAssertEqual(out.recordedSigmas, zip(sigmas, mask).filter { $0.1 == 0 }.map(\.0), "conditioning frames are not counted")
        let zt = out.tensors["z_t"]!.bytes, z0 = out.tensors["z_0"]!.bytes
        for index in 0..<zt.count / 4 where mask[index / 120 * 5 + index % 120 / 12 % 5] == 1 {
            XCTAssertEqual(zt[4 * index..<4 * index + 4], z0[4 * index..<4 * index + 4])
        }
    }

    func testStratifiedFramesCoverEveryStratumPerChunkIndex() throws {
        var settings = settings(try FrameSampling(axis: 2, mode: .independent, chunk: 2))
        settings.stratified = true
        let shape = [16, 1, 6, 8]  // 16 samples, 3 chunks of 2 frames
        let sigmas = try run(settings, shape: shape).floats("sigma")
        for chunk in 0..<3 {
            // Uniform curriculum: σ is the stratified uniform, so chunk c's 16 draws fill the 16 strata.
            let strata = (0..<16).map { Int(sigmas[$0 * 6 + 2 * chunk] * 16) }
            XCTAssertEqual(strata.sorted(), Array(0..<16), "chunk \(chunk)")
            XCTAssertEqual(sigmas[2 * chunk], sigmas[2 * chunk + 1], "a chunk's frames share its draw")
        }
    }

    /// The whole message for a config without frames or a posterior, pinned: the bytes these
    /// features must leave alone (pinned when they were added, after comparing the daemon's
    /// messages before and after them byte for byte).
    func testWithoutTheNewKeysTheMessageBytesAreUnchanged() throws {
        let noiser = BatchNoiser(seed: seed, workers: 2, buffers: MessageBufferPool(maxIdle: 2))
        defer { noiser.shutdown() }
        var state = DaemonState()
        let bytes = try message([3, 2, 5, 4, 3])
        let noised = try bytes.withUnsafeBytes { try noiser.noise($0, settings: settings(nil), state: &state) }
        defer { noiser.buffers.recycle(noised.buffer) }
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in UnsafeRawBufferPointer(start: noised.buffer.pointer, count: noised.byteCount) {
            hash = (hash ^ UInt64(byte)) &* 0x0000_0100_0000_01B3
        }
        XCTAssertEqual(hash, 0x7ddf_dfe4_14ad_922d, "message digest 0x\(String(hash, radix: 16))")
    }

    func testModeSameWithoutConditioningIsTheUsualOutput() throws {
        XCTAssertEqual(try run(settings(try FrameSampling(axis: 2, mode: .same))).tensors.mapValues(\.bytes),
                       try run(settings(nil)).tensors.mapValues(\.bytes))
    }

    func testWorkersDoNotChangeAByte() throws {
        let frames = try FrameSampling(axis: 2, mode: .independent, chunk: 3, conditions: [.init(weight: 1), .init(weight: 2, last: 2)])
        let big = [2, 3, 7, 40, 41]
        XCTAssertEqual(try run(settings(frames), shape: big, workers: 1).tensors.mapValues(\.bytes),
                       try run(settings(frames), shape: big, workers: 2).tensors.mapValues(\.bytes))
    }

    func testShapesTheFramesCannotApplyToAreRejectedAsBadFrames() throws {
        let frames = try FrameSampling(axis: 3, conditions: [.init(weight: 1, first: 2, last: 2)])
        for (shape, fragment) in [([2, 6], "outside the latents' shape [2, 6]"), ([2, 3, 4, 4], "have 4 frames on axis 3")] {
            XCTAssertThrowsError(try run(settings(frames), shape: shape)) { error in
                XCTAssertEqual((error as? ProtocolError)?.reason, .badFrames)
                XCTAssertTrue("\(error)".contains(fragment), "\(error)")
            }
        }
    }
}
