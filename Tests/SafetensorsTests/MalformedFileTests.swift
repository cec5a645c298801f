import XCTest
import Safetensors

final class MalformedFileTests: XCTestCase {
    /// A valid two-tensor file: header, then 8 + 2 bytes of data.
    private func smallFile() throws -> [UInt8] {
        try encodeSafetensors([("a", .F32, [2], [1, 2, 3, 4, 5, 6, 7, 8]), ("b", .U8, [2], [9, 10])],
                              metadata: ["k": "v"])
    }

    private func tensor(_ name: String, _ dtype: String = "U8", shape: String = "[4]", offsets: String) -> String {
        #""\#(name)":{"dtype":"\#(dtype)","shape":\#(shape),"data_offsets":\#(offsets)}"#
    }

    func testEveryPrefixIsRejectedAsTruncated() throws {
        let file = try smallFile()
        XCTAssertNoThrow(try parse(file).get())
        for length in 0..<file.count {
            assertRejects(Array(file[..<length]), .truncated)
        }
    }

    func testHeaderLengthBeyondBuffer() {
        var file = rawFile(header: "{}")
        file[0] = 200
        assertRejects(file, .truncated, mentioning: "200")
    }

    func testHeaderTooLarge() throws {
        let file = try smallFile()
        assertRejects(file, .headerTooLarge, maxHeaderBytes: 16)
        XCTAssertNoThrow(try parse(file, maxHeaderBytes: file.count - 8 - 10).get(), "limit equal to the header is fine")
        var huge = [UInt8](repeating: 0xFF, count: 8) + Array("{}".utf8)
        assertRejects(huge, .headerTooLarge)
        huge[7] = 0x7F
        assertRejects(huge, .headerTooLarge)
    }

