import Configuration
import Foundation
import NoisedDaemon
import NoisedRuntime
import Schedule

/// `noised schedule`: the sigma distribution at chosen steps as numbers, a terminal chart, CSV and
/// an SVG heatmap (ScheduleHeatmap.swift), and the adapted proposal from a daemon's saved state.
/// Everything here builds strings; `ScheduleTool` does the file work.
public struct ScheduleReport: Sendable {
    /// One step's sigma distribution, summarised.
    public struct Summary: Sendable {
        public let mean: Double
        /// At `ScheduleReport.quantileLevels`.
        public let quantiles: [Double]
        /// Mean density over equal bins of sigma in [0, 1] (point masses spread over their bin).
        public let densities: [Double]
    }

    public static let quantileLevels = [0.05, 0.25, 0.5, 0.75, 0.95]
    /// Bins of the terminal chart.
    public static let terminalBins = 40

    public let schedule: SigmaSchedule
    public let steps: [Int64]
    /// The latent shape sequence-length shifts use; nil: their base sequence length.
    public let latentShape: [Int]?

    /// `steps` nil: `defaultSteps(for:)`. Steps are sorted and deduplicated.
    public init(schedule: SigmaSchedule, steps: [Int64]? = nil, latentShape: [Int]? = nil) {
        self.schedule = schedule
        self.steps = Array(Set(steps ?? Self.defaultSteps(for: schedule))).sorted()
        self.latentShape = latentShape
    }

    /// 0, every keyframe, the midpoints between keyframes, and the last keyframe + 10 % (+1000
    /// steps when the last keyframe is at 0), so every change in the curriculum shows.
    public static func defaultSteps(for schedule: SigmaSchedule) -> [Int64] {
        let keyframeSteps = schedule.keyframes.map(\.atStep)
        var steps: Set<Int64> = [0]
        steps.formUnion(keyframeSteps)
        for (a, b) in zip(keyframeSteps, keyframeSteps.dropFirst()) { steps.insert(a + (b - a) / 2) }
        let last = keyframeSteps.last ?? 0
        steps.insert(last > 0 ? last + (last + 9) / 10 : 1000)
        return steps.sorted()
    }

    public func distribution(atStep step: Int64) -> SigmaDistribution {
        schedule.distribution(atStep: step, latentShape: latentShape)
    }

    public func summary(atStep step: Int64, bins: Int) -> Summary {
        let distribution = distribution(atStep: step)
        return Self.summary(cdf: distribution.cdf, quantile: distribution.quantile, mean: distribution.mean, bins: bins)
    }

    static func summary(cdf: (Double) -> Double, quantile: (Double) -> Double, mean: Double, bins: Int) -> Summary {
        // Bins [e_k, e_{k+1}) (the last one closed), so that a point mass on an edge is drawn
        // in the bin it starts: the CDF just below each inner edge.
        let edges = (0...bins).map { $0 == 0 ? 0 : $0 == bins ? 1 : cdf(Double($0) / Double(bins) - 1e-12) }
        let densities = (0..<bins).map { max(edges[$0 + 1] - edges[$0], 0) * Double(bins) }
        return Summary(mean: mean, quantiles: quantileLevels.map(quantile), densities: densities)
    }

    /// What the sequence-length shifts make of the shape, so a wrong token layout shows.
    private func tokensAndShifts(_ shape: [Int]) -> String {
        schedule.sequenceLengthShifts(latentShape: shape).map {
            " (keyframe at step \($0.atStep): \(Int($0.tokens)) tokens, shift \(String(format: "%.3f", $0.shift)))"
        }.joined()
    }

    /// One row per step: mean, quantiles and a density bar over sigma from 0 to 1 (each row
    /// scaled to its own peak, printed at the end); keyframe steps are starred.
    public func terminal() -> String {
        let keyframeSteps = Set(schedule.keyframes.map(\.atStep))
        var title = "sigma in [\(Self.format(schedule.sigmaMin)), \(Self.format(schedule.sigmaMax))], "
            + "\(schedule.interpolation.rawValue) interpolation, \(schedule.keyframes.count) keyframe(s)"
        if let latentShape {
            title += ", latent shape \(latentShape.map(String.init).joined(separator: "x"))" + tokensAndShifts(latentShape)
        }
        var lines = [title, Self.header(label: "step")]
        for step in steps {
            let label = "\(step)" + (keyframeSteps.contains(step) ? "*" : " ")
            lines.append(Self.row(label: label, summary(atStep: step, bins: Self.terminalBins)))
        }
        lines.append(Self.axis(labelWidth: 10))
        lines.append("* keyframe; density bars: sigma 0 (data) to 1 (noise), each row scaled to its peak")
        return lines.joined(separator: "\n")
    }

