import Foundation
import XCTest
import Safetensors

/// Cross-checks against the reference Python `safetensors` package when it is installed; skipped
/// otherwise so the suite never depends on it.
final class PythonCrossCheckTests: XCTestCase {
    private static let script = #"""
import sys, numpy as np
from safetensors.numpy import save, load
from safetensors import safe_open
ours, theirs = sys.argv[1], sys.argv[2]
with open(ours, "rb") as f:
    tensors = load(f.read())
with safe_open(ours, "np") as f:
    meta = f.metadata()
assert meta == {"origin": "swift", "quote": "a\"b\n\u00e9"}, meta
assert tensors["f32"].tolist() == [[1.5, -2.0], [0.25, 3.0]], tensors["f32"]
assert tensors["i64"].tolist() == [-1, 2**62], tensors["i64"]
assert tensors["u8"].tolist() == [7, 8, 9], tensors["u8"]
assert tensors["f16"].tolist() == [1.0], tensors["f16"]
assert tensors["flag"].tolist() == [True, False], tensors["flag"]
out = {"x": np.arange(6, dtype=np.float32).reshape(2, 3), "y": np.array([5, 6, 7], dtype=np.uint16),
       "z": np.array(3.5, dtype=np.float64)}
with open(theirs, "wb") as f:
    f.write(save(out, metadata={"origin": "python", "u": "\u4e2d"}))
"""#

    private func bytes<T>(_ values: [T]) -> [UInt8] { values.withUnsafeBytes { Array($0) } }

    func testInteroperatesWithPythonSafetensors() throws {
        guard run(["-c", "import safetensors.numpy"]) == 0 else {
            throw XCTSkip("Python safetensors is not installed")
        }
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent(UUID().uuidString)
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let ours = directory.appendingPathComponent("ours.safetensors")
        let theirs = directory.appendingPathComponent("theirs.safetensors")
        let file = try encodeSafetensors(
            [("f32", .F32, [2, 2], bytes([Float(1.5), -2, 0.25, 3])),
             ("i64", .I64, [2], bytes([Int64(-1), 1 << 62])),
             ("u8", .U8, [3], [7, 8, 9]),
             ("f16", .F16, [1], [0x00, 0x3C]),
             ("flag", .BOOL, [2], [1, 0])],
            metadata: ["origin": "swift", "quote": "a\"b\né"])
        try Data(file).write(to: ours)
        XCTAssertEqual(run(["-c", Self.script, ours.path, theirs.path]), 0, "Python rejected our file")

        let parsed = try parseOK(Array(try Data(contentsOf: theirs)))
        XCTAssertEqual(parsed.metadata, ["origin": "python", "u": "中"])
        let x = try XCTUnwrap(parsed.tensors.first { $0.name == "x" })
        XCTAssertEqual(x.dtype, .F32)
        XCTAssertEqual(x.shape, [2, 3])
        XCTAssertEqual(parsed.data["x"], bytes([Float(0), 1, 2, 3, 4, 5]))
        XCTAssertEqual(parsed.data["y"], bytes([UInt16(5), 6, 7]))
        XCTAssertEqual(parsed.tensors.first { $0.name == "z" }?.shape, [])
        XCTAssertEqual(parsed.data["z"], bytes([Double(3.5)]))
    }

    /// Runs the first `python3` on PATH.
    private func run(_ arguments: [String]) -> Int32 {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3"] + arguments
        do { try process.run() } catch { return -1 }
        process.waitUntilExit()
        return process.terminationStatus
    }
}
