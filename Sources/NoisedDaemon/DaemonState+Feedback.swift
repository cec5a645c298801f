import NoisedProtocol
import Schedule

/// What one trainer report did to the state.
package enum FeedbackOutcome: Equatable {
    /// The step rose to the largest reported (or stayed), losses recorded.
    case applied
    /// A new generation began: the step moved from `from` to the report's, back or forth.
    case resumed(from: Int64, to: Int64, generation: UInt64)
    /// The report belongs to an earlier generation than `current`: nothing changed.
    case stale(current: UInt64)
}

extension DaemonState {
    /// Takes one trainer report: the step it reached (see `FeedbackReport` for generations) and,
    /// with adaptive resampling on, each (σ, loss) pair in order. Deterministic: the same reports
    /// in the same order give the same state. A resume leaves the noise counters alone (no id or
    /// seq repeats) and keeps the loss history: it describes how hard each σ is, which a
    /// checkpoint a little earlier shares; only stale reports' losses are dropped.
    package mutating func apply(_ report: FeedbackReport, settings: NoisingSettings) -> FeedbackOutcome {
        let current = generation ?? 0
        guard report.generation >= current else { return .stale(current: current) }
        var outcome = FeedbackOutcome.applied
        if report.generation > current {
            let from = settings.step(for: self)
            generation = report.generation
            reportedStep = report.step
            // With steps counted from batches the curriculum follows the resume too.
            let (batchesAtStep, overflow) = UInt64(report.step).multipliedReportingOverflow(by: UInt64(max(1, settings.batchesPerStep)))
            batches = overflow ? .max : batchesAtStep
            outcome = .resumed(from: from, to: report.step, generation: report.generation)
        } else {
            reportedStep = max(reportedStep ?? report.step, report.step)
        }
        guard settings.adaptive.enabled, !report.sigmas.isEmpty else { return outcome }
        var history = lossHistory ?? LossHistory(bins: settings.adaptive.bins, history: settings.adaptive.history)
        if history.bins != settings.adaptive.bins || history.history != settings.adaptive.history {
            history = history.resized(bins: settings.adaptive.bins, history: settings.adaptive.history)
        }
        for (sigma, loss) in zip(report.sigmas, report.losses) {
            _ = history.record(sigma: Double(sigma), loss: Double(loss),
                               sigmaMin: settings.schedule.sigmaMin, sigmaMax: settings.schedule.sigmaMax)
        }
        lossHistory = history
        return outcome
    }
}
