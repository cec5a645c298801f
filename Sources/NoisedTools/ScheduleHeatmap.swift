import Foundation
import NoisedDaemon
import NoisedRuntime
import Schedule

/// The SVG picture of a curriculum: sigma density over training step × sigma as a heatmap
/// (sigma 0 at the bottom), the median as a line, keyframes as labelled vertical lines.
extension ScheduleReport {
    private enum Layout {
        static let width = 820.0, height = 460.0
        static let left = 70.0, top = 58.0, plotWidth = 600.0, plotHeight = 320.0
        static let columns = 120, rows = 80
        static let colourLevels = 48
    }

    /// Viridis, sampled at nine points.
    private static let palette: [(Double, Double, Double)] = [
        (68, 1, 84), (71, 45, 123), (59, 82, 139), (44, 114, 142), (33, 145, 140),
        (39, 173, 129), (92, 200, 99), (170, 220, 50), (253, 231, 37),
    ]

    private static func colour(_ level: Double) -> String {
        let t = min(max(level, 0), 1) * Double(palette.count - 1)
        let i = min(Int(t), palette.count - 2), f = t - Double(i)
        let (a, b) = (palette[i], palette[i + 1])
        func channel(_ x: Double, _ y: Double) -> Int { Int((x + f * (y - x)).rounded()) }
        return String(format: "#%02x%02x%02x", channel(a.0, b.0), channel(a.1, b.1), channel(a.2, b.2))
    }

    /// Columns span the report's steps from the first to the last.
    public func svg(title: String) -> String {
        let first = steps.first ?? 0, last = max(steps.last ?? 0, first)
        let span = Double(last - first)
        let columnSteps = (0..<Layout.columns).map { column -> Int64 in
            first + Int64((span * (Double(column) + 0.5) / Double(Layout.columns)).rounded())
        }
        let summaries = columnSteps.map { summary(atStep: $0, bins: Layout.rows) }
        // The colour scale tops out at the 98th percentile of the cells, on a square-root scale:
        // a point mass or an unbounded density at an end would otherwise leave the rest dark.
        let cells = summaries.flatMap(\.densities).sorted()
        let cap = max(cells[min(cells.count - 1, Int(Double(cells.count) * 0.98))], 1e-12)
        var svg = [
            #"<?xml version="1.0" encoding="UTF-8"?>"#,
            #"<svg xmlns="http://www.w3.org/2000/svg" width="\#(Int(Layout.width))" height="\#(Int(Layout.height))" viewBox="0 0 \#(Int(Layout.width)) \#(Int(Layout.height))" font-family="sans-serif" font-size="12">"#,
            #"<rect width="100%" height="100%" fill="white"/>"#,
            #"<text x="\#(Layout.left + Layout.plotWidth / 2)" y="24" text-anchor="middle" font-size="16">\#(escaped(title))</text>"#,
        ]
        svg.append(contentsOf: heatmapCells(summaries, cap: cap))
        svg.append(medianLine(columnSteps))
        svg.append(contentsOf: keyframeMarkers(first: first, span: span))
        svg.append(contentsOf: axes(first: first, last: last))
        svg.append(contentsOf: colourBar(cap: cap))
        svg.append("</svg>")
        return svg.joined(separator: "\n") + "\n"
    }