    /// `step,sigma,density` rows: the mean density over `bins` equal bins of sigma in [0, 1], at
    /// each bin's centre; per step the densities times the bin width sum to 1.
    public func csv(bins: Int = 100) -> String {
        var lines = ["step,sigma,density"]
        for step in steps {
            for (index, density) in summary(atStep: step, bins: bins).densities.enumerated() {
                lines.append("\(step),\(Self.format((Double(index) + 0.5) / Double(bins), digits: 6)),\(Self.format(density, digits: 6))")
            }
        }
        return lines.joined(separator: "\n") + "\n"
    }

    // MARK: Text layout shared with the proposal report

    static func header(label: String) -> String {
        label.leftPadded(to: 10) + "   mean" + quantileLevels.map { "\(Int($0 * 100))%".leftPadded(to: 7) }.joined()
            + "  density".padding(toLength: terminalBins + 3, withPad: " ", startingAt: 0) + "peak"
    }

    static func row(label: String, _ summary: Summary) -> String {
        label.leftPadded(to: 10) + format(summary.mean).leftPadded(to: 7)
            + summary.quantiles.map { format($0).leftPadded(to: 7) }.joined()
            + "  |" + bars(summary.densities) + "| " + format(summary.densities.max() ?? 0, digits: 2)
    }

    static func axis(labelWidth: Int) -> String {
        // Under the first, middle and last bar characters (after the opening "|").
        let offset = labelWidth + 7 + 7 * quantileLevels.count + 3
        return String(repeating: " ", count: offset) + "0" + String(repeating: " ", count: terminalBins / 2 - 2)
            + "0.5" + String(repeating: " ", count: terminalBins / 2 - 3) + "1"
    }

    /// Block characters scaled to the largest value; any value above rounding (1e-9 of the peak)
    /// shows at least the lowest block.
    static func bars(_ values: [Double]) -> String {
        let blocks = Array(" ▁▂▃▄▅▆▇█")
        let peak = values.max() ?? 0
        guard peak > 0 else { return String(repeating: " ", count: values.count) }
        return String(values.map { value in
            value <= peak * 1e-9 ? blocks[0] : blocks[min(max(Int((value / peak * 8).rounded()), 1), 8)]
        })
    }

    static func format(_ value: Double, digits: Int = 3) -> String {
        String(format: "%.\(digits)f", value)
    }
}

extension String {
    func leftPadded(to width: Int) -> String {
        count >= width ? self : String(repeating: " ", count: width - count) + self
    }
}

// MARK: The adapted proposal from a saved state

extension ScheduleReport {
    /// The step a daemon with this config and state samples at (steps.source honoured).
    public static func step(config: NoisedConfig, state: DaemonState) -> Int64 {
        let counted = state.step(batchesPerStep: config.steps.batchesPerStep)
        guard config.steps.source == .feedback, let reported = state.reportedStep else { return counted }
        return reported
    }

