import NoisedProtocol
import Schedule

extension DaemonState {
    /// Takes one trainer report: the step it reached and, with adaptive resampling on, each
    /// (σ, loss) pair in order. Deterministic: the same reports in the same order give the same state.
    mutating func apply(_ report: FeedbackReport, settings: NoisingSettings) {
        reportedStep = max(reportedStep ?? report.step, report.step)
        guard settings.adaptive.enabled, !report.sigmas.isEmpty else { return }
        var history = lossHistory ?? LossHistory(bins: settings.adaptive.bins, history: settings.adaptive.history)
        if history.bins != settings.adaptive.bins || history.history != settings.adaptive.history {
            history = history.resized(bins: settings.adaptive.bins, history: settings.adaptive.history)
        }
        for (sigma, loss) in zip(report.sigmas, report.losses) {
            _ = history.record(sigma: Double(sigma), loss: Double(loss),
                               sigmaMin: settings.schedule.sigmaMin, sigmaMax: settings.schedule.sigmaMax)
        }
        lossHistory = history
    }
}