    func testBadJSONIsInvalidHeader() {
        let cases: [(String, String)] = [
            ("", "end of header"),
            ("   ", "end of header"),
            ("{", "string key"),
            (#"{"a""#, "':'"),
            (#"{"a":}"#, "expected a value"),
            (#"{"a":1,}"#, "string key"),
            (#"{"a" 1}"#, "':'"),
            (#"{'a':1}"#, "string key"),
            ("{} x", "after the top-level value"),
            ("{}{}", "after the top-level value"),
            ("[]", "must be a JSON object"),
            (#""text""#, "must be a JSON object"),
            ("7", "must be a JSON object"),
            (#"{"a":"unterminated}"#, "unterminated string"),
            (#"{"a\x":1}"#, "invalid escape"),
            (#"{"\ud800":1}"#, "surrogate"),
            (#"{"\ud800\u0041":1}"#, "surrogate"),
            (#"{"\udc00":1}"#, "surrogate"),
            (#"{"\u12G4":1}"#, "hex digit"),
            (#"{"\u12"#, "truncated"),
            ("{\"a\tb\":1}", "control character"),
            (#"{"a":[01]}"#, "leading zeros"),
            (#"{"a":[1.5]}"#, "whole numbers"),
            (#"{"a":[1e3]}"#, "whole numbers"),
            (#"{"a":[-1]}"#, "negative"),
            (#"{"a":[true]}"#, "true, false and null"),
            (#"{"a":null}"#, "true, false and null"),
            (#"{"a":[18446744073709551616]}"#, "64 bits"),
            (#"{"a":[1 2]}"#, "','"),
            (String(repeating: "[", count: 40), "nesting"),
        ]
        for (header, fragment) in cases {
            assertRejects(rawFile(header: header), .invalidHeader, mentioning: fragment)
        }
    }

    func testInvalidUTF8IsInvalidHeader() {
        for bad: [UInt8] in [[0xFF], [0xC3], [0xED, 0xA0, 0x80], [0xC0, 0xAF]] {
            let header = Array(#"{"__metadata__":{"k":""#.utf8) + bad + Array(#""}}"#.utf8)
            assertRejects(rawFile(headerBytes: header), .invalidHeader, mentioning: "UTF-8")
        }
    }

    func testWrongTypesAreInvalidHeader() {
        let cases: [(String, String)] = [
            (#"{"a":[1]}"#, #"tensor "a" must be an object"#),
            (#"{"a":{"dtype":4,"shape":[],"data_offsets":[0,1]}}"#, "dtype must be a string"),
            (#"{"a":{"dtype":"U8","shape":"1","data_offsets":[0,1]}}"#, "shape must be an array"),
            (#"{"a":{"dtype":"U8","shape":["1"],"data_offsets":[0,1]}}"#, "shape must hold integers"),
            (#"{"a":{"dtype":"U8","shape":[1],"data_offsets":{}}}"#, "data_offsets must be an array"),
            (#"{"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1,2]}}"#, "2 integers"),
            (#"{"a":{"dtype":"U8","shape":[1],"data_offsets":[1]}}"#, "2 integers"),
            (#"{"a":{"dtype":"U8","shape":[1]}}"#, "missing data_offsets"),
            (#"{"a":{}}"#, "missing dtype, shape, data_offsets"),
            (#"{"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1],"extra":1}}"#, #"unexpected key "extra""#),
            (#"{"a":{"dtype":"U8","dtype":"U8","shape":[1],"data_offsets":[0,1]}}"#, "duplicate key"),
            (#"{"__metadata__":[]}"#, "must be an object"),
            (#"{"__metadata__":{"k":1}}"#, #"value for "k" must be a string"#),
            (#"{"__metadata__":{"k":"1","k":"2"}}"#, "duplicate key"),
            (#"{"a":{"dtype":"U8","shape":[9223372036854775808],"data_offsets":[0,1]}}"#, "too large"),
        ]
        for (header, fragment) in cases {
            assertRejects(rawFile(header: header, data: [0]), .invalidHeader, mentioning: fragment)
        }
    }

    func testUnknownDType() {
        for tag in ["F128", "f32", "", "FLOAT", "C64"] {
            assertRejects(rawFile(header: "{\(tensor("x", tag, offsets: "[0,4]"))}", data: [0, 0, 0, 0]),
                          .unknownDType, mentioning: #""x""#)
        }
    }

    func testOffsets() {
        let four: [UInt8] = [1, 2, 3, 4]
        // Reversed.
        assertRejects(rawFile(header: "{\(tensor("r", shape: "[0]", offsets: "[4,0]"))}", data: four),
                      .invalidOffsets, mentioning: #""r""#)
        // Starts beyond the data (a gap at the start).
        assertRejects(rawFile(header: "{\(tensor("far", offsets: "[100,104]"))}", data: four),
                      .invalidOffsets, mentioning: #""far""#)
        // Overlapping.
        assertRejects(rawFile(header: "{\(tensor("a", offsets: "[0,4]")),\(tensor("b", offsets: "[2,6]"))}",
                              data: four + four),
                      .invalidOffsets, mentioning: "overlaps")
        // Identical ranges.
        assertRejects(rawFile(header: "{\(tensor("a", offsets: "[0,4]")),\(tensor("b", offsets: "[0,4]"))}",
                              data: four + four),
                      .invalidOffsets, mentioning: "overlaps")
        // Gap between tensors.
        assertRejects(rawFile(header: "{\(tensor("a", offsets: "[0,4]")),\(tensor("b", offsets: "[5,9]"))}",
                              data: four + four + [0]),
                      .invalidOffsets, mentioning: "gap")
        // Trailing bytes after the last tensor.
        assertRejects(rawFile(header: "{\(tensor("a", offsets: "[0,4]"))}", data: four + [0]),
                      .invalidOffsets, mentioning: "trailing")
        assertRejects(rawFile(header: "{}", data: [0]), .invalidOffsets, mentioning: "trailing")
        // Last tensor running past the end of the buffer: the file was cut short.
        assertRejects(rawFile(header: "{\(tensor("a", offsets: "[0,4]")),\(tensor("b", offsets: "[4,8]"))}",
                              data: four + [0]),
                      .truncated, mentioning: #""b""#)
        // Order in the header does not matter, only the ranges; empty tensors may sit anywhere.
        let reordered = rawFile(
            header: "{\(tensor("b", offsets: "[4,8]")),\(tensor("e", shape: "[0]", offsets: "[4,4]")),\(tensor("a", offsets: "[0,4]"))}",
            data: four + [5, 6, 7, 8])
        XCTAssertEqual(try parse(reordered).get().tensors.map(\.name), ["a", "e", "b"])
    }

    func testShapeSizeMismatch() {
        assertRejects(rawFile(header: "{\(tensor("a", "F32", shape: "[3]", offsets: "[0,8]"))}", data: [UInt8](repeating: 0, count: 8)),
                      .shapeMismatch, mentioning: #""a""#)
        assertRejects(rawFile(header: "{\(tensor("a", "F32", shape: "[]", offsets: "[0,0]"))}"),
                      .shapeMismatch, mentioning: #""a""#)
        // Products that overflow Int must be caught, not wrap around to a matching size.
        assertRejects(rawFile(header: "{\(tensor("big", "U8", shape: "[4294967296,4294967296]", offsets: "[0,0]"))}"),
                      .shapeMismatch, mentioning: "overflow")
        assertRejects(rawFile(header: "{\(tensor("big", "F64", shape: "[2305843009213693952]", offsets: "[0,0]"))}"),
                      .shapeMismatch, mentioning: "overflow")
        assertRejects(rawFile(header: "{\(tensor("big", "U8", shape: "[9223372036854775807,2,0]", offsets: "[0,0]"))}"),
                      .shapeMismatch, mentioning: "overflow")
        // Negative dimensions never parse as numbers.
        assertRejects(rawFile(header: "{\(tensor("neg", "U8", shape: "[-4]", offsets: "[0,4]"))}", data: [0, 0, 0, 0]),
                      .invalidHeader, mentioning: "negative")
    }

    func testDuplicateNames() {
        assertRejects(rawFile(header: "{\(tensor("a", offsets: "[0,4]")),\(tensor("a", offsets: "[4,8]"))}",
                              data: [UInt8](repeating: 0, count: 8)),
                      .duplicateName, mentioning: #""a""#)
        assertRejects(rawFile(header: #"{"__metadata__":{},"__metadata__":{}}"#), .duplicateName)
    }

    func testDuplicateNamesInLargeHeaders() throws {
        // Large objects switch duplicate detection to a set; both paths must agree.
        let names = (0..<40).map { "tensor\($0)" }
        let entries = names.enumerated().map { index, name in tensor(name, offsets: "[\(index * 4),\(index * 4 + 4)]") }
        let data = [UInt8](repeating: 0, count: 41 * 4)
        for duplicateOf in [2, 20, 39] {
            let duplicate = tensor(names[duplicateOf], offsets: "[160,164]")
            assertRejects(rawFile(header: "{\((entries + [duplicate]).joined(separator: ","))}", data: data),
                          .duplicateName, mentioning: "\"\(names[duplicateOf])\"")
        }
        let unique = try parseOK(rawFile(header: "{\(entries.joined(separator: ","))}", data: Array(data[..<160])))
        XCTAssertEqual(unique.tensors.map(\.name), names)
    }
}
