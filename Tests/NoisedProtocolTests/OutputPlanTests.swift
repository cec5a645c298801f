import NoiseKernelCore
import Safetensors
import XCTest
import NoisedProtocol

final class OutputPlanTests: XCTestCase {
    private let daemonMetadata = ["noised.step": "7", "noised.seq": "42", "noised.seed": "1234"]

    /// An input with odd-sized passthrough tensors of many dtypes, to stress alignment.
    private func input(latents: DType, noiseID: Bool = true) -> [UInt8] {
        var tensors: [TensorSpec] = [
            spec("mask", .BOOL, [3, 5], salt: 11),
            spec("latents", latents, [3, 1, 7], salt: 3),
            spec("ids", .I64, [3], salt: 13),
            spec("tokens", .I32, [3, 3], salt: 17),
            spec("caption", .BF16, [3, 1, 5], salt: 19),
            spec("scale", .F64, [], salt: 23),
            spec("bytes", .U8, [7], salt: 29),
            spec("empty", .F16, [0], salt: 31),
            spec("fp8", .F8_E4M3, [3], salt: 37),
        ]
        if noiseID { tensors.append(("noise_id", .U64, [3], bytes([UInt64(3), 2, 1]))) }
        return message(tensors, metadata: ["source": "unit", "noised.step": "stale", "noised.protocol": "0"])
    }

    /// Builds the output for `file`, fills the daemon's tensors with marker bytes, and parses it back.
    private func roundTrip(
        _ file: [UInt8], output: OutputDType, includeClean: Bool, includeWeight: Bool,
        check: (InputBatch, OutputPlan, SafetensorsReader) throws -> Void
    ) throws {
        try withBatch(file) { batch in
            let plan = try OutputPlan(
                input: batch, outputDType: output.resolved(for: batch.latentType), includeClean: includeClean,
                includeWeight: includeWeight, metadata: daemonMetadata)
            var out = [UInt8](repeating: 0xEE, count: plan.byteCount)
            try out.withUnsafeMutableBytes { buffer in
                plan.writeHeaderAndPassthrough(into: buffer, from: batch)
                let daemonRanges = [plan.zt, plan.eps, plan.sigma, plan.noiseID] + [plan.clean, plan.weight].compactMap { $0 }
                for (marker, range) in daemonRanges.enumerated() {
                    UnsafeMutableRawBufferPointer(rebasing: buffer[range]).initializeMemory(as: UInt8.self, repeating: UInt8(marker))
                }
                let reader = try SafetensorsReader(UnsafeRawBufferPointer(buffer))
                try check(batch, plan, reader)
            }
        }
    }

    func testEveryTensorIsNaturallyAlignedAndPassthroughIsByteExact() throws {
        for latents in ElementType.allCases {
            for output in OutputDType.allCases {
                for (includeClean, includeWeight) in [(false, false), (true, false), (false, true), (true, true)] {
                    try roundTrip(input(latents: latents.dtype), output: output, includeClean: includeClean,
                                  includeWeight: includeWeight) { batch, plan, reader in
                        let context = "\(latents) -> \(output), clean \(includeClean), weight \(includeWeight)"
                        XCTAssertEqual(reader.dataStart % 8, 0, context)
                        for tensor in reader.tensors {
                            XCTAssertEqual((reader.dataStart + tensor.dataRange.lowerBound) % tensor.dtype.byteCount, 0,
                                           "\(tensor.name) misaligned, \(context)")
                        }
                        let sizes = reader.tensors.map(\.dtype.byteCount)
                        XCTAssertEqual(sizes, sizes.sorted(by: >), "element sizes descend, \(context)")
                        for tensor in batch.passthrough {
                            let copied = try XCTUnwrap(reader.tensor(named: tensor.name), context)
                            XCTAssertEqual(copied.dtype, tensor.dtype, context)
                            XCTAssertEqual(copied.shape, tensor.shape, context)
                            XCTAssertEqual(Array(reader.bytes(of: copied)), Array(batch.reader.bytes(of: tensor)), context)
                        }
                        XCTAssertEqual(reader.tensors.count, batch.passthrough.count + 4 + (includeClean ? 1 : 0) + (includeWeight ? 1 : 0))
                    }
                }
            }
        }
    }

