import Foundation

/// numpy's noising of the kernel bench's tensor, measured by scripts/bench-numpy.py in a Python
/// child process (one thread), so `noised bench` can print the kernel's ratio to it.
public struct NumpyComparison: Sendable {
    public let python: String
    public let script: String

    /// A comparison when `python` imports numpy and the script is found; otherwise why not.
    /// Without `script`, looks for scripts/bench-numpy.py in the working directory and above this
    /// executable (it lives in .build/<triple>/release inside the repository).
    public static func locate(python: String = "python3", script: String? = nil) -> Result<NumpyComparison, BenchError> {
        let candidates = script.map { [$0] } ?? defaultScriptPaths()
        guard let found = candidates.first(where: { FileManager.default.isReadableFile(atPath: $0) }) else {
            return .failure(BenchError("numpy comparison skipped: \(candidates.first ?? "scripts/bench-numpy.py") not found (--numpy-script)"))
        }
        guard let probe = try? ChildProcess.run("/usr/bin/env", [python, "-c", "import numpy"]), probe.status == 0 else {
            return .failure(BenchError("numpy comparison skipped: `\(python) -c \"import numpy\"` failed"))
        }
        return .success(NumpyComparison(python: python, script: found))
    }

    private static func defaultScriptPaths() -> [String] {
        var paths = [FileManager.default.currentDirectoryPath + "/scripts/bench-numpy.py"]
        if let executable = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe") {
            var directory = URL(fileURLWithPath: executable).deletingLastPathComponent()
            for _ in 0..<4 {
                directory = directory.deletingLastPathComponent()
                paths.append(directory.appendingPathComponent("scripts/bench-numpy.py").path)
            }
        }
        return paths
    }

    /// Gelem/s per dtype name ("f32", "bf16", "f16"); a dtype numpy cannot do (bf16 without
    /// ml_dtypes) is absent.
    public func run(shape: [Int], dtypes: [String], seconds: Double) throws -> [String: Double] {
        let arguments = [script, "--shape", shape.map(String.init).joined(separator: ","),
                         "--dtypes", dtypes.joined(separator: ","), "--seconds", String(seconds)]
        let result = try ChildProcess.run("/usr/bin/env", [python] + arguments)
        guard result.status == 0 else {
            throw BenchError("\(script) failed (status \(result.status)): \(result.error.trimmingCharacters(in: .whitespacesAndNewlines))")
        }
        do { return try JSONDecoder().decode([String: Double].self, from: Data(result.output.utf8)) } catch {
            throw BenchError("\(script) printed no JSON object of rates: \(result.output.prefix(200))")
        }
    }

}
