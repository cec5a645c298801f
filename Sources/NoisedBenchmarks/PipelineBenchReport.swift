import Foundation

extension PipelineBench {
    /// Two tables (throughput against the relay; latency, memory and CPU) and the idle line.
    public static func renderTable(_ report: Report) -> String {
        func cells(_ values: [String], _ widths: [Int]) -> String {
            // A value wider than its column keeps every character and one space after it.
            zip(values, widths).map { $0.count >= $1 ? $0 + " " : $0.padding(toLength: $1, withPad: " ", startingAt: 0) }
                .joined().trimmingCharacters(in: .whitespaces)
        }
        func milliseconds(_ latency: LatencySummary?) -> String {
            guard let latency else { return "n/a" }
            return String(format: "%.2f/%.2f", latency.p50 * 1e3, latency.p99 * 1e3)
        }
        func mebibytes(_ bytes: Int) -> String { String(Int((Double(bytes) / 1_048_576).rounded())) }
        func caseCells(_ row: Row) -> [String] { [row.transport.rawValue, row.dtype, formatSize(row.latentBytes)] }
        let caseWidths = [10, 6, 9]

        let throughputWidths = caseWidths + [13, 10, 12, 10, 14, 12]
        let rounds = report.rows.map(\.roundRatios.count).max() ?? 0
        var lines = ["throughput (GB/s of z_0, messages/s; medians of \(rounds) alternating round\(rounds == 1 ? "" : "s") each)", cells(
            ["transport", "dtype", "z_0/msg", "noised GB/s", "msg/s", "relay GB/s", "msg/s", "noised/relay", "rounds' range"],
            throughputWidths)]
        for row in report.rows {
            lines.append(cells(caseCells(row) + [
                String(format: "%.3f", row.noised.gigabytesPerSecond), String(format: "%.1f", row.noised.messagesPerSecond),
                String(format: "%.3f", row.relay.gigabytesPerSecond), String(format: "%.1f", row.relay.messagesPerSecond),
                String(format: "%.2f", row.noisedToRelay),
                String(format: "%.2f-%.2f", row.roundRatios.min() ?? 0, row.roundRatios.max() ?? 0),
            ], throughputWidths))
        }

        let detailWidths = caseWidths + [15, 15, 17, 17, 15, 20, 12, 9]
        lines += ["", "latency p50/p99 ms (idle: one batch at a time; loaded: saturated), daemon memory and CPU", cells(
            ["transport", "dtype", "z_0/msg", "noised idle", "relay idle", "noised loaded", "daemon arr→send", "kernel",
             "RSS peak/bound MiB", "growth MiB", "CPU s/GB"], detailWidths)]
        for row in report.rows {
            lines.append(cells(caseCells(row) + [
                milliseconds(row.noisedIdleLatency), milliseconds(row.relayIdleLatency), milliseconds(row.noisedLoadedLatency),
                milliseconds(row.daemonArrivalToSend), milliseconds(row.daemonKernel),
                "\(mebibytes(row.residentPeakBytes))/\(mebibytes(row.residentBoundBytes))",
                mebibytes(row.residentGrowthBytes),
                row.cpuSecondsPerGigabyte.map { String(format: "%.3f", $0) } ?? "n/a",
            ], detailWidths))
        }
        if report.rows.contains(where: { $0.daemonArrivalToSend != nil }) {
            lines.append("daemon arr→send and kernel: the daemon's own histograms over the idle-queue batches, interpolated within buckets 25-28 % wide (20 µs, 25 µs, 31.5 µs, 40 µs, ... 800 ms)")
        }
        if report.rows.contains(where: { $0.daemonArrivalToSend == nil }) {
            lines.append("daemon arr→send and kernel: n/a where the daemon's metrics endpoint serves no latency histograms; the end-to-end columns include both socket hops")
        }
        if let idle = report.idle {
            lines += ["", String(format: "idle CPU: %.3f %% of a core (%.3f s user+system over %.1f s with no input; target < 1 %%)",
                                 idle.fractionOfCore * 100, idle.cpuSeconds, idle.seconds)]
        }
        return lines.joined(separator: "\n") + "\n"
    }

    public static func renderJSON(_ report: Report) throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        return String(decoding: try encoder.encode(report), as: UTF8.self) + "\n"
    }
}