    func testNoisedTensorsHaveTheirDTypesShapesAndPlannedRanges() throws {
        try roundTrip(input(latents: .BF16), output: .fixed(.f32), includeClean: true, includeWeight: true) { batch, plan, reader in
            func check(_ name: String, _ dtype: DType, _ shape: [Int], _ range: Range<Int>?, marker: UInt8) throws {
                let tensor = try XCTUnwrap(reader.tensor(named: name), name)
                XCTAssertEqual(tensor.dtype, dtype, name)
                XCTAssertEqual(tensor.shape, shape, name)
                let absolute = (reader.dataStart + tensor.dataRange.lowerBound)..<(reader.dataStart + tensor.dataRange.upperBound)
                XCTAssertEqual(absolute, range, name)
                XCTAssertEqual(Set(reader.bytes(of: tensor)), [marker], "the daemon's bytes land in \(name)")
            }
            XCTAssertEqual(plan.outputType, .f32)
            try check("z_t", .F32, [3, 1, 7], plan.zt, marker: 0)
            try check("eps", .F32, [3, 1, 7], plan.eps, marker: 1)
            try check("sigma", .F32, [3], plan.sigma, marker: 2)
            try check("noise_id", .U64, [3], plan.noiseID, marker: 3)
            try check("z_0", .F32, [3, 1, 7], plan.clean, marker: 4)
            try check("weight", .F32, [3], plan.weight, marker: 5)
        }
    }

    func testOptionalTensorsAreAbsentUnlessRequested() throws {
        try roundTrip(input(latents: .F16, noiseID: false), output: .input, includeClean: false, includeWeight: false) { _, plan, reader in
            XCTAssertNil(plan.clean)
            XCTAssertNil(plan.weight)
            XCTAssertNil(reader.tensor(named: "z_0"))
            XCTAssertNil(reader.tensor(named: "weight"))
            XCTAssertEqual(reader.tensor(named: "z_t")?.dtype, .F16)
            XCTAssertEqual(reader.tensor(named: "noise_id")?.dtype, .U64, "noise_id is always emitted")
        }
    }

    func testDataOrderBySizeThenNoisedThenInputOrder() throws {
        let expectedF32 = ["noise_id", "ids", "scale", "z_t", "eps", "z_0", "sigma", "weight", "tokens",
                           "caption", "empty", "mask", "bytes", "fp8"]
        let expectedBF16 = ["noise_id", "ids", "scale", "sigma", "weight", "tokens",
                            "z_t", "eps", "z_0", "caption", "empty", "mask", "bytes", "fp8"]
        for (output, expected) in [(OutputDType.fixed(.f32), expectedF32), (.fixed(.bf16), expectedBF16)] {
            try roundTrip(input(latents: .F16), output: output, includeClean: true, includeWeight: true) { _, _, reader in
                // Empty tensors share an offset with their successor; the reader sorts them first.
                XCTAssertEqual(reader.tensors.map(\.name).filter { $0 != "empty" }, expected.filter { $0 != "empty" })
            }
        }
        // Without the empty tensor the planned order is visible directly in the header text.
        let file = message([spec("b", .U8, [1]), spec("latents", .BF16, [2, 2]), spec("a", .F32, [1])])
        try withBatch(file) { batch in
            let plan = try OutputPlan(input: batch, outputDType: .bf16, includeClean: false, includeWeight: false, metadata: [:])
            XCTAssertLessThan(plan.noiseID.lowerBound, plan.sigma.lowerBound)
            XCTAssertLessThan(plan.sigma.lowerBound, plan.zt.lowerBound)
            XCTAssertLessThan(plan.zt.lowerBound, plan.eps.lowerBound)
        }
    }

