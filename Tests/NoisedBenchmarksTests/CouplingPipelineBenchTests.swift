import Foundation
import NoisedBenchmarks
import XCTest

final class CouplingPipelineBenchTests: XCTestCase {
    private func rate(_ perSecond: Double, messages: Int = 10) -> PipelineBench.Throughput {
        PipelineBench.Throughput(gigabytesPerSecond: perSecond / 1000, messagesPerSecond: perSecond, messages: messages)
    }

    func testCouplingCostReadsEachPairingsGaugeAndNoOtherMetric() throws {
        let exposition = """
            # TYPE noised_coupling_cost gauge
            noised_coupling_cost{pairing="independent"} 2.5
            noised_coupling_cost{pairing="coupled"} 2.25
            noised_coupling_cost_total{pairing="coupled"} 99
            noised_kernel_seconds_sum{pairing="independent"} 7
            """
        let cost = try XCTUnwrap(DaemonMetrics.couplingCost(in: exposition))
        XCTAssertEqual(cost.independent, 2.5)
        XCTAssertEqual(cost.coupled, 2.25)
        // With the daemon's other labels, and over a fan-out's outputs: the mean of the series.
        let labelled = """
            noised_coupling_cost{output="out0",pairing="coupled"} 2
            noised_coupling_cost{output="out1",pairing="coupled"} 3
            noised_coupling_cost{output="out0",pairing="independent"} 4
            """
        XCTAssertEqual(try XCTUnwrap(DaemonMetrics.couplingCost(in: labelled)).coupled, 2.5)
        XCTAssertNil(DaemonMetrics.couplingCost(in: "noised_coupling_cost{pairing=\"independent\"} 2.5"))
        XCTAssertNil(DaemonMetrics.couplingCost(in: nil))
    }

    func testExtraIsTheDifferenceOfTimesPerBatch() {
        // 100 batches/s is 10 ms a batch, 40/s is 25 ms: 15 ms extra.
        XCTAssertEqual(CouplingPipelineBench.extraSeconds(uncoupled: rate(100), coupled: rate(40)), 0.015, accuracy: 1e-12)
        XCTAssertEqual(CouplingPipelineBench.extraSeconds(uncoupled: rate(100), coupled: rate(0)), 0)
        XCTAssertEqual(CouplingPipelineBench.extraSeconds(uncoupled: rate(0), coupled: rate(40)), 0)
    }

    func testTableHasARowAndAVerdictPerCase() {
        func row(_ batch: Int, extras: [Double], kernel: Double?) -> CouplingPipelineBench.Row {
            CouplingPipelineBench.Row(
                transport: .ipc, dtype: "f32", coupling: .assignment, batch: batch, sampleShape: [16, 64, 64],
                latentBytes: batch * 65_536 * 4, uncoupled: rate(50), coupled: rate(20), roundExtraSeconds: extras,
                uncoupledKernelSeconds: kernel, coupledKernelSeconds: 0.011, independentCost: 2.5, coupledCost: 2.4)
        }
        let report = CouplingPipelineBench.Report(rows: [
            row(64, extras: [0.004, 0.002, 0.003], kernel: 0.005),
            row(256, extras: [0.03, 0.02, 0.025], kernel: 0.01),
            row(16, extras: [0.001], kernel: nil),
        ])
        XCTAssertEqual(report.rows[0].extraSecondsPerBatch, 0.003, accuracy: 1e-12)
        XCTAssertEqual(try XCTUnwrap(report.rows[0].extraInKernels), 0.6, accuracy: 1e-12)
        XCTAssertEqual(report.rows[0].withinKernel, true)
        XCTAssertEqual(try XCTUnwrap(report.rows[1].extraInKernels), 2.5, accuracy: 1e-12)
        XCTAssertEqual(report.rows[1].withinKernel, false)
        XCTAssertNil(report.rows[2].withinKernel)
        XCTAssertEqual(report.rows[1].coupledSecondsPerBatch, 0.05, accuracy: 1e-12)
        let lines = CouplingPipelineBench.renderTable(report).split(separator: "\n").map(String.init)
        let all = lines.joined(separator: "\n")
        XCTAssertTrue(lines[0].contains("schedule.coupling assignment") && lines[0].contains("medians of 3 alternating rounds"), lines[0])
        XCTAssertTrue(lines.contains { $0.hasPrefix("ipc") && $0.contains("256x16x64x64") && $0.contains("64 MiB") && $0.contains("50.0")
            && $0.contains("20.00") && $0.contains("50.00") && $0.contains("10.00") && $0.contains("11.00")
            && $0.contains("25.00") && $0.contains("2.50") && $0.hasSuffix("2.5000->2.4000") }, all)
        XCTAssertTrue(lines.contains("ipc f32 B=64 D=65536: assignment extra / batch: 3.00 ms = 0.60 x the kernel's 5.00 ms, target met (<= 1 kernel per batch)"), all)
        XCTAssertTrue(lines.contains("ipc f32 B=256 D=65536: assignment extra / batch: 25.00 ms = 2.50 x the kernel's 10.00 ms, target not met (> 1 kernel per batch)"), all)
        XCTAssertTrue(lines.contains("ipc f32 B=16 D=65536: assignment extra / batch: 1.00 ms = n/a x the kernel's n/a ms, no kernel time to compare"), all)
        XCTAssertEqual(try JSONDecoder().decode(CouplingPipelineBench.Report.self,
                                                from: Data(CouplingPipelineBench.renderJSON(report).utf8)), report)
    }
}
