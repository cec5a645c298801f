import Foundation
import NoisedBenchmarks
import XCTest

final class FanoutBenchTests: XCTestCase {
    private func rate(_ perSecond: Double, messages: Int = 10) -> PipelineBench.Throughput {
        PipelineBench.Throughput(gigabytesPerSecond: perSecond / 1000, messagesPerSecond: perSecond, messages: messages)
    }

    func testHistogramTotalsSumEveryOutputsSeriesAndNoOtherMetric() throws {
        let exposition = """
            # TYPE noised_kernel_seconds histogram
            noised_kernel_seconds_bucket{output="out0",le="0.001"} 3
            noised_kernel_seconds_sum{output="out0"} 0.5
            noised_kernel_seconds_count{output="out0"} 4
            noised_kernel_seconds_sum{output="out1"} 1.5
            noised_kernel_seconds_count{output="out1"} 6
            noised_kernel_seconds_total_count 1000
            noised_end_to_end_seconds_sum 9
            noised_end_to_end_seconds_count 9
            """
        let labelled = try XCTUnwrap(PrometheusHistogram.totals(named: "noised_kernel_seconds", in: exposition))
        XCTAssertEqual(labelled.sum, 2.0, accuracy: 1e-12)
        XCTAssertEqual(labelled.count, 10)
        let plain = try XCTUnwrap(PrometheusHistogram.totals(named: "noised_end_to_end_seconds", in: exposition))
        XCTAssertEqual(plain.sum, 9)
        XCTAssertEqual(plain.count, 9)
        XCTAssertNil(PrometheusHistogram.totals(named: "noised_missing_seconds", in: exposition))
    }

    func testCopiedInputRateIsTheConsumersMeanAndTheirFewerMessages() {
        let input = FanoutBench.inputRate([rate(100, messages: 30), rate(90, messages: 28)])
        XCTAssertEqual(input.messagesPerSecond, 95, accuracy: 1e-12)
        XCTAssertEqual(input.gigabytesPerSecond, 0.095, accuracy: 1e-12)
        XCTAssertEqual(input.messages, 28)
    }

    func testExtraIsTheSecondOutputsTimeInUnitsOfTheFirsts() {
        // One output at 100 batches/s is 10 ms a batch; two at 60/s are 16.7 ms: 0.67 extra.
        XCTAssertEqual(FanoutBench.extra(single: rate(100), copied: rate(60)), 100.0 / 60 - 1, accuracy: 1e-12)
        // Two whole pipelines one after the other: exactly one more output's time.
        XCTAssertEqual(FanoutBench.extra(single: rate(100), copied: rate(50)), 1, accuracy: 1e-12)
        XCTAssertEqual(FanoutBench.extra(single: rate(100), copied: rate(0)), 0)
    }

    func testTableHasARowAndAVerdictPerCase() {
        func row(_ size: Int, extras: [Double]) -> FanoutBench.Row {
            FanoutBench.Row(transport: .ipc, dtype: "f32", latentBytes: size, single: rate(200), copied: rate(125),
                            copiedPerOutput: [rate(125), rate(125)], roundExtras: extras,
                            singleKernelSeconds: 0.002, copiedKernelSeconds: nil)
        }
        let report = FanoutBench.Report(rows: [row(4 << 20, extras: [0.7, 0.5, 0.6]), row(32 << 20, extras: [1.2, 1.1, 1.3])])
        XCTAssertEqual(report.rows[0].extraPerBatch, 0.6, accuracy: 1e-12)
        XCTAssertTrue(report.rows[0].withinKernelAndSend)
        XCTAssertFalse(report.rows[1].withinKernelAndSend)
        XCTAssertEqual(report.rows[0].copiedSecondsPerBatch, 0.008, accuracy: 1e-12)
        let lines = FanoutBench.renderTable(report).split(separator: "\n").map(String.init)
        XCTAssertTrue(lines[0].contains("medians of 3 alternating rounds"), lines[0])
        XCTAssertTrue(lines.contains { $0.hasPrefix("ipc") && $0.contains("4 MiB") && $0.contains("200.0") && $0.contains("125.0")
            && $0.contains("5.00") && $0.contains("8.00") && $0.contains("2.00") && $0.contains("n/a") && $0.hasSuffix("0.60     0.50-0.70") },
                      lines.joined(separator: "\n"))
        XCTAssertTrue(lines.contains("ipc f32 4 MiB: copy-2 extra / batch: 0.60 of one output's, within kernel + send (<= 1)"),
                      lines.joined(separator: "\n"))
        XCTAssertTrue(lines.contains("ipc f32 32 MiB: copy-2 extra / batch: 1.20 of one output's, more than kernel + send (> 1)"),
                      lines.joined(separator: "\n"))
    }
}
