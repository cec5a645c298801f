import Foundation
import NoisedBenchmarks
import NoisedRuntime
import NoiseKernel
import XCTest

/// Runs the benches end to end against the built binary. Timing-free: they check that a run
/// completes and reports every case, not how fast anything was.
final class BenchSmokeTests: XCTestCase {
    /// NOISED_BIN, else the `noised` beside this test bundle (both live in .build/<triple>/<config>).
    private func noisedBinary() throws -> String {
        if let path = ProcessInfo.processInfo.environment["NOISED_BIN"] {
            guard FileManager.default.isExecutableFile(atPath: path) else {
                throw XCTSkip("NOISED_BIN=\(path) is not an executable file")
            }
            return path
        }
        let testBinary = try FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")
        var directory = URL(fileURLWithPath: testBinary).deletingLastPathComponent()
        if directory.lastPathComponent == "Linux" { // .../noisedPackageTests.xctest on some toolchains
            directory = directory.deletingLastPathComponent()
        }
        for candidate in [directory, directory.deletingLastPathComponent()] {
            let path = candidate.appendingPathComponent("noised").path
            if FileManager.default.isExecutableFile(atPath: path) { return path }
        }
        throw XCTSkip("no noised binary beside \(testBinary); build it (swift build -c release) or set NOISED_BIN")
    }

    private func run(_ binary: String, _ arguments: [String]) throws -> ChildProcess.Result {
        try ChildProcess.run(binary, arguments)
    }

    func testQuickPipelineBenchReportsEveryCaseAndTheIdleLine() throws {
        let binary = try noisedBinary()
        // Windows of half a millisecond: only the minimum arrivals per round can fill them.
        let result = try run(binary, ["bench", "pipeline", "--quick", "--rounds", "2", "--duration", "0.001", "--json"])
        XCTAssertEqual(result.status, 0, "stderr:\n\(result.error)")
        let report = try JSONDecoder().decode(PipelineBench.Report.self, from: Data(result.output.utf8))
        XCTAssertEqual(report.rows.map { "\($0.transport.rawValue) \($0.dtype)" }, ["ipc f32", "ipc bf16", "tcp f32", "tcp bf16"])
        for row in report.rows {
            XCTAssertEqual(row.latentBytes, 256 << 10)
            XCTAssertEqual(row.roundRatios.count, 2, "\(row)")
            // Both noised and the relay moved batches, and each round's window held at least the
            // quick run's 3 arrivals, so both rates are rates, not counts.
            XCTAssertGreaterThan(row.noised.gigabytesPerSecond, 0, "\(row)")
            XCTAssertGreaterThan(row.relay.gigabytesPerSecond, 0, "\(row)")
            XCTAssertGreaterThanOrEqual(row.noised.messages, 2 * 3, "\(row)")
            XCTAssertGreaterThanOrEqual(row.relay.messages, 2 * 3, "\(row)")
        }
        XCTAssertNotNil(report.idle)

        let lines = PipelineBench.renderTable(report).split(separator: "\n").map(String.init)
        for transport in ["ipc", "tcp"] {
            for dtype in ["f32", "bf16"] {
                let rows = lines.filter { $0.hasPrefix(transport) && $0.split(separator: " ").dropFirst().first.map(String.init) == dtype }
                // One throughput row and one latency/resources row per case.
                XCTAssertEqual(rows.count, 2, "\(transport) \(dtype) rows in:\n\(lines.joined(separator: "\n"))")
            }
        }
        XCTAssertTrue(lines.contains { $0.hasPrefix("idle CPU: ") }, result.output)
        XCTAssertTrue(lines.first?.contains("medians of 2 alternating rounds") ?? false, lines.first ?? "")
    }

    func testQuickFanoutBenchReportsOneOutputBesideTwoCopies() throws {
        let binary = try noisedBinary()
        let result = try run(binary, ["bench", "pipeline", "--fanout", "--quick", "--rounds", "2", "--duration", "0.001", "--json"])
        XCTAssertEqual(result.status, 0, "stderr:\n\(result.error)")
        let report = try JSONDecoder().decode(FanoutBench.Report.self, from: Data(result.output.utf8))
        XCTAssertEqual(report.rows.map { "\($0.transport.rawValue) \($0.dtype) \($0.latentBytes)" }, ["ipc f32 \(256 << 10)"])
        for row in report.rows {
            XCTAssertEqual(row.roundExtras.count, 2, "\(row)")
            // Case A's one consumer and both of case B's received batches in every round's window.
            XCTAssertGreaterThan(row.single.messagesPerSecond, 0, "\(row)")
            XCTAssertGreaterThanOrEqual(row.single.messages, 2 * 3, "\(row)")
            XCTAssertEqual(row.copiedPerOutput.count, 2, "\(row)")
            for output in row.copiedPerOutput {
                XCTAssertGreaterThan(output.messagesPerSecond, 0, "\(row)")
                XCTAssertGreaterThanOrEqual(output.messages, 2 * 3, "\(row)")
            }
            XCTAssertGreaterThan(row.copied.messagesPerSecond, 0, "\(row)")
            // Both daemons serve their kernel histogram (B's labelled by output).
            XCTAssertGreaterThan(try XCTUnwrap(row.singleKernelSeconds), 0, "\(row)")
            XCTAssertGreaterThan(try XCTUnwrap(row.copiedKernelSeconds), 0, "\(row)")
        }

        let lines = FanoutBench.renderTable(report).split(separator: "\n").map(String.init)
        XCTAssertEqual(lines.filter { $0.hasPrefix("ipc f32 256 KiB: copy-2 extra / batch: ") }.count, 1, lines.joined(separator: "\n"))
        XCTAssertEqual(lines.filter { $0.hasPrefix("ipc") && $0.contains("256 KiB") }.count, 2, lines.joined(separator: "\n"))
    }