    /// The curriculum and the adapted proposal at the state's step side by side, and per bin the
    /// masses of both and the loss history behind them.
    public static func proposal(config: NoisedConfig, state: DaemonState, latentShape: [Int]? = nil) -> String {
        let step = step(config: config, state: state)
        let curriculum = config.schedule.distribution(atStep: step, latentShape: latentShape)
        let settings = config.adaptive
        let history = state.lossHistory?.resized(bins: settings.bins, history: settings.history)
        let proposal = SigmaProposal(curriculum: curriculum, history: history, settings: settings)
        // E_q[sigma] by the midpoint rule on q's quantile (q has no closed-form mean).
        let points = 2000
        let proposalMean = (0..<points).reduce(0) { $0 + proposal.quantile((Double($1) + 0.5) / Double(points)) } / Double(points)
        var lines = [
            "state at step \(step) (steps.source \(config.steps.source.rawValue)): "
                + "\(state.lossHistory?.reportCount ?? 0) loss reports, adaptive \(settings.enabled ? "on" : "off"), "
                + "history \(history?.isWarm == true ? "warm" : "warming up"), proposal \(proposal.isAdapted ? "adapted" : "= curriculum")",
            header(label: ""),
            row(label: "curriculum", summary(cdf: curriculum.cdf, quantile: curriculum.quantile, mean: curriculum.mean, bins: terminalBins)),
            row(label: "proposal", summary(cdf: proposal.cdf, quantile: proposal.quantile, mean: proposalMean, bins: terminalBins)),
            axis(labelWidth: 10),
            "",
            " bin  sigma range        p mass   q mass  rms loss  losses",
        ]
        let curriculumMasses = SigmaProposal(curriculum: curriculum, history: nil, settings: settings).binWeights
        let rms = history?.rootMeanSquare() ?? []
        for bin in 0..<proposal.binWeights.count {
            let lower = curriculum.sigmaMin + (curriculum.sigmaMax - curriculum.sigmaMin) * Double(bin) / Double(proposal.binWeights.count)
            let upper = curriculum.sigmaMin + (curriculum.sigmaMax - curriculum.sigmaMin) * Double(bin + 1) / Double(proposal.binWeights.count)
            lines.append("\(bin)".leftPadded(to: 4) + "  " + format(lower) + "-" + format(upper)
                + format(curriculumMasses[bin], digits: 4).leftPadded(to: 15) + format(proposal.binWeights[bin], digits: 4).leftPadded(to: 9)
                + (bin < rms.count ? format(rms[bin], digits: 4) : "-").leftPadded(to: 10)
                + "\(history?.losses[bin].count ?? 0)".leftPadded(to: 8))
        }
        return lines.joined(separator: "\n")
    }
}

/// `noised schedule`'s file work: read the config (and state), write the SVG and CSV, return the text.
public enum ScheduleTool {
    public struct Options: Sendable {
        public var configPath: String
        public var steps: [Int64]?
        public var stateDirectory: String?
        public var svgPath: String?
        public var csvPath: String?
        public var latentShape: [Int]?
        /// With `outputs`, the output whose schedule to show.
        public var output: String?

        public init(configPath: String) { self.configPath = configPath }
    }

    public static func run(_ options: Options) throws -> String {
        let config = try selectedConfig(try ConfigFile.load(options.configPath), output: options.output)
        let report = ScheduleReport(schedule: config.schedule, steps: options.steps, latentShape: options.latentShape)
        var output = [report.terminal()]
        if let path = options.svgPath {
            let title = "σ density by training step: " + URL(fileURLWithPath: options.configPath).lastPathComponent
            try write(report.svg(title: title), to: path)
            output.append("wrote \(path)")
        }
        if let path = options.csvPath {
            try write(report.csv(), to: path)
            output.append("wrote \(path)")
        }
        if let directory = options.stateDirectory {
            let state = try StateStore(directory: directory).load()
            output.append("")
            output.append(ScheduleReport.proposal(config: config, state: state, latentShape: options.latentShape))
        }
        return output.joined(separator: "\n")
    }

    /// The config whose schedule is shown: the file's, or with `outputs` the named output's.
    static func selectedConfig(_ config: NoisedConfig, output: String?) throws -> NoisedConfig {
        let names = config.outputs.map(\.name)
        guard let output else {
            guard names.isEmpty else {
                throw ScheduleToolError(description: "the config has outputs \(names.joined(separator: ", ")), each with its own schedule: pick one with --output")
            }
            return config
        }
        guard let index = names.firstIndex(of: output) else {
            throw ScheduleToolError(description: names.isEmpty ? "--output \(output): the config has no outputs"
                : "--output \(output): the config's outputs are \(names.joined(separator: ", "))")
        }
        return config.config(ofOutput: index)
    }

    private static func write(_ text: String, to path: String) throws {
        do { try text.write(toFile: path, atomically: true, encoding: .utf8) } catch {
            throw ScheduleToolError(description: "\(path): cannot be written: \(error.localizedDescription)")
        }
    }
}

public struct ScheduleToolError: Error, CustomStringConvertible {
    public let description: String
}
