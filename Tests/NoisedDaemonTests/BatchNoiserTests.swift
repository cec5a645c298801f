import Configuration
import NoisedDaemon
import NoisedProtocol
import NoisedRuntime
import NoiseKernel
import Safetensors
import Schedule
import XCTest

final class BatchNoiserTests: XCTestCase {
    private func settings(_ edit: (inout NoisedConfig) throws -> Void = { _ in }) rethrows -> NoisingSettings {
        var config = NoisedConfig()
        config.schedule = try! SigmaSchedule(sigmaMin: 0, sigmaMax: 1, interpolation: .linear,
                                             keyframes: [Keyframe(atStep: 0, distribution: .uniform)])
        try edit(&config)
        return NoisingSettings(config)
    }

    private func message(samples: Int, elements: Int, ids: [UInt64]? = nil, values: Float = 0.25) throws -> [UInt8] {
        var tensors: [(name: String, dtype: DType, shape: [Int], data: [UInt8])] = [
            ("latents", .F32, [samples, elements],
             [Float](repeating: values, count: samples * elements).flatMap { withUnsafeBytes(of: $0.bitPattern.littleEndian, Array.init) }),
            ("caption", .U8, [3], [7, 8, 9]),
        ]
        if let ids {
            tensors.append(("noise_id", .U64, [ids.count], ids.flatMap { withUnsafeBytes(of: $0.littleEndian, Array.init) }))
        }
        return try encodeSafetensors(tensors, metadata: ["origin": "test"])
    }

    private func noise(_ noiser: BatchNoiser, _ bytes: [UInt8], _ settings: NoisingSettings,
                       _ state: inout DaemonState) throws -> (NoisedMessage, [String: String], [UInt64], [Float]) {
        let noised = try bytes.withUnsafeBytes { raw in try noiser.noise(raw, settings: settings, state: &state) }
        defer { noiser.buffers.recycle(noised.buffer) }
        let out = UnsafeRawBufferPointer(start: noised.buffer.pointer, count: noised.byteCount)
        let reader = try SafetensorsReader(out)
        let ids = reader.bytes(of: reader.tensor(named: "noise_id")!)
        let sigmas = reader.bytes(of: reader.tensor(named: "sigma")!)
        XCTAssertEqual(Array(reader.bytes(of: reader.tensor(named: "caption")!)), [7, 8, 9])
        return (noised, reader.metadata,
                (0..<noised.sampleCount).map { ids.loadUnaligned(fromByteOffset: 8 * $0, as: UInt64.self) },
                (0..<noised.sampleCount).map { sigmas.loadUnaligned(fromByteOffset: 4 * $0, as: Float.self) })
    }

    func testDefaultNoiseIDsCountSamplesUnderTheInstance() throws {
        let noiser = BatchNoiser(seed: 5, workers: 2, buffers: MessageBufferPool(maxIdle: 4))
        defer { noiser.shutdown() }
        let settings = settings { $0.instance = 3 }
        var state = DaemonState()
        let (_, metadata, firstIDs, sigmas) = try noise(noiser, try message(samples: 2, elements: 100), settings, &state)
        XCTAssertEqual(firstIDs, [3 << 48, (3 << 48) | 1])
        let (_, _, secondIDs, _) = try noise(noiser, try message(samples: 3, elements: 100), settings, &state)
        XCTAssertEqual(secondIDs, [(3 << 48) | 2, (3 << 48) | 3, (3 << 48) | 4])
        XCTAssertEqual(state.samples, 5)
        XCTAssertEqual(state.batches, 2)
        XCTAssertEqual(state.seq, 2)
        XCTAssertEqual(metadata["origin"], "test")
        XCTAssertEqual(metadata["noised.seed"], "5")
        XCTAssertEqual(metadata["noised.protocol"], "1")
        // σ is the uniform schedule's quantile of the sample's own uniform: exactly u, rounded to f32.
        XCTAssertEqual(sigmas, firstIDs.map { Float(NoiseStream(seed: 5).sigmaUniforms(noiseID: $0).0) })
    }

