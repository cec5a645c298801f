import XCTest
import Safetensors
import NoisedTestSupport

final class RoundTripTests: XCTestCase {
    func testEveryDTypeRoundTrips() throws {
        var generator = SplitMix64(seed: 1)
        let tensors = DType.allCases.enumerated().map { index, dtype in
            let shape = [2, index + 1]
            return (name: "t_\(dtype.rawValue)", dtype: dtype, shape: shape,
                    data: randomBytes(2 * (index + 1) * dtype.byteCount, using: &generator))
        }
        let parsed = try parseOK(try encodeSafetensors(tensors))
        XCTAssertEqual(parsed.tensors.map(\.name), tensors.map(\.name), "data order is entry order")
        for tensor in tensors {
            let info = try XCTUnwrap(parsed.tensors.first { $0.name == tensor.name })
            XCTAssertEqual(info.dtype, tensor.dtype)
            XCTAssertEqual(info.shape, tensor.shape)
            XCTAssertEqual(info.elementCount, tensor.shape.reduce(1, *))
            XCTAssertEqual(parsed.data[tensor.name], tensor.data)
        }
        XCTAssertEqual(parsed.metadata, [:])
    }

    func testScalarAndEmptyShapes() throws {
        let tensors: [(name: String, dtype: DType, shape: [Int], data: [UInt8])] = [
            ("scalar", .F64, [], [1, 2, 3, 4, 5, 6, 7, 8]),
            ("empty", .F32, [0], []),
            ("empty2d", .BF16, [3, 0], []),
            ("after", .U8, [3], [9, 8, 7]),
            ("empty_last", .I16, [0, 5], []),
        ]
        let parsed = try parseOK(try encodeSafetensors(tensors))
        XCTAssertEqual(Set(parsed.tensors.map(\.name)), Set(tensors.map(\.name)))
        let scalar = try XCTUnwrap(parsed.tensors.first { $0.name == "scalar" })
        XCTAssertEqual(scalar.shape, [])
        XCTAssertEqual(scalar.elementCount, 1)
        XCTAssertEqual(parsed.data["scalar"], [1, 2, 3, 4, 5, 6, 7, 8])
        XCTAssertEqual(parsed.data["empty2d"], [])
        XCTAssertEqual(parsed.data["after"], [9, 8, 7])
    }

    func testFileWithNoTensors() throws {
        let parsed = try parseOK(try encodeSafetensors([], metadata: ["k": "v"]))
        XCTAssertEqual(parsed.tensors, [])
        XCTAssertEqual(parsed.metadata, ["k": "v"])
        XCTAssertEqual(try parseOK(rawFile(header: "{}")).tensors, [])
    }

    func testMetadataWithEscapesAndUnicode() throws {
        let metadata = [
            "quote\"": "back\\slash",
            "lines": "a\nb\r\nc\td",
            "controls": "\u{00}\u{01}\u{1F}\u{7F}",
            "unicode é": "中文 😀 \u{10FFFF}",
            "slash/": "",
        ]
        let parsed = try parseOK(try encodeSafetensors([("x", .U8, [1], [42])], metadata: metadata))
        XCTAssertEqual(parsed.metadata, metadata)
    }

    func testReaderDecodesEveryEscapeForm() throws {
        let header = #"{"a\u00e9\ud83d\ude00\n\"\/\\\b\f\r\t\u0041":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},"#
            + #""__metadata__":{"k":"\uD834\uDD1E"}}"#
        let parsed = try parseOK(rawFile(header: header, data: [7]))
        XCTAssertEqual(parsed.tensors.map(\.name), ["aé😀\n\"/\\\u{08}\u{0C}\r\tA"])
        XCTAssertEqual(parsed.metadata, ["k": "𝄞"])
    }

    func testMetadataKeysAreWrittenSortedAndOutputIsDeterministic() throws {
        var first: [String: String] = [:]
        var second: [String: String] = [:]
        let keys = (0..<40).map { "key\($0)" }
        for key in keys { first[key] = "v" + key }
        for key in keys.reversed() { second[key] = "v" + key }
        let a = try encodeSafetensors([("x", .F32, [1], [0, 0, 128, 63])], metadata: first)
        let b = try encodeSafetensors([("x", .F32, [1], [0, 0, 128, 63])], metadata: second)
        XCTAssertEqual(a, b)
        let header = String(decoding: a[8...], as: UTF8.self)
        let positions = keys.sorted().map { header.range(of: "\"\($0)\"")!.lowerBound }
        XCTAssertEqual(positions, positions.sorted())
    }

    func testHeaderIsPaddedWithSpacesToEightByteDataStart() throws {
        for nameLength in 1...24 {
            let name = String(repeating: "n", count: nameLength)
            let file = try encodeSafetensors([(name, .U8, [3], [1, 2, 3])])
            let headerLength = file.withUnsafeBytes { Int(UInt64(littleEndian: $0.loadUnaligned(as: UInt64.self))) }
            XCTAssertEqual((8 + headerLength) % 8, 0, "name length \(nameLength)")
            XCTAssertEqual(file.count, 8 + headerLength + 3)
            let json = file[8..<(8 + headerLength)]
            let trimmed = json.reversed().drop { $0 == UInt8(ascii: " ") }
            XCTAssertEqual(trimmed.first, UInt8(ascii: "}"), "only spaces follow the JSON object")
            XCTAssertLessThan(json.count - trimmed.count, 8, "at most 7 padding spaces")
            XCTAssertEqual(try parseOK(file).dataStart, 8 + headerLength)
        }
    }

