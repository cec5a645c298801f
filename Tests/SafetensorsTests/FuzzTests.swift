import XCTest
import Safetensors
import NoisedTestSupport

final class FuzzTests: XCTestCase {
    /// Mutated files must only ever be rejected or accepted; an accepted file must be self-consistent.
    func testMutatedFilesNeverCrash() throws {
        var generator = SplitMix64(seed: 0x5AFE_7E45)
        let original = try encodeSafetensors(
            [("latents", .BF16, [2, 3], randomBytes(12, using: &generator)),
             ("ids", .I64, [2], randomBytes(16, using: &generator)),
             ("mask", .BOOL, [2, 2], [0, 1, 1, 0]),
             ("s", .F32, [], [0, 0, 0, 0])],
            metadata: ["caption": "a \"cat\"\n", "n": "2"])
        let headerEnd = 8 + Int(original[0]) + Int(original[1]) << 8
        let structural = Array("{}[]\",:\\0123456789-. u".utf8)
        var accepted = 0
        var rejectedKinds: Set<SafetensorsError.Kind> = []
        for _ in 0..<20_000 {
            var file = original
            for _ in 0..<Int.random(in: 1...4, using: &generator) {
                // Mostly hit the header, where the parsing logic is.
                let index = Bool.random(using: &generator)
                    ? Int.random(in: 0..<headerEnd, using: &generator)
                    : Int.random(in: 0..<file.count, using: &generator)
                switch Int.random(in: 0..<4, using: &generator) {
                case 0: file[index] = UInt8.random(in: 0...255, using: &generator)
                case 1: file[index] = structural.randomElement(using: &generator)!
                case 2: file.remove(at: index)
                default: file.insert(structural.randomElement(using: &generator)!, at: index)
                }
                if file.isEmpty { break }
            }
            switch parse(file) {
            case .success(let parsed):
                accepted += 1
                let total = parsed.tensors.reduce(0) { $0 + $1.dataRange.count }
                XCTAssertEqual(parsed.dataStart + total, file.count)
                for tensor in parsed.tensors {
                    XCTAssertEqual(tensor.dataRange.count, tensor.elementCount * tensor.dtype.byteCount)
                }
            case .failure(let error):
                rejectedKinds.insert(error.kind)
                XCTAssertFalse(error.message.isEmpty)
            }
        }
        // The mutations must actually exercise both outcomes and several error paths.
        XCTAssertGreaterThan(accepted, 0)
        XCTAssertGreaterThanOrEqual(rejectedKinds.count, 5, "kinds seen: \(rejectedKinds)")
    }
}
