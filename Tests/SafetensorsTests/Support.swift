import XCTest
import Safetensors
import NoisedTestSupport

/// What a successful parse yields, copied out so it outlives the buffer.
struct ParsedFile {
    var tensors: [TensorInfo]
    var metadata: [String: String]
    var dataStart: Int
    var data: [String: [UInt8]]
}

func parse(_ file: [UInt8], maxHeaderBytes: Int = 100_000_000) -> Result<ParsedFile, SafetensorsError> {
    file.withUnsafeBytes { raw in
        do throws(SafetensorsError) {
            let reader = try SafetensorsReader(raw, maxHeaderBytes: maxHeaderBytes)
            var data: [String: [UInt8]] = [:]
            for tensor in reader.tensors { data[tensor.name] = Array(reader.bytes(of: tensor)) }
            return .success(ParsedFile(
                tensors: reader.tensors, metadata: reader.metadata, dataStart: reader.dataStart, data: data))
        } catch {
            return .failure(error)
        }
    }
}

func parseOK(_ file: [UInt8], file path: StaticString = #filePath, line: UInt = #line) throws -> ParsedFile {
    switch parse(file) {
    case .success(let parsed): return parsed
    case .failure(let error):
        XCTFail("unexpected rejection: \(error)", file: path, line: line)
        throw error
    }
}

/// Asserts that `file` is rejected with `kind` and that the message mentions `mentioning` (if given).
func assertRejects(
    _ file: [UInt8], _ kind: SafetensorsError.Kind, mentioning: String? = nil, maxHeaderBytes: Int = 100_000_000,
    file path: StaticString = #filePath, line: UInt = #line
) {
    switch parse(file, maxHeaderBytes: maxHeaderBytes) {
    case .success:
        XCTFail("accepted a file that should be rejected as \(kind)", file: path, line: line)
    case .failure(let error):
        XCTAssertEqual(error.kind, kind, "message: \(error.message)", file: path, line: line)
        if let mentioning {
            XCTAssertTrue(error.message.contains(mentioning), "\"\(error.message)\" does not mention \(mentioning)",
                          file: path, line: line)
        }
    }
}

/// A file with a hand-written header (not padded) followed by `data`.
func rawFile(header: String, data: [UInt8] = []) -> [UInt8] {
    rawFile(headerBytes: Array(header.utf8), data: data)
}

func rawFile(headerBytes: [UInt8], data: [UInt8] = []) -> [UInt8] {
    var file: [UInt8] = []
    withUnsafeBytes(of: UInt64(headerBytes.count).littleEndian) { file.append(contentsOf: $0) }
    return file + headerBytes + data
}

func randomBytes(_ count: Int, using generator: inout SplitMix64) -> [UInt8] {
    (0..<count).map { _ in UInt8.random(in: 0...255, using: &generator) }
}
