import NoisedProtocol
import Safetensors
import XCTest

final class FeedbackReportTests: XCTestCase {
    private func f32(_ values: [Float]) -> [UInt8] {
        values.flatMap { withUnsafeBytes(of: $0.bitPattern.littleEndian, Array.init) }
    }

    private func parse(_ tensors: [(name: String, dtype: DType, shape: [Int], data: [UInt8])],
                       _ metadata: [String: String]) throws -> FeedbackReport {
        let bytes = try encodeSafetensors(tensors, metadata: metadata)
        return try bytes.withUnsafeBytes { raw in try FeedbackReport(message: raw) }
    }

    func testStepOnly() throws {
        XCTAssertEqual(try parse([], ["step": "500"]), FeedbackReport(step: 500))
    }

    func testGeneration() throws {
        XCTAssertEqual(try parse([], ["step": "500", "generation": "3"]), FeedbackReport(step: 500, generation: 3))
        XCTAssertEqual(try parse([], ["step": "5", "generation": "18446744073709551615"]).generation, .max)
        XCTAssertEqual(try parse([], ["step": "5"]).generation, 0, "absent means generation 0")
    }

    func testSigmaAndLoss() throws {
        let report = try parse([("sigma", .F32, [3], f32([0, 0.5, 1])), ("loss", .F32, [3], f32([1, 2, 3]))], ["step": "7"])
        XCTAssertEqual(report, FeedbackReport(step: 7, sigmas: [0, 0.5, 1], losses: [1, 2, 3]))
    }

    func testBadReportsNameTheProblem() throws {
        let cases: [([(name: String, dtype: DType, shape: [Int], data: [UInt8])], [String: String], String)] = [
            ([], [:], "'step' is missing"),
            ([], ["step": "-1"], "decimal integer >= 0"),
            ([], ["step": "12x"], "decimal integer >= 0"),
            ([], ["step": "1", "generation": "-2"], "'generation' must be a decimal integer >= 0, got '-2'"),
            ([], ["step": "1", "generation": "next"], "'generation' must be a decimal integer >= 0, got 'next'"),
            ([("sigma", .F32, [1], f32([0.5]))], ["step": "1"], "got only 'sigma'"),
            ([("loss", .F32, [1], f32([0.5]))], ["step": "1"], "got only 'loss'"),
            ([("sigma", .F32, [2], f32([0.5, 0.5])), ("loss", .F32, [1], f32([1]))], ["step": "1"], "has 2 values but 'loss' has 1"),
            ([("sigma", .F32, [1], f32([1.5])), ("loss", .F32, [1], f32([1]))], ["step": "1"], "sigma[0] = 1.5"),
            ([("sigma", .F32, [1], f32([0.5])), ("loss", .F32, [1], f32([.nan]))], ["step": "1"], "loss[0] = nan"),
            ([("sigma", .F64, [1], [UInt8](repeating: 0, count: 8)), ("loss", .F32, [1], f32([1]))], ["step": "1"], "must be F32"),
            ([("extra", .U8, [1], [1])], ["step": "1"], "unexpected tensor 'extra'"),
        ]
        for (tensors, metadata, expected) in cases {
            XCTAssertThrowsError(try parse(tensors, metadata), expected) { error in
                XCTAssertTrue("\(error)".contains(expected), "\(error) should say \(expected)")
            }
        }
        XCTAssertThrowsError(try [UInt8]([1, 2, 3]).withUnsafeBytes { try FeedbackReport(message: $0) }) { error in
            XCTAssertTrue("\(error)".contains("not a safetensors message"), "\(error)")
        }
    }
}
