import Logging
import NoisedProtocol

/// Counts rejected messages by reason and logs them without flooding: at most one line per reason
/// per interval, carrying how many more were suppressed since the last line.
package struct RejectLog {
    package private(set) var counts: [String: UInt64] = [:]
    private var lastLogged: [String: ContinuousClock.Instant] = [:]
    private var suppressed: [String: UInt64] = [:]
    private let interval: Duration
    private let message: Logger.Message
    private let level: Logger.Level

    package init(message: Logger.Message = "rejected message", level: Logger.Level = .warning,
                 interval: Duration = .seconds(1)) {
        self.message = message
        self.level = level
        self.interval = interval
    }

    package var total: UInt64 { counts.values.reduce(0, +) }

    package mutating func record(_ error: ProtocolError, logger: Logger, now: ContinuousClock.Instant = .now) {
        record(reason: error.reason.rawValue, detail: error.detail, logger: logger, now: now)
    }

    package mutating func record(reason: String, detail: String, logger: Logger, now: ContinuousClock.Instant = .now) {
        counts[reason, default: 0] += 1
        if let last = lastLogged[reason], now - last < interval {
            suppressed[reason, default: 0] += 1
            return
        }
        lastLogged[reason] = now
        var metadata: Logger.Metadata = ["reason": "\(reason)", "detail": "\(detail)"]
        if let n = suppressed.removeValue(forKey: reason), n > 0 { metadata["suppressed"] = "\(n)" }
        logger.log(level: level, message, metadata: metadata)
    }

    /// `rejected_<reason>=N` for every reason seen, for the summary line.
    package var summary: Logger.Metadata {
        var m: Logger.Metadata = [:]
        for (reason, n) in counts { m["rejected_\(reason)"] = "\(n)" }
        return m
    }
}