    func testLayoutRangesMatchTheReader() throws {
        let entries = [
            SafetensorsLayout.Entry(name: "a", dtype: .F64, shape: [3]),
            SafetensorsLayout.Entry(name: "b", dtype: .F16, shape: [5, 1]),
            SafetensorsLayout.Entry(name: "c", dtype: .BOOL, shape: [0]),
            SafetensorsLayout.Entry(name: "d", dtype: .I32, shape: []),
        ]
        let layout = try SafetensorsLayout(entries: entries, metadata: ["m": "1"])
        XCTAssertEqual(layout.dataStart % 8, 0)
        XCTAssertEqual(layout.ranges.first?.lowerBound, layout.dataStart)
        XCTAssertEqual(layout.ranges.last?.upperBound, layout.byteCount)
        XCTAssertEqual(layout.range(of: "b"), layout.ranges[1])
        XCTAssertNil(layout.range(of: "missing"))
        var file = layout.header + [UInt8](repeating: 0, count: layout.byteCount - layout.header.count)
        for (index, range) in layout.ranges.enumerated() {
            for offset in range { file[offset] = UInt8(index + 1) }
        }
        let parsed = try parseOK(file)
        for (index, entry) in entries.enumerated() {
            let info = try XCTUnwrap(parsed.tensors.first { $0.name == entry.name })
            XCTAssertEqual(info.dataRange.lowerBound + parsed.dataStart, layout.ranges[index].lowerBound)
            XCTAssertEqual(parsed.data[entry.name], [UInt8](repeating: UInt8(index + 1), count: layout.ranges[index].count))
        }
    }

    func testReplacingMetadataEqualsALayoutMadeWithIt() throws {
        let entries = [
            SafetensorsLayout.Entry(name: "a", dtype: .F64, shape: [3]),
            SafetensorsLayout.Entry(name: "b", dtype: .F16, shape: [5, 1]),
        ]
        // Metadata of every length mod 8, none at all, and values that need escaping.
        let metadatas: [[String: String]] = [[:], ["k": "v"], ["noised.seq": "9", "noised.step": "1"]]
            + (0..<9).map { ["noised.seq": String(repeating: "7", count: $0 + 1), "z": "\"q\"\n"] }
        for entriesUsed in [entries, []] {
            var previous = try SafetensorsLayout(entries: entriesUsed, metadata: ["first": "1"])
            for metadata in metadatas + metadatas.reversed() {
                let replaced = try previous.replacingMetadata(metadata)
                let made = try SafetensorsLayout(entries: entriesUsed, metadata: metadata)
                XCTAssertEqual(replaced.header, made.header, "\(metadata)")
                XCTAssertEqual(replaced.ranges, made.ranges, "\(metadata)")
                XCTAssertEqual(replaced.byteCount, made.byteCount, "\(metadata)")
                XCTAssertEqual(replaced.range(of: "b"), made.range(of: "b"))
                previous = replaced
            }
        }
    }

    func testIntegersAreWrittenInDecimal() {
        for value in [0, 7, 9, 10, 99, 100, 12_345, 999_999_999_999, 1_000_000_000_000_000_000, Int.max] {
            var out: [UInt8] = [UInt8(ascii: "x")]
            appendJSONInteger(value, to: &out)
            XCTAssertEqual(String(decoding: out, as: UTF8.self), "x\(value)")
        }
    }

    func testLayoutRejectsBadEntries() {
        func layoutError(_ entries: [SafetensorsLayout.Entry]) -> SafetensorsError.Kind? {
            do { _ = try SafetensorsLayout(entries: entries, metadata: [:]); return nil } catch { return error.kind }
        }
        XCTAssertEqual(layoutError([.init(name: "a", dtype: .U8, shape: [1]), .init(name: "a", dtype: .U8, shape: [1])]),
                       .duplicateName)
        XCTAssertEqual(layoutError([.init(name: "__metadata__", dtype: .U8, shape: [1])]), .duplicateName)
        XCTAssertEqual(layoutError([.init(name: "a", dtype: .U8, shape: [-1])]), .shapeMismatch)
        XCTAssertEqual(layoutError([.init(name: "a", dtype: .F64, shape: [1 << 31, 1 << 31])]), .shapeMismatch)
        XCTAssertEqual(layoutError([.init(name: "a", dtype: .U8, shape: [Int.max]),
                                    .init(name: "b", dtype: .U8, shape: [Int.max])]), .shapeMismatch)
        XCTAssertThrowsError(try encodeSafetensors([("a", .F32, [2], [1, 2, 3])])) { error in
            XCTAssertEqual((error as? SafetensorsError)?.kind, .shapeMismatch)
            XCTAssertTrue("\(error)".contains("\"a\""))
        }
    }
}