    func testQuickCouplingBenchReportsNoCouplingBesideAssignment() throws {
        let binary = try noisedBinary()
        let result = try run(binary, ["bench", "pipeline", "--coupling", "assignment", "--quick", "--rounds", "2", "--duration", "0.001",
                                      "--batches", "4,8", "--json"])
        XCTAssertEqual(result.status, 0, "stderr:\n\(result.error)")
        let report = try JSONDecoder().decode(CouplingPipelineBench.Report.self, from: Data(result.output.utf8))
        XCTAssertEqual(report.rows.map { "\($0.transport.rawValue) \($0.dtype) \($0.batch)" }, ["ipc f32 4", "ipc f32 8"])
        for row in report.rows {
            XCTAssertEqual(row.coupling, .assignment)
            XCTAssertEqual(row.sampleShape, [4, 16, 16])
            XCTAssertEqual(row.latentBytes, row.batch * 1024 * 4)
            XCTAssertEqual(row.roundExtraSeconds.count, 2, "\(row)")
            XCTAssertGreaterThan(row.uncoupled.messagesPerSecond, 0, "\(row)")
            XCTAssertGreaterThan(row.coupled.messagesPerSecond, 0, "\(row)")
            XCTAssertGreaterThanOrEqual(row.uncoupled.messages, 2 * 3, "\(row)")
            XCTAssertGreaterThanOrEqual(row.coupled.messages, 2 * 3, "\(row)")
            XCTAssertGreaterThan(try XCTUnwrap(row.uncoupledKernelSeconds), 0, "\(row)")
            XCTAssertGreaterThan(try XCTUnwrap(row.coupledKernelSeconds), 0, "\(row)")
            // B ran the coupling: it serves both gauges, and the exact assignment never pairs the
            // batch worse than the samples' own streams (the identity is one of its permutations).
            let independent = try XCTUnwrap(row.independentCost, "\(row)"), coupled = try XCTUnwrap(row.coupledCost, "\(row)")
            XCTAssertGreaterThan(coupled, 0, "\(row)")
            XCTAssertLessThanOrEqual(coupled, independent * (1 + 1e-9), "\(row)")
        }

        let lines = CouplingPipelineBench.renderTable(report).split(separator: "\n").map(String.init)
        XCTAssertEqual(lines.filter { $0.hasPrefix("ipc f32 B=8 D=1024: assignment extra / batch: ") }.count, 1, lines.joined(separator: "\n"))
        XCTAssertEqual(lines.filter { $0.hasPrefix("ipc") && $0.contains("8x4x16x16") }.count, 1, lines.joined(separator: "\n"))

        let both = try run(binary, ["bench", "pipeline", "--coupling", "knn", "--fanout", "--quick"])
        XCTAssertNotEqual(both.status, 0)
        XCTAssertTrue(both.error.contains("--fanout and --coupling"), both.error)
    }

    func testKernelBenchPrintsNumpyBesideTheKernelWhenNumpyIsThere() throws {
        let binary = try noisedBinary()
        let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("scripts/bench-numpy.py").path
        guard case .success = NumpyComparison.locate(script: script) else {
            throw XCTSkip("python3 cannot import numpy, or \(script) is missing")
        }
        let kernel = NoiseKernel.Implementation.best.rawValue
        let prefix = kernel.padding(toLength: 12, withPad: " ", startingAt: 0)
        let result = try run(binary, ["bench", "--shape", "2,4096", "--workers", "1", "--dtypes", "f32:f32,bf16:f32", "--kernels", kernel,
                                      "--seconds", "0.05", "--numpy-script", script])
        XCTAssertEqual(result.status, 0, "stderr:\n\(result.error)")
        let lines = result.output.split(separator: "\n").map(String.init)
        XCTAssertTrue(lines.first?.contains("kernel/numpy per core") ?? false, result.output)
        // workers, kernel (median, best, per CPU-s), memcpy, ratio, numpy and its ratio; bf16 → f32 is not a
        // noising numpy does the same way.
        XCTAssertEqual(lines.first { $0.hasPrefix(prefix + "f32") }?.split(separator: " ").compactMap { Double($0) }.count, 8, result.output)
        XCTAssertTrue(lines.first { $0.hasPrefix(prefix + "bf16") }?.hasSuffix("n/a") ?? false, result.output)

        let skipped = try run(binary, ["bench", "--shape", "2,4096", "--workers", "1", "--dtypes", "f32:f32",
                                       "--seconds", "0.05", "--no-numpy"])
        XCTAssertEqual(skipped.status, 0, skipped.error)
        XCTAssertFalse(skipped.output.contains("numpy"), skipped.output)
    }
}