    /// The cells in cell units (one unit per column and per sigma bin, bin 0 at the bottom), as one
    /// path per colour whose subpaths are runs of equal colour down a column, merged across
    /// identical neighbouring columns: a fraction of the size of one rect per cell.
    private func heatmapCells(_ summaries: [Summary], cap: Double) -> [String] {
        let levels = summaries.map { summary in
            summary.densities.map { Int((min($0 / cap, 1).squareRoot() * Double(Layout.colourLevels - 1)).rounded()) }
        }
        var runs = [String](repeating: "", count: Layout.colourLevels)
        var column = 0
        while column < levels.count {
            var end = column + 1
            while end < levels.count, levels[end] == levels[column] { end += 1 }
            var row = 0
            while row < Layout.rows {
                var top = row + 1
                while top < Layout.rows, levels[column][top] == levels[column][row] { top += 1 }
                runs[levels[column][row]] += "M\(column) \(Layout.rows - top)h\(end - column)v\(top - row)h-\(end - column)z"
                row = top
            }
            column = end
        }
        let scale = String(format: "translate(%.1f %.1f) scale(%.4f %.4f)", Layout.left, Layout.top,
                           Layout.plotWidth / Double(Layout.columns), Layout.plotHeight / Double(Layout.rows))
        var parts = [#"<g class="heatmap" transform="\#(scale)" shape-rendering="crispEdges">"#]
        for (level, path) in runs.enumerated() where !path.isEmpty {
            parts.append(#"<path fill="\#(Self.colour(Double(level) / Double(Layout.colourLevels - 1)))" d="\#(path)"/>"#)
        }
        parts.append("</g>")
        return parts
    }

    private func medianLine(_ columnSteps: [Int64]) -> String {
        let cellWidth = Layout.plotWidth / Double(Layout.columns)
        let points = columnSteps.enumerated().map { column, step in
            String(format: "%.1f,%.1f", Layout.left + (Double(column) + 0.5) * cellWidth,
                   Layout.top + Layout.plotHeight * (1 - distribution(atStep: step).quantile(0.5)))
        }
        return #"<polyline class="median" points="\#(points.joined(separator: " "))" fill="none" stroke="white" stroke-width="1.5" stroke-dasharray="5 3"/>"#
    }

    private func keyframeMarkers(first: Int64, span: Double) -> [String] {
        var marks: [String] = []
        for (index, keyframe) in schedule.keyframes.enumerated() where keyframe.atStep >= first {
            let fraction = span > 0 ? Double(keyframe.atStep - first) / span : 0
            guard fraction <= 1 else { continue }
            let x = Layout.left + fraction * Layout.plotWidth
            let shift = keyframe.shift.map { shift -> String in
                switch shift {
                case let .fixed(s): ", shift \(ScheduleReport.format(s, digits: 2))"
                case .sequenceLength: ", shift auto"
                }
            } ?? ""
            marks.append(String(format: #"<line class="keyframe" x1="%.2f" y1="%.1f" x2="%.2f" y2="%.1f" stroke="white" stroke-width="1.5"/>"#,
                                x, Layout.top, x, Layout.top + Layout.plotHeight))
            // Labels alternate between two lines so that neighbouring keyframes stay legible, and
            // hang inwards at the plot's edges.
            let y = Layout.top - 8 - Double(index % 2) * 14
            let anchor = fraction < 0.15 ? "start" : fraction > 0.85 ? "end" : "middle"
            marks.append(String(format: #"<text class="keyframe-label" x="%.2f" y="%.1f" text-anchor=""#, x, y) + anchor + #"" font-size="11">"#
                + escaped("k\(index) @\(keyframe.atStep): \(keyframe.distribution.name)\(shift)") + "</text>")
        }
        return marks
    }

    private func axes(first: Int64, last: Int64) -> [String] {
        let bottom = Layout.top + Layout.plotHeight
        var lines = [
            String(format: #"<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="none" stroke="black"/>"#,
                   Layout.left, Layout.top, Layout.plotWidth, Layout.plotHeight),
            #"<text x="\#(Layout.left + Layout.plotWidth / 2)" y="\#(bottom + 40)" text-anchor="middle">training step</text>"#,
            #"<text x="18" y="\#(Layout.top + Layout.plotHeight / 2)" text-anchor="middle" transform="rotate(-90 18 \#(Layout.top + Layout.plotHeight / 2))">σ (0 = data, 1 = noise)</text>"#,
        ]
        for sigma in [0.0, 0.25, 0.5, 0.75, 1.0] {
            let y = bottom - sigma * Layout.plotHeight
            lines.append(String(format: #"<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="black"/>"#, Layout.left - 5, y, Layout.left, y))
            lines.append(String(format: #"<text class="tick" x="%.1f" y="%.1f" text-anchor="end">%.2f</text>"#, Layout.left - 8, y + 4, sigma))
        }
        for step in Self.ticks(first: first, last: last) {
            let x = last > first ? Layout.left + Double(step - first) / Double(last - first) * Layout.plotWidth : Layout.left
            lines.append(String(format: #"<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="black"/>"#, x, bottom, x, bottom + 5))
            lines.append(String(format: #"<text class="tick" x="%.1f" y="%.1f" text-anchor="middle">"#, x, bottom + 19) + "\(step)</text>")
        }
        return lines
    }

    /// Round step ticks (1, 2 or 5 × 10^k apart), about six of them.
    static func ticks(first: Int64, last: Int64) -> [Int64] {
        guard last > first else { return [first] }
        let rough = Double(last - first) / 6
        let magnitude = pow(10, floor(log10(rough)))
        let spacing = Int64([1.0, 2, 5, 10].map { $0 * magnitude }.first { $0 >= rough } ?? 10 * magnitude)
        let start = (first + spacing - 1) / spacing * spacing
        return Array(stride(from: start, through: last, by: Int(max(spacing, 1))))
    }

    private func colourBar(cap: Double) -> [String] {
        let x = Layout.left + Layout.plotWidth + 30, width = 16.0
        var parts = [#"<defs><linearGradient id="scale" x1="0" y1="1" x2="0" y2="0">"#]
        for stop in 0..<Self.palette.count {
            let level = Double(stop) / Double(Self.palette.count - 1)
            parts.append(#"<stop offset="\#(level)" stop-color="\#(Self.colour(level))"/>"#)
        }
        parts.append("</linearGradient></defs>")
        parts.append(String(format: #"<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="url(#scale)" stroke="black"/>"#,
                            x, Layout.top, width, Layout.plotHeight))
        parts.append(String(format: #"<text x="%.1f" y="%.1f">≥ %.2f</text>"#, x + width + 4, Layout.top + 10, cap))
        parts.append(String(format: #"<text x="%.1f" y="%.1f">%.2f</text>"#, x + width + 4, Layout.top + Layout.plotHeight / 2 + 4, cap / 4))
        parts.append(String(format: #"<text x="%.1f" y="%.1f">0</text>"#, x + width + 4, Layout.top + Layout.plotHeight))
        parts.append(String(format: #"<text x="%.1f" y="%.1f" text-anchor="middle" transform="rotate(-90 %.1f %.1f)">density of σ (square-root scale)</text>"#,
                            x + width + 48, Layout.top + Layout.plotHeight / 2, x + width + 48, Layout.top + Layout.plotHeight / 2))
        parts.append(String(format: #"<text x="%.1f" y="%.1f" font-size="11">- - median σ</text>"#, Layout.left, Layout.top + Layout.plotHeight + 58))
        return parts
    }

    private func escaped(_ text: String) -> String {
        text.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
            .replacingOccurrences(of: ">", with: "&gt;").replacingOccurrences(of: "\"", with: "&quot;")
    }
}
