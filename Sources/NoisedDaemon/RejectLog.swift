import Logging
import NoisedProtocol

/// Counts rejected messages by reason and logs them without flooding: at most one line per reason
/// per interval, carrying how many more were suppressed since the last line.
public struct RejectLog {
    public private(set) var counts: [RejectReason: UInt64] = [:]
    private var lastLogged: [RejectReason: ContinuousClock.Instant] = [:]
    private var suppressed: [RejectReason: UInt64] = [:]
    private let interval: Duration

    public init(interval: Duration = .seconds(1)) { self.interval = interval }

    public var total: UInt64 { counts.values.reduce(0, +) }

    public mutating func record(_ error: ProtocolError, logger: Logger, now: ContinuousClock.Instant = .now) {
        counts[error.reason, default: 0] += 1
        if let last = lastLogged[error.reason], now - last < interval {
            suppressed[error.reason, default: 0] += 1
            return
        }
        lastLogged[error.reason] = now
        var metadata: Logger.Metadata = ["reason": "\(error.reason.rawValue)", "detail": "\(error.detail)"]
        if let n = suppressed.removeValue(forKey: error.reason), n > 0 { metadata["suppressed"] = "\(n)" }
        logger.warning("rejected message", metadata: metadata)
    }

    /// `rejected_<reason>=N` for every reason seen, for the summary line.
    public var summary: Logger.Metadata {
        var m: Logger.Metadata = [:]
        for (reason, n) in counts { m["rejected_\(reason.rawValue)"] = "\(n)" }
        return m
    }
}
