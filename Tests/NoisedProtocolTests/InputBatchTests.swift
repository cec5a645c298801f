import NoiseKernelCore
import Safetensors
import XCTest
import NoisedProtocol

final class InputBatchTests: XCTestCase {
    func testValidInputsInEveryElementTypeWithAndWithoutNoiseIDs() throws {
        let ids: [UInt64] = [7, 1 << 40, 0]
        let noiseIDVariants: [TensorSpec?] = [
            nil,
            ("noise_id", .I64, [3], bytes(ids.map { Int64($0) })),
            ("noise_id", .U64, [3], bytes(ids)),
        ]
        for latentType in ElementType.allCases {
            for noiseID in noiseIDVariants {
                let latents = spec("latents", latentType.dtype, [3, 2, 5], salt: 3)
                let caption = spec("caption", .BF16, [3, 4], salt: 5)
                let file = message([caption, latents] + (noiseID.map { [$0] } ?? []), metadata: ["source": "test"])
                try withBatch(file) { batch in
                    XCTAssertEqual(batch.latentType, latentType)
                    XCTAssertEqual(batch.latents.shape, [3, 2, 5])
                    XCTAssertEqual(batch.sampleCount, 3)
                    XCTAssertEqual(batch.elementsPerSample, 10)
                    XCTAssertEqual(Array(batch.latentBytes), latents.data)
                    XCTAssertEqual(batch.noiseIDs, noiseID == nil ? nil : ids)
                    XCTAssertEqual(batch.passthrough.map(\.name), ["caption"])
                    XCTAssertEqual(batch.metadata, ["source": "test"])
                }
            }
        }
    }

    func testLatentBytesAreViewedInPlace() throws {
        let file = message([spec("latents", .F32, [2, 2])])
        try file.withUnsafeBytes { raw in
            let batch = try InputBatch(message: raw, latentTensor: "latents", maxBatch: 4096)
            let offset = batch.latentBytes.baseAddress! - raw.baseAddress!
            XCTAssertEqual(offset, batch.reader.dataStart + batch.latents.dataRange.lowerBound)
        }
    }

    func testOneDimensionalLatentsHaveOneElementPerSample() throws {
        try withBatch(message([spec("latents", .F16, [4])])) { batch in
            XCTAssertEqual(batch.sampleCount, 4)
            XCTAssertEqual(batch.elementsPerSample, 1)
        }
    }

    func testConfiguredLatentTensorName() throws {
        let file = message([spec("x", .BF16, [2, 3]), spec("latents", .U8, [2])])
        try withBatch(file, latentTensor: "x") { batch in
            XCTAssertEqual(batch.latents.name, "x")
            XCTAssertEqual(batch.passthrough.map(\.name), ["latents"])
        }
    }

    func testPassthroughKeepsEveryOtherTensorInDataOrder() throws {
        let others = DType.allCases.enumerated().map { index, dtype in spec("p\(index)", dtype, [index % 3 + 1, 3], salt: UInt8(index)) }
        let file = message(Array(others[..<5]) + [spec("latents", .F32, [1, 8]), spec("noise_id", .U64, [1])] + others[5...])
        try withBatch(file) { batch in
            XCTAssertEqual(batch.passthrough.map(\.name), others.map(\.name))
            for (tensor, expected) in zip(batch.passthrough, others) {
                XCTAssertEqual(tensor.dtype, expected.dtype)
                XCTAssertEqual(Array(batch.reader.bytes(of: tensor)), expected.data)
            }
        }
    }