    func testMetadataMergesWithDaemonKeysWinning() throws {
        try roundTrip(input(latents: .F32), output: .input, includeClean: false, includeWeight: false) { _, plan, reader in
            let expected = ["source": "unit", "noised.step": "7", "noised.seq": "42", "noised.seed": "1234", "noised.protocol": "1"]
            XCTAssertEqual(reader.metadata, expected)
            XCTAssertEqual(plan.metadata, expected)
        }
    }

    func testSizesFollowBatchAndOutputType() throws {
        for output in ElementType.allCases.map(OutputDType.fixed) {
            try withBatch(message([spec("latents", .F32, [5, 4, 3])])) { batch in
                let type = output.resolved(for: batch.latentType)
                let plan = try OutputPlan(input: batch, outputDType: type, includeClean: true, includeWeight: true, metadata: [:])
                let latentBytes = 5 * 12 * type.dtype.byteCount
                XCTAssertEqual(plan.zt.count, latentBytes)
                XCTAssertEqual(plan.eps.count, latentBytes)
                XCTAssertEqual(plan.clean?.count, latentBytes)
                XCTAssertEqual(plan.sigma.count, 20)
                XCTAssertEqual(plan.weight?.count, 20)
                XCTAssertEqual(plan.noiseID.count, 40)
                XCTAssertEqual(plan.noiseID.upperBound, plan.byteCount - 3 * latentBytes - 40, "noise_id leads, then the F32 tensors")
            }
        }
    }
    func testAPlanMadeFromThePreviousOneEqualsOneMadeAfresh() throws {
        let f32 = input(latents: .F32), bf16 = input(latents: .BF16), noIDs = input(latents: .F32, noiseID: false)
        let otherMetadata = message([spec("latents", .F32, [3, 1, 7], salt: 3)], metadata: ["source": "other"])
        // The same input again with new step/seq, then each thing a plan depends on changed in turn.
        let sequence: [([UInt8], OutputDType, Bool, Bool, Int)] = [
            (f32, .input, false, false, 1), (f32, .input, false, false, 2), (f32, .input, false, false, 1_000_000_000),
            (f32, .fixed(.bf16), false, false, 3), (f32, .fixed(.bf16), true, false, 4), (f32, .fixed(.bf16), true, true, 5),
            (bf16, .fixed(.bf16), true, true, 6), (noIDs, .fixed(.bf16), true, true, 7), (otherMetadata, .fixed(.bf16), true, true, 8),
            (otherMetadata, .fixed(.bf16), true, true, 99), (f32, .input, false, false, 10),
        ]
        var previous: OutputPlan?
        for (index, (file, output, includeClean, includeWeight, seq)) in sequence.enumerated() {
            try withBatch(file) { batch in
                let metadata = ["noised.step": String(seq / 3), "noised.seq": String(seq), "noised.seed": "1234"]
                let outputDType = output.resolved(for: batch.latentType)
                let fresh = try OutputPlan(input: batch, outputDType: outputDType, includeClean: includeClean,
                                           includeWeight: includeWeight, metadata: metadata)
                let reused = try OutputPlan(input: batch, outputDType: outputDType, includeClean: includeClean,
                                            includeWeight: includeWeight, metadata: metadata, reusing: previous)
                XCTAssertEqual(reused.header, fresh.header, "batch \(index)")
                XCTAssertEqual(reused.byteCount, fresh.byteCount, "batch \(index)")
                XCTAssertEqual([reused.zt, reused.eps, reused.sigma, reused.noiseID], [fresh.zt, fresh.eps, fresh.sigma, fresh.noiseID])
                XCTAssertEqual(reused.clean, fresh.clean)
                XCTAssertEqual(reused.weight, fresh.weight)
                XCTAssertEqual(reused.metadata, fresh.metadata)
                XCTAssertEqual(reused.outputType, fresh.outputType)
                var written: [[UInt8]] = []
                for plan in [fresh, reused] {
                    var out = [UInt8](repeating: 0xEE, count: plan.byteCount)
                    out.withUnsafeMutableBytes { plan.writeHeaderAndPassthrough(into: $0, from: batch) }
                    written.append(out)
                }
                XCTAssertEqual(written[0], written[1], "batch \(index): header and passthrough bytes")
                previous = reused
            }
        }
    }
}

