import Foundation
import NoisedBenchmarks
import NoisedRuntime
import NoiseKernel
import Safetensors
import XCTest

final class PipelineBenchTests: XCTestCase {
    func testSendStampIsFoundWrittenAndReadInBothTemplates() throws {
        let messages = try BenchMessages(latentBytes: 4096, dtype: .bf16)
        for template in [messages.input, messages.relayOutput] {
            let bytes = UnsafeRawBufferPointer(template.bytes)
            XCTAssertEqual(SendStamp.offset(in: bytes), template.stampOffset)
            // Where a safetensors reader puts the stamp tensor's data, not just where the search finds it.
            let reader = try SafetensorsReader(bytes)
            let stamp = try XCTUnwrap(reader.tensor(named: SendStamp.tensorName))
            XCTAssertEqual(template.stampOffset, reader.dataStart + stamp.dataRange.lowerBound)
            XCTAssertEqual(stamp.dataRange.count, SendStamp.width)
            XCTAssertEqual(SendStamp.read(bytes, at: template.stampOffset), 0)
            SendStamp.write(18_446_744_073_709_551_615, to: template.bytes.baseAddress!, at: template.stampOffset)
            XCTAssertEqual(SendStamp.read(bytes, at: template.stampOffset), UInt64.max)
            SendStamp.write(1_234_567, to: template.bytes.baseAddress!, at: template.stampOffset)
            XCTAssertEqual(SendStamp.read(bytes, at: template.stampOffset), 1_234_567)
        }
        XCTAssertGreaterThan(messages.relayOutput.count, 2 * 4096)
        XCTAssertLessThan(messages.input.count, 4096 + 512)
        [UInt8](repeating: UInt8(ascii: "x"), count: 64).withUnsafeBytes { XCTAssertNil(SendStamp.offset(in: $0)) }
    }

    func testMessageSizesMustSplitIntoSamples() {
        XCTAssertThrowsError(try BenchMessages(latentBytes: 6, dtype: .f32)) { error in
            XCTAssertTrue("\(error)".contains("message size 6 bytes"), "\(error)")
        }
    }

    func testSizesParseAndFormat() throws {
        XCTAssertEqual(try PipelineBench.parseSize("256K"), 256 << 10)
        XCTAssertEqual(try PipelineBench.parseSize("4MiB"), 4 << 20)
        XCTAssertEqual(try PipelineBench.parseSize("1G"), 1 << 30)
        XCTAssertEqual(try PipelineBench.parseSize("4096"), 4096)
        XCTAssertThrowsError(try PipelineBench.parseSize("4X")) { XCTAssertTrue("\($0)".contains("'4X'")) }
        XCTAssertThrowsError(try PipelineBench.parseSize("0M"))
        XCTAssertEqual(PipelineBench.formatSize(128 << 20), "128 MiB")
        XCTAssertEqual(PipelineBench.formatSize(256 << 10), "256 KiB")
        XCTAssertEqual(PipelineBench.formatSize(1000), "1000 B")
    }

    func testProcFilesParse() {
        let stat = "4242 (noised (x) y) S 1 4242 4242 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 3 0 100 1000 500"
        XCTAssertEqual(ProcessStats.parseCPUSeconds(stat: stat, ticksPerSecond: 100), 3.0)
        XCTAssertNil(ProcessStats.parseCPUSeconds(stat: "4242 (noised) S 1", ticksPerSecond: 100))
        XCTAssertEqual(ProcessStats.parseResidentBytes(status: "Name:\tnoised\nVmRSS:\t   2048 kB\nThreads: 4\n"), 2048 * 1024)
        XCTAssertNil(ProcessStats.parseResidentBytes(status: "Name:\tnoised\n"))
        // This process is alive, so its own files parse.
        XCTAssertNotNil(ProcessStats.residentBytes(pid: getpid()))
        XCTAssertNotNil(ProcessStats.cpuSeconds(pid: getpid()))
    }

    func testPrometheusHistogramQuantilesAndDifferences() throws {
        let before = """
            # TYPE noised_end_to_end_seconds histogram
            noised_end_to_end_seconds_bucket{le="0.001"} 10
            noised_end_to_end_seconds_bucket{le="0.01"} 10
            noised_end_to_end_seconds_bucket{le="+Inf"} 10
            noised_end_to_end_seconds_count 10
            """
        let after = """
            noised_end_to_end_seconds_bucket{le="0.001"} 10
            noised_end_to_end_seconds_bucket{le="0.01"} 110
            noised_end_to_end_seconds_bucket{le="+Inf"} 110
            noised_kernel_seconds_bucket{le="0.001"} 4
            noised_kernel_seconds_bucket{le="+Inf"} 4
            """
        let later = try XCTUnwrap(PrometheusHistogram(named: "noised_end_to_end_seconds", in: after))
        let earlier = try XCTUnwrap(PrometheusHistogram(named: "noised_end_to_end_seconds", in: before))
        let between = later.subtracting(earlier)
        XCTAssertEqual(between.total, 100)
        // All 100 new observations lie in (0.001, 0.01]: the median interpolates to the middle.
        XCTAssertEqual(try XCTUnwrap(between.quantile(0.5)), 0.0055, accuracy: 1e-12)
        XCTAssertEqual(try XCTUnwrap(between.quantile(0.99)), 0.001 + 0.009 * 0.99, accuracy: 1e-12)
        XCTAssertEqual(try XCTUnwrap(later.quantile(0.05)), 0.00055, accuracy: 1e-12)
        XCTAssertNil(PrometheusHistogram(named: "noised_missing_seconds", in: after))
        XCTAssertNil(PrometheusHistogram(buckets: [(1, 0), (.infinity, 0)]).quantile(0.5))
        // Observations past the last finite bound report that bound.
        XCTAssertEqual(PrometheusHistogram(buckets: [(1, 0), (.infinity, 5)]).quantile(0.5), 1)
    }