    func testEveryParseTimeRejectReason() {
        let latents = spec("latents", .F32, [2, 3])
        var cases: [(RejectReason, [UInt8], String)] = []
        let good = message([latents])
        cases.append((.truncated, Array(good.dropLast()), "latents"))
        cases.append((.truncated, Array(good.prefix(5)), "8-byte"))
        cases.append((.headerTooLarge, message([latents], metadata: ["big": String(repeating: "x", count: 1 << 20)]), "over the limit"))
        cases.append((.badHeader, rawMessage(header: #"{"latents":{"dtype":"F32","shape":[2,3],"data_offsets":[0,24]},}"#,
                                             data: latents.data), "string key"))
        cases.append((.badHeader, rawMessage(header: #"{"latents":{"dtype":"F32","shape":[2,3],"data_offsets":[0,24]},"latents":{}}"#,
                                             data: latents.data), #""latents""#))
        cases.append((.badOffsets, rawMessage(header: #"{"latents":{"dtype":"F32","shape":[2,3],"data_offsets":[4,28]}}"#,
                                              data: latents.data + [0, 0, 0, 0]), #""latents""#))
        cases.append((.badOffsets, rawMessage(
            header: #"{"latents":{"dtype":"F32","shape":[2,3],"data_offsets":[0,24]},"m":{"dtype":"U8","shape":[4],"data_offsets":[20,24]}}"#,
            data: latents.data), "overlaps"))
        cases.append((.unknownDType, rawMessage(header: #"{"latents":{"dtype":"F128","shape":[2,3],"data_offsets":[0,24]}}"#,
                                                data: latents.data), "F128"))
        cases.append((.shapeMismatch, rawMessage(header: #"{"latents":{"dtype":"F32","shape":[2,4],"data_offsets":[0,24]}}"#,
                                                 data: latents.data), "needs 32 bytes"))
        cases.append((.missingLatents, message([spec("lat", .F32, [2, 3])]), #""latents""#))
        cases.append((.missingLatents, message([]), "none"))
        cases.append((.badLatentDType, message([spec("latents", .F64, [2, 3])]), "F64"))
        cases.append((.badLatentDType, message([spec("latents", .I8, [2, 3])]), "I8"))
        cases.append((.emptyBatch, message([spec("latents", .F32, [0, 3])]), "batch size 0"))
        cases.append((.emptyBatch, message([spec("latents", .F32, [])]), "0-d"))
        cases.append((.emptyBatch, message([spec("latents", .F32, [2, 0])]), "no elements per sample"))
        // Zero bytes of latents can claim any batch size: B is bounded before anything per sample.
        cases.append((.batchTooLarge, message([spec("latents", .F32, [1 << 40, 0])]), "1099511627776 samples, over input.max_batch 4096"))
        cases.append((.batchTooLarge, message([spec("latents", .F32, [4097, 1])]), "4097 samples"))
        cases.append((.badNoiseID, message([latents, spec("noise_id", .F32, [2])]), "F32"))
        cases.append((.badNoiseID, message([latents, spec("noise_id", .U64, [3])]), "[2]"))
        cases.append((.badNoiseID, message([latents, spec("noise_id", .U64, [2, 1])]), "[2, 1]"))
        cases.append((.badNoiseID, message([latents, ("noise_id", .I64, [2], bytes([Int64(5), -3]))]), "noise_id[1]"))
        for name in ["z_t", "eps", "sigma", "z_0", "weight"] {
            cases.append((.reservedName, message([latents, spec(name, .F32, [2])]), "\"\(name)\""))
        }

        let posterior = PosteriorTensors(mean: "mean", logvar: "logvar")
        for (logvar, fragment) in [(spec("logvar", .F32, [2, 4]), "[2, 4]"), (spec("logvar", .F16, [2, 3]), "F16")] {
            let file = message([spec("mean", .F32, [2, 3]), logvar])
            let error = rejection(file, posterior: posterior)
            XCTAssertEqual(error?.reason, .posteriorMismatch, "\(String(describing: error))")
            XCTAssertTrue(error?.detail.contains(fragment) == true, "\(String(describing: error))")
            cases.append((.posteriorMismatch, file, fragment))
        }
        XCTAssertEqual(rejection(message([spec("mean", .F32, [2, 3])]), posterior: posterior)?.detail,
                       "no tensor named \"logvar\" (input.posterior.logvar; message has: \"mean\")")

        for (reason, file, fragment) in cases where reason != .posteriorMismatch {
            guard let error = rejection(file) else {
                XCTFail("accepted a message that should be rejected as \(reason.rawValue)")
                continue
            }
            XCTAssertEqual(error.reason, reason, "\(error)")
            XCTAssertTrue(error.detail.contains(fragment), "\"\(error.detail)\" does not mention \(fragment)")
        }
        let covered = Set(cases.map(\.0))
        XCTAssertEqual(covered, Set(RejectReason.allCases).subtracting([.messageTooLarge, .nonfinite, .nonfiniteSigma, .badEnvelope, .idsExhausted, .badFrames, .nonfinitePosterior]),
                       "the others are detected by the daemon, the kernel, the σ draw and the acknowledged input")
    }

    func testMaxHeaderBytesIsConfigurable() {
        let file = message([spec("latents", .F32, [2, 3])], metadata: ["k": String(repeating: "v", count: 200)])
        XCTAssertEqual(rejection(file, maxHeaderBytes: 128)?.reason, .headerTooLarge)
        XCTAssertNil(rejection(file, maxHeaderBytes: 1024))
    }

    func testMaxBatchIsConfigurable() {
        let file = message([spec("latents", .F32, [8, 2])])
        XCTAssertEqual(rejection(file, maxBatch: 7)?.reason, .batchTooLarge)
        XCTAssertNil(rejection(file, maxBatch: 8))
    }

    func testRejectLabelsAreStable() {
        XCTAssertEqual(RejectReason.allCases.map(\.rawValue), [
            "truncated", "header_too_large", "bad_header", "bad_offsets", "unknown_dtype", "shape_mismatch",
            "missing_latents", "bad_latent_dtype", "empty_batch", "batch_too_large", "bad_noise_id", "reserved_name",
            "message_too_large", "nonfinite", "nonfinite_sigma", "bad_envelope", "ids_exhausted", "bad_frames",
            "posterior_mismatch", "nonfinite_posterior",
        ])
        XCTAssertEqual("\(ProtocolError(.emptyBatch, "no samples"))", "empty_batch: no samples")
    }

    func testTypeMaps() {
        XCTAssertEqual(ElementType(.F32), .f32)
        XCTAssertEqual(ElementType(.F16), .f16)
        XCTAssertEqual(ElementType(.BF16), .bf16)
        for dtype in DType.allCases where ![.F32, .F16, .BF16].contains(dtype) {
            XCTAssertNil(ElementType(dtype), "\(dtype) is passthrough only")
        }
        for type in ElementType.allCases {
            XCTAssertEqual(ElementType(type.dtype), type)
            XCTAssertEqual(type.dtype.byteCount, type.byteCount)
            XCTAssertEqual(OutputDType.input.resolved(for: type), type)
            for fixed in ElementType.allCases {
                XCTAssertEqual(OutputDType.fixed(fixed).resolved(for: type), fixed)
            }
        }
        XCTAssertEqual(OutputDType.allCases.map(\.rawValue), ["input", "f32", "f16", "bf16"])
        for output in OutputDType.allCases {
            XCTAssertEqual(OutputDType(rawValue: output.rawValue), output)
        }
        XCTAssertNil(OutputDType(rawValue: "fp8"))
    }

    private func rawMessage(header: String, data: [UInt8]) -> [UInt8] {
        var file: [UInt8] = []
        withUnsafeBytes(of: UInt64(header.utf8.count).littleEndian) { file.append(contentsOf: $0) }
        return file + Array(header.utf8) + data
    }
}
