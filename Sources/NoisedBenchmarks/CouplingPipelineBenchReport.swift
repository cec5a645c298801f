import Foundation

extension CouplingPipelineBench {
    /// One table (A and B's rates, times per batch, kernel times and B's extra) and a verdict line per case.
    public static func renderTable(_ report: Report) -> String {
        func cells(_ values: [String], _ widths: [Int]) -> String {
            // A value wider than its column keeps every character and one space after it.
            zip(values, widths).map { $0.count >= $1 ? $0 + " " : $0.padding(toLength: $1, withPad: " ", startingAt: 0) }
                .joined().trimmingCharacters(in: .whitespaces)
        }
        func milliseconds(_ seconds: Double?) -> String { seconds.map { String(format: "%.2f", $0 * 1e3) } ?? "n/a" }
        func cost(_ row: Row) -> String {
            guard let before = row.independentCost, let after = row.coupledCost else { return "n/a" }
            return String(format: "%.4f->%.4f", before, after)
        }
        func shape(_ row: Row) -> String { ([row.batch] + row.sampleShape).map(String.init).joined(separator: "x") }

        let widths = [10, 6, 14, 9, 11, 11, 12, 12, 13, 13, 12, 14, 19]
        let rounds = report.rows.map(\.roundExtraSeconds.count).max() ?? 0
        let methods = Set(report.rows.map(\.coupling.rawValue)).sorted().joined(separator: ", ")
        var lines = [
            "coupling: no coupling (A) beside schedule.coupling \(methods) (B), one consumer each; medians of \(rounds) alternating round\(rounds == 1 ? "" : "s") each",
            cells(["transport", "dtype", "batch", "z_0/msg", "A batch/s", "B batch/s", "A ms/batch", "B ms/batch", "kernel ms A",
                   "kernel ms B", "B extra ms", "extra/kernel", "cost own->coupled"], widths),
        ]
        for row in report.rows {
            lines.append(cells([
                row.transport.rawValue, row.dtype, shape(row), PipelineBench.formatSize(row.latentBytes),
                String(format: "%.1f", row.uncoupled.messagesPerSecond), String(format: "%.1f", row.coupled.messagesPerSecond),
                milliseconds(row.uncoupledSecondsPerBatch), milliseconds(row.coupledSecondsPerBatch),
                milliseconds(row.uncoupledKernelSeconds), milliseconds(row.coupledKernelSeconds),
                milliseconds(row.extraSecondsPerBatch), row.extraInKernels.map { String(format: "%.2f", $0) } ?? "n/a", cost(row),
            ], widths))
        }
        lines += [
            "kernel ms: the daemon's mean noised_kernel_seconds per batch (the coupling is not in it); B extra ms: B ms/batch - A ms/batch; "
                + "extra/kernel: B extra over kernel ms A; cost: B's noised_coupling_cost, mean squared distance per element of the last batch "
                + "with the samples' own noise -> with the coupled noise (synthetic z_0)",
            "",
        ]
        for row in report.rows {
            let verdict = switch row.withinKernel {
            case true?: "target met (<= 1 kernel per batch)"
            case false?: "target not met (> 1 kernel per batch)"
            case nil: "no kernel time to compare"
            }
            lines.append("\(row.transport.rawValue) \(row.dtype) B=\(row.batch) D=\(row.elementsPerSample): \(row.coupling.rawValue) "
                + "extra / batch: \(milliseconds(row.extraSecondsPerBatch)) ms = "
                + "\(row.extraInKernels.map { String(format: "%.2f", $0) } ?? "n/a") x the kernel's \(milliseconds(row.uncoupledKernelSeconds)) ms, "
                + verdict)
        }
        return lines.joined(separator: "\n") + "\n"
    }

    public static func renderJSON(_ report: Report) throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        return String(decoding: try encoder.encode(report), as: UTF8.self) + "\n"
    }
}
