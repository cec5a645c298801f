import Foundation
import NoisedBenchmarks
import NoisedRuntime
import NoiseKernel
import XCTest

final class KernelBenchTests: XCTestCase {
    func testSmallRunProducesARowPerCaseAndRenders() throws {
        var options = KernelBench.Options()
        options.shape = [2, 1000]
        options.workerCounts = [1, 2]
        options.secondsPerCase = 0.01
        options.implementations = [.best]
        options.posterior = false
        let rows = try KernelBench(options: options).run()
        XCTAssertEqual(rows.map(\.workers), [1, 1, 1, 2, 2, 2])
        XCTAssertEqual(Set(rows.map(\.implementation)), [NoiseKernel.Implementation.best.rawValue])
        XCTAssertEqual(rows.map(\.input), ["f32", "bf16", "f16", "f32", "bf16", "f16"])
        // All cases of one worker count take turns, so each ran as many repeats as the others.
        for workers in [1, 2] {
            XCTAssertEqual(Set(rows.filter { $0.workers == workers }.map(\.repeats)).count, 1, "\(rows.map(\.repeats))")
        }
        XCTAssertTrue(rows.allSatisfy { $0.elements == 2000 && $0.kernelGelemPerSecond > 0 && $0.memcpyGelemPerSecond > 0
            && $0.kernelBestGelemPerSecond >= $0.kernelGelemPerSecond })
        XCTAssertEqual(KernelBench.renderTable(rows).split(separator: "\n").count, 7)
        let decoded = try JSONDecoder().decode([KernelBench.Row].self, from: Data(KernelBench.renderJSON(rows).utf8))
        XCTAssertEqual(decoded, rows)
    }

    func testEveryImplementationGetsItsOwnRow() throws {
        var options = KernelBench.Options()
        options.shape = [2, 1000]
        options.workerCounts = [1]
        options.typePairs = [(.f32, .bf16)]
        options.secondsPerCase = 0.01
        options.posterior = false
        let available = NoiseKernel.Implementation.allCases.filter(\.isAvailable)
        XCTAssertEqual(options.implementations, available, "all that run here, by default")
        let rows = try KernelBench(options: options).run()
        XCTAssertEqual(rows.map(\.implementation), available.map(\.rawValue))
        // They take turns, one repeat each, beside one memcpy.
        XCTAssertEqual(Set(rows.map(\.repeats)).count, 1, "\(rows.map(\.repeats))")
        XCTAssertEqual(Set(rows.map(\.memcpyGelemPerSecond)).count, 1)
        XCTAssertEqual(KernelBench.renderTable(rows).split(separator: "\n").dropFirst().map { $0.split(separator: " ")[0] },
                       available.map { Substring($0.rawValue) })
    }

    func testPerFrameAndPosteriorRunBesidePerSampleAndPrintTheirRatios() throws {
        var options = KernelBench.Options()
        options.shape = [2, 3, 4, 50]  // frames on axis 2: 4 frames of 50 elements
        options.workerCounts = [1]
        options.typePairs = [(.f32, .f32)]
        options.implementations = [.best]
        options.secondsPerCase = 0.01
        let rows = try KernelBench(options: options).run()
        XCTAssertEqual(rows.map(\.variant), ["sample", "frame", "posterior"])
        let ratios = KernelBench.renderTable(rows).split(separator: "\n").filter { $0.contains(" / sample, ") }
        XCTAssertEqual(ratios.map { $0.prefix { $0 != " " } }, ["frame", "posterior"], "\(ratios)")
        options.frameAxis = nil
        options.posterior = false
        XCTAssertEqual(try KernelBench(options: options).run().map(\.variant), ["sample"])
    }

    func testBadOptionsAreRejectedWithTheirValue() {
        var options = KernelBench.Options()
        options.workerCounts = [0]
        XCTAssertThrowsError(try KernelBench(options: options).run()) { error in
            XCTAssertEqual(error as? KernelBenchError, .badWorkerCount(0))
            XCTAssertTrue("\(error)".contains("worker count 0"))
        }
        options = KernelBench.Options()
        options.shape = [2, 0]
        XCTAssertThrowsError(try KernelBench(options: options).run())
        #if arch(x86_64)
        options = KernelBench.Options()
        options.implementations = [.portable]
        XCTAssertThrowsError(try KernelBench(options: options).run()) { error in
            XCTAssertEqual(error as? KernelBenchError, .unavailableImplementation("portable"))
        }
        #endif
    }
}
