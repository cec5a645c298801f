import XCTest
import Safetensors

/// `SafetensorsHeaderCache` must answer exactly as a fresh `SafetensorsReader` would, file after file.
final class HeaderCacheTests: XCTestCase {
    private struct Answer: Equatable {
        var tensors: [TensorInfo] = []
        var metadata: [String: String] = [:]
        var dataStart = 0
        var data: [[UInt8]] = []
        var error: SafetensorsError?
    }

    private func answer(_ file: [UInt8], maxHeaderBytes: Int, cache: inout SafetensorsHeaderCache?) -> Answer {
        file.withUnsafeBytes { raw in
            do throws(SafetensorsError) {
                let reader = if cache != nil {
                    try cache!.reader(raw, maxHeaderBytes: maxHeaderBytes)
                } else {
                    try SafetensorsReader(raw, maxHeaderBytes: maxHeaderBytes)
                }
                return Answer(tensors: reader.tensors, metadata: reader.metadata, dataStart: reader.dataStart,
                              data: reader.tensors.map { Array(reader.bytes(of: $0)) })
            } catch {
                return Answer(error: error)
            }
        }
    }

    private func file(_ shape: [Int], fill: UInt8, metadata: [String: String] = ["origin": "test"]) -> [UInt8] {
        try! encodeSafetensors(
            [("latents", .F32, shape, [UInt8](repeating: fill, count: 4 * shape.reduce(1, *))),
             ("caption", .U8, [3], [fill, fill &+ 1, fill &+ 2])],
            metadata: metadata)
    }

    func testEveryFileReadsAsAFreshReaderReadsIt() {
        let good = file([2, 8], fill: 1)
        var truncated = file([2, 8], fill: 2)
        truncated.removeLast(4)
        var trailing = file([2, 8], fill: 3)
        trailing.append(0)
        var badJSON = file([2, 8], fill: 4)
        badJSON[9] = UInt8(ascii: "x")
        // Repeats over new data, the same header over a shorter or longer file, other shapes and
        // metadata, a broken header in between, and a header limit that changes.
        let sequence: [([UInt8], Int)] = [
            (good, 1 << 20), (file([2, 8], fill: 9), 1 << 20), (truncated, 1 << 20), (file([2, 8], fill: 5), 1 << 20),
            (trailing, 1 << 20), (file([3, 8], fill: 6), 1 << 20), (file([3, 8], fill: 7, metadata: ["origin": "other"]), 1 << 20),
            (badJSON, 1 << 20), (file([3, 8], fill: 8, metadata: ["origin": "other"]), 1 << 20),
            (file([3, 8], fill: 8, metadata: ["origin": "other"]), 16), (file([3, 8], fill: 10, metadata: ["origin": "other"]), 1 << 20),
        ]
        var cache: SafetensorsHeaderCache? = SafetensorsHeaderCache()
        var fresh: SafetensorsHeaderCache? = nil
        var rejected = 0
        for (index, (bytes, limit)) in sequence.enumerated() {
            let expected = answer(bytes, maxHeaderBytes: limit, cache: &fresh)
            XCTAssertEqual(answer(bytes, maxHeaderBytes: limit, cache: &cache), expected, "file \(index)")
            if expected.error != nil { rejected += 1 }
        }
        XCTAssertEqual(rejected, 4, "the truncated, trailing, bad-JSON and over-limit files are rejected")
    }

    func testARepeatedHeaderReadsTheNewFilesBytes() throws {
        var cache = SafetensorsHeaderCache()
        let first = file([2, 4], fill: 1), second = file([2, 4], fill: 200)
        XCTAssertEqual(Array(first[0..<16]), Array(second[0..<16]))
        for (bytes, fill) in [(first, UInt8(1)), (second, 200), (first, 1)] {
            try bytes.withUnsafeBytes { raw in
                let reader = try cache.reader(raw, maxHeaderBytes: 1 << 20)
                XCTAssertEqual(reader.buffer.baseAddress, raw.baseAddress)
                XCTAssertEqual(Array(reader.bytes(of: reader.tensor(named: "caption")!)), [fill, fill &+ 1, fill &+ 2])
            }
        }
    }
}