    func testDefaultNoiseIDsNeverWrapPastTwoToTheFortyEight() throws {
        let noiser = BatchNoiser(seed: 5, workers: 1, buffers: MessageBufferPool(maxIdle: 4))
        defer { noiser.shutdown() }
        let settings = settings { $0.instance = 2 }
        var state = DaemonState()
        state.samples = (1 << 48) - 3
        let (_, _, ids, _) = try noise(noiser, try message(samples: 3, elements: 4), settings, &state)
        let last: UInt64 = (2 << 48) | ((1 << 48) - 1)
        XCTAssertEqual(ids, [last - 2, last - 1, last])
        let before = state
        XCTAssertThrowsError(try noise(noiser, try message(samples: 1, elements: 4), settings, &state)) { error in
            XCTAssertEqual((error as? ProtocolError)?.reason, .idsExhausted)
            XCTAssertTrue("\(error)".contains("instance 2"), "\(error)")
        }
        XCTAssertEqual(state, before, "a refused batch takes nothing")
        // Batches that bring their own ids still go through.
        let (_, _, given, _) = try noise(noiser, try message(samples: 2, elements: 4, ids: [9, 10]), settings, &state)
        XCTAssertEqual(given, [9, 10])
    }

    func testABatchOverMaxBatchIsRefusedBeforeAnythingPerSample() throws {
        let noiser = BatchNoiser(seed: 5, workers: 1, buffers: MessageBufferPool(maxIdle: 4))
        defer { noiser.shutdown() }
        let settings = settings { $0.input.maxBatch = 16 }
        var state = DaemonState()
        // 2^40 samples of zero elements: 0 data bytes; refused on B alone.
        let huge = try encodeSafetensors([("latents", .F32, [1 << 40, 0], [])], metadata: [:])
        XCTAssertThrowsError(try noise(noiser, huge, settings, &state)) { error in
            XCTAssertEqual((error as? ProtocolError)?.reason, .batchTooLarge, "\(error)")
        }
        XCTAssertThrowsError(try noise(noiser, try message(samples: 17, elements: 1), settings, &state)) { error in
            XCTAssertEqual((error as? ProtocolError)?.reason, .batchTooLarge, "\(error)")
            XCTAssertTrue("\(error)".contains("over input.max_batch 16"), "\(error)")
        }
        XCTAssertEqual(state, DaemonState())
        XCTAssertNoThrow(try noise(noiser, try message(samples: 16, elements: 1), settings, &state))
    }

    func testInputNoiseIDsAreUsedAndStepFollowsBatchesPerStep() throws {
        let noiser = BatchNoiser(seed: 1, workers: 1, buffers: MessageBufferPool(maxIdle: 4))
        defer { noiser.shutdown() }
        let settings = settings { $0.steps.batchesPerStep = 2 }
        var state = DaemonState()
        var steps: [String] = []
        for _ in 0..<5 {
            let (_, metadata, ids, _) = try noise(noiser, try message(samples: 2, elements: 8, ids: [42, 7]), settings, &state)
            XCTAssertEqual(ids, [42, 7])
            steps.append(metadata["noised.step"]!)
        }
        XCTAssertEqual(steps, ["0", "0", "1", "1", "2"])
        XCTAssertEqual(state.samples, 10, "samples count every emitted sample")
    }

