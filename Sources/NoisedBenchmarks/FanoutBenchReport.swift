import Foundation

extension FanoutBench {
    /// One table (A and B's rates, times per batch and kernel times) and a verdict line per case.
    public static func renderTable(_ report: Report) -> String {
        func cells(_ values: [String], _ widths: [Int]) -> String {
            // A value wider than its column keeps every character and one space after it.
            zip(values, widths).map { $0.count >= $1 ? $0 + " " : $0.padding(toLength: $1, withPad: " ", startingAt: 0) }
                .joined().trimmingCharacters(in: .whitespaces)
        }
        func milliseconds(_ seconds: Double?) -> String { seconds.map { String(format: "%.2f", $0 * 1e3) } ?? "n/a" }
        func caseName(_ row: Row) -> String { "\(row.transport.rawValue) \(row.dtype) \(PipelineBench.formatSize(row.latentBytes))" }

        let widths = [10, 6, 9, 11, 11, 12, 12, 13, 13, 9, 13]
        let rounds = report.rows.map(\.roundExtras.count).max() ?? 0
        var lines = [
            "fan-out: one output (A) beside fanout: copy to \(copies) outputs (B), each consumer draining; medians of \(rounds) alternating round\(rounds == 1 ? "" : "s") each",
            cells(["transport", "dtype", "z_0/msg", "A batch/s", "B batch/s", "A ms/batch", "B ms/batch", "kernel ms A", "kernel ms B",
                   "B extra", "rounds' range"], widths),
        ]
        for row in report.rows {
            lines.append(cells([
                row.transport.rawValue, row.dtype, PipelineBench.formatSize(row.latentBytes),
                String(format: "%.1f", row.single.messagesPerSecond), String(format: "%.1f", row.copied.messagesPerSecond),
                milliseconds(row.singleSecondsPerBatch), milliseconds(row.copiedSecondsPerBatch),
                milliseconds(row.singleKernelSeconds), milliseconds(row.copiedKernelSeconds),
                String(format: "%.2f", row.extraPerBatch),
                String(format: "%.2f-%.2f", row.roundExtras.min() ?? 0, row.roundExtras.max() ?? 0),
            ], widths))
        }
        lines += [
            "B batch/s: input batches, each sent on every output; kernel ms: the daemon's mean noised_kernel_seconds per pass (B makes \(copies) per input batch); B extra: (B ms/batch - A ms/batch) / A ms/batch",
            "",
        ]
        for row in report.rows {
            let verdict = row.withinKernelAndSend ? "within kernel + send (<= 1)" : "more than kernel + send (> 1)"
            lines.append("\(caseName(row)): copy-\(copies) extra / batch: \(String(format: "%.2f", row.extraPerBatch)) of one output's, \(verdict)")
        }
        return lines.joined(separator: "\n") + "\n"
    }

    public static func renderJSON(_ report: Report) throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        return String(decoding: try encoder.encode(report), as: UTF8.self) + "\n"
    }
}
