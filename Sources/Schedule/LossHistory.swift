/// `schedule.adaptive`: loss-aware resampling of sigma (docs/schedules.md, "Adaptive proposal").
/// Configuration validates the ranges; SigmaProposal relies on them.
public struct AdaptiveSettings: Sendable, Equatable {
    public var enabled: Bool
    /// Equal-width sigma bins over [sigma_min, sigma_max], >= 2.
    public var bins: Int
    /// Losses kept per bin, >= 1; the proposal adapts once every bin holds this many.
    public var history: Int
    /// Share of the proposal that follows the losses, in [0, 1].
    public var mix: Double
    /// Share of the proposal that is uniform on [sigma_min, sigma_max], in [0, 1).
    public var uniformFloor: Double

    public init(enabled: Bool = false, bins: Int = 20, history: Int = 10, mix: Double = 0.5,
                uniformFloor: Double = 0.01) {
        self.enabled = enabled
        self.bins = bins
        self.history = history
        self.mix = mix
        self.uniformFloor = uniformFloor
    }
}

/// The last `history` reported losses in each of `bins` equal-width sigma bins: a ring buffer per
/// bin, stored oldest first so that the persisted form is plain JSON. The update is a pure function
/// of the reports and their order, so daemons fed the same reports hold the same history.
public struct LossHistory: Codable, Sendable, Equatable {
    public let bins: Int
    public let history: Int
    /// Per bin, at most `history` losses, oldest first.
    public private(set) var losses: [[Double]]
    /// Reports recorded since the history began.
    public private(set) var reportCount: UInt64 = 0

    public init(bins: Int, history: Int) {
        precondition(bins >= 1 && history >= 1, "a loss history needs bins >= 1 and history >= 1")
        self.bins = bins
        self.history = history
        losses = Array(repeating: [], count: bins)
    }

    /// Records one (sigma, loss) report in sigma's bin, dropping that bin's oldest loss when full.
    /// Non-finite values are ignored (callers reject them first; this keeps the state encodable).
    /// A sigma outside [sigmaMin, sigmaMax] by more than rounding (a report from another range) is
    /// ignored; within rounding it counts in the end bin. Returns whether the report was recorded.
    @discardableResult
    public mutating func record(sigma: Double, loss: Double, sigmaMin: Double, sigmaMax: Double) -> Bool {
        guard sigma.isFinite, loss.isFinite, sigmaMax > sigmaMin else { return false }
        // F32 round trips through trainers move sigma by up to an ulp of a float.
        let slack = 1e-6 * max(1, abs(sigmaMax))
        guard sigma >= sigmaMin - slack, sigma <= sigmaMax + slack else { return false }
        let bin = SigmaBins(count: bins, sigmaMin: sigmaMin, sigmaMax: sigmaMax).index(of: sigma)
        if losses[bin].count == history { losses[bin].removeFirst() }
        losses[bin].append(loss)
        reportCount &+= 1
        return true
    }

    /// Whether every bin holds `history` losses.
    public var isWarm: Bool { losses.allSatisfy { $0.count == history } }

    /// sqrt(mean(L²)) per bin; 0 for an empty bin.
    public func rootMeanSquare() -> [Double] {
        losses.map { bin in
            bin.isEmpty ? 0 : (bin.reduce(0) { $0 + $1 * $1 } / Double(bin.count)).squareRoot()
        }
    }

    /// This history for new settings (after a reload). With the same bin count each bin keeps its
    /// newest min(held, history) losses. With another bin count the bin edges move, so no loss
    /// belongs to a new bin and the history starts empty (the proposal is p until it warms up
    /// again). The report count carries over in both cases.
    public func resized(bins newBins: Int, history newHistory: Int) -> LossHistory {
        if newBins == bins, newHistory == history { return self }
        var resized = LossHistory(bins: newBins, history: newHistory)
        resized.reportCount = reportCount
        if newBins == bins {
            resized.losses = losses.map { Array($0.suffix(newHistory)) }
        }
        return resized
    }

    private enum CodingKeys: String, CodingKey {
        case bins, history, losses, reportCount = "report_count"
    }

    /// Decodes and checks the shape, so a damaged state file is an error rather than a crash later.
    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        bins = try container.decode(Int.self, forKey: .bins)
        history = try container.decode(Int.self, forKey: .history)
        losses = try container.decode([[Double]].self, forKey: .losses)
        reportCount = try container.decode(UInt64.self, forKey: .reportCount)
        func damaged(_ message: String) -> DecodingError {
            .dataCorrupted(.init(codingPath: container.codingPath, debugDescription: "loss history: \(message)"))
        }
        guard bins >= 1, history >= 1 else { throw damaged("bins and history must be >= 1, got \(bins) and \(history)") }
        guard losses.count == bins else { throw damaged("\(losses.count) bins of losses for \(bins) bins") }
        for (index, bin) in losses.enumerated() {
            guard bin.count <= history else { throw damaged("bin \(index) holds \(bin.count) losses, more than \(history)") }
            guard bin.allSatisfy(\.isFinite) else { throw damaged("bin \(index) holds a non-finite loss") }
        }
    }
}

/// `count` equal-width bins over [sigmaMin, sigmaMax]: bin 0 is [e₀, e₁] and bin k > 0 is
/// (e_k, e_{k+1}], matching a right-continuous CDF, so bin k's mass is F(e_{k+1}) - F(e_k).
package struct SigmaBins: Sendable {
    package let count: Int
    package let sigmaMin: Double
    package let sigmaMax: Double

    package init(count: Int, sigmaMin: Double, sigmaMax: Double) {
        self.count = count
        self.sigmaMin = sigmaMin
        self.sigmaMax = sigmaMax
    }

    /// e_k; exact at both ends.
    package func edge(_ k: Int) -> Double {
        k >= count ? sigmaMax : sigmaMin + (sigmaMax - sigmaMin) * Double(k) / Double(count)
    }

    /// The bin holding sigma (clamped into the end bins), consistent with `edge` at the edges.
    package func index(of sigma: Double) -> Int {
        let scaled = (sigma - sigmaMin) / (sigmaMax - sigmaMin) * Double(count)
        var k = min(max(Int(scaled.rounded(.up)) - 1, 0), count - 1)
        while k > 0, sigma <= edge(k) { k -= 1 }
        while k < count - 1, sigma > edge(k + 1) { k += 1 }
        return k
    }
}