    func testRejectedBatchesLeaveStateAndPoolUntouched() throws {
        let pool = MessageBufferPool(maxIdle: 4)
        let noiser = BatchNoiser(seed: 1, workers: 2, buffers: pool)
        defer { noiser.shutdown() }
        var state = DaemonState()
        let nonfinite = try message(samples: 2, elements: 1 << 17, values: .nan)
        XCTAssertThrowsError(try nonfinite.withUnsafeBytes { try noiser.noise($0, settings: settings(), state: &state) }) { error in
            XCTAssertEqual((error as? ProtocolError)?.reason, .nonfinite)
        }
        XCTAssertEqual(state, DaemonState())
        XCTAssertEqual(pool.idleCount, pool.allocatedCount, "the output buffer went back to the pool")

        let small = settings { $0.input.maxMessageBytes = 1024 }
        let large = try message(samples: 2, elements: 1000)
        XCTAssertThrowsError(try large.withUnsafeBytes { try noiser.noise($0, settings: small, state: &state) }) { error in
            XCTAssertEqual((error as? ProtocolError)?.reason, .messageTooLarge)
        }
        // With the check off, the same non-finite batch goes through.
        let lenient = settings { $0.input.rejectNonfinite = false }
        XCTAssertNoThrow(try nonfinite.withUnsafeBytes { raw in
            let noised = try noiser.noise(raw, settings: lenient, state: &state)
            pool.recycle(noised.buffer)
        })
        XCTAssertEqual(state.batches, 1)
    }

    /// Batches split into one part and into several parts per worker give the bytes of one
    /// worker, with samples of whole and of partial 64-element blocks.
    func testWorkerCountDoesNotChangeBytes() throws {
        for elements in [70_001, 350_016, 350_001] {
            var outputs: [[UInt8]] = []
            for workers in [1, 2, 3] {
                let noiser = BatchNoiser(seed: 9, workers: workers, buffers: MessageBufferPool(maxIdle: 2))
                var state = DaemonState()
                let bytes = try message(samples: 3, elements: elements)
                let noised = try bytes.withUnsafeBytes { try noiser.noise($0, settings: settings(), state: &state) }
                outputs.append(Array(UnsafeRawBufferPointer(start: noised.buffer.pointer, count: noised.byteCount)))
                noiser.buffers.recycle(noised.buffer)
                noiser.shutdown()
            }
            XCTAssertTrue(outputs[0] == outputs[1], "2 workers, \(elements) elements per sample")
            XCTAssertTrue(outputs[0] == outputs[2], "3 workers, \(elements) elements per sample")
        }
    }

    func testPartitionSplitsLargeBatchesIntoSeveralPartsPerWorker() {
        let minimum = 1 << 18
        let cases: [(elements: Int, workers: Int, parts: Int)] = [
            (0, 2, 1), (2 * minimum - 1, 2, 1), (2 * minimum, 2, 2), (3 * 350_000, 2, 4), (3 * 350_000, 3, 4),
            (100 * minimum, 2, 8), (100 * minimum, 3, 12), (100 * minimum, 1, 1),
        ]
        for (elements, workers, parts) in cases {
            let ranges = NoiseKernel.partition(totalElements: elements, workers: workers)
            XCTAssertEqual(ranges.count, parts, "\(elements) elements, \(workers) workers")
            XCTAssertEqual(ranges.first?.lowerBound, 0)
            XCTAssertEqual(ranges.last?.upperBound, elements)
            XCTAssertTrue(zip(ranges, ranges.dropFirst()).allSatisfy { $0.upperBound == $1.lowerBound })
        }
    }

    func testSigmaOutsideTheUnitIntervalOrANonfiniteWeightRejectsTheBatch() {
        func reason(_ sigmas: [Float], _ weights: [Float]? = nil) -> String? {
            do {
                try BatchNoiser.checkDrawn(sigmas: sigmas, weights: weights)
                return nil
            } catch {
                return "\(error)"
            }
        }
        XCTAssertNil(reason([0, 0.5, 1], [0, 1, 7.5]))
        XCTAssertEqual(reason([0.5, .nan]), "nonfinite_sigma: sample 1 drew sigma nan, outside [0, 1]")
        XCTAssertEqual(reason([1.0000001]), "nonfinite_sigma: sample 0 drew sigma 1.0000001, outside [0, 1]")
        XCTAssertEqual(reason([-0.25]), "nonfinite_sigma: sample 0 drew sigma -0.25, outside [0, 1]")
        XCTAssertEqual(reason([0.5, 0.5], [1, .infinity]), "nonfinite_sigma: sample 1 drew weight inf, not finite and >= 0")
    }
}