    func testLatencySummaryIsNearestRank() throws {
        let summary = try XCTUnwrap(LatencySummary(samples: (1...100).map(Double.init).reversed()))
        XCTAssertEqual(summary.p50, 50)
        XCTAssertEqual(summary.p99, 99)
        XCTAssertEqual(summary.count, 100)
        XCTAssertEqual(LatencySummary(samples: [7])?.p99, 7)
        XCTAssertNil(LatencySummary(samples: []))
    }

    func testLastHalfGrowthComparesTheEndWithTheMiddle() {
        let samples: [(time: UInt64, bytes: Int)] = [(0, 100), (40, 300), (50, 400), (80, 450), (100, 460)]
        XCTAssertEqual(PipelineBench.lastHalfGrowth(samples, window: 0..<100), 60)
        XCTAssertEqual(PipelineBench.lastHalfGrowth([], window: 0..<100), 0)
    }

    func testThroughputUsesTheSpanOfArrivalsInsideTheWindow() {
        // Four arrivals 0.4 s apart inside a 2 s window (and one outside): 2.5 messages per second.
        let seconds: UInt64 = 1_000_000_000
        let times = [seconds / 2, seconds, seconds * 14 / 10, seconds * 18 / 10, seconds * 22 / 10, seconds * 31 / 10]
        let rate = PipelineBench.throughput(arrivalTimes: times, window: seconds..<(3 * seconds), latentBytes: 1_000_000)
        XCTAssertEqual(rate.messages, 4)
        XCTAssertEqual(rate.messagesPerSecond, 2.5, accuracy: 1e-9)
        XCTAssertEqual(rate.gigabytesPerSecond, 0.0025, accuracy: 1e-12)
        // Too few arrivals for a span: the count over the window.
        let sparse = PipelineBench.throughput(arrivalTimes: [seconds], window: seconds..<(3 * seconds), latentBytes: 1)
        XCTAssertEqual(sparse.messagesPerSecond, 0.5, accuracy: 1e-9)
    }

    func testBadOptionsAreRefusedByName() {
        var options = PipelineBench.Options.quick(daemonBinary: "/nonexistent/noised")
        XCTAssertThrowsError(try PipelineBench(options: options).run()) { XCTAssertTrue("\($0)".contains("/nonexistent/noised")) }
        options.daemonBinary = "/bin/sh"
        options.secondsPerCase = 0
        XCTAssertThrowsError(try PipelineBench(options: options).run()) { XCTAssertTrue("\($0)".contains("case 0.0 s")) }
        options.secondsPerCase = 1
        options.rounds = 0
        XCTAssertThrowsError(try PipelineBench(options: options).run()) { XCTAssertTrue("\($0)".contains("round, got 0")) }
    }

    func testRoundsCombineByMedian() {
        XCTAssertNil(median([]))
        XCTAssertEqual(median([3, 1, 2]), 2)
        XCTAssertEqual(median([4, 1, 3, 2]), 2.5)
        let rounds = [(1.0, 10.0, 5), (3.0, 30.0, 7), (2.0, 20.0, 6)].map {
            PipelineBench.Throughput(gigabytesPerSecond: $0.0, messagesPerSecond: $0.1, messages: $0.2)
        }
        XCTAssertEqual(PipelineBench.combine(rounds), PipelineBench.Throughput(gigabytesPerSecond: 2, messagesPerSecond: 20, messages: 18))
    }

    func testTablesHaveARowPerCase() {
        let throughput = PipelineBench.Throughput(gigabytesPerSecond: 1, messagesPerSecond: 2, messages: 3)
        let row = PipelineBench.Row(
            transport: .ipc, dtype: "f32", latentBytes: 4 << 20, noised: throughput, relay: throughput,
            roundRatios: [1.1, 0.9, 1.0], noisedIdleLatency: LatencySummary(p50: 0.001, p99: 0.002, count: 5), relayIdleLatency: nil,
            noisedLoadedLatency: nil, daemonArrivalToSend: nil, daemonKernel: nil,
            residentPeakBytes: 100 << 20, residentGrowthBytes: 0, residentBoundBytes: 200 << 20, cpuSecondsPerGigabyte: 0.5)
        let report = PipelineBench.Report(rows: [row, row], idle: PipelineBench.Idle(seconds: 2, cpuSeconds: 0.01))
        let lines = PipelineBench.renderTable(report).split(separator: "\n").map(String.init)
        XCTAssertEqual(lines.filter { $0.hasPrefix("ipc") && $0.contains("4 MiB") }.count, 4)
        XCTAssertTrue(lines.contains { $0.contains("1.000") && $0.hasSuffix("1.00          0.90-1.10") }, lines.joined(separator: "\n"))
        XCTAssertTrue(lines[0].contains("medians of 3 alternating rounds"), lines[0])
        XCTAssertTrue(lines.contains { $0.contains("1.00/2.00") && $0.contains("100/200") && $0.hasSuffix("0.500") })
        XCTAssertTrue(lines.contains { $0.hasPrefix("idle CPU: 0.500 %") })
    }
}
