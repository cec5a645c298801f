/// The distribution q the daemon samples sigma from: the curriculum p itself, or, once the loss
/// history is warm, p reweighted per sigma bin by the bins' root-mean-square losses:
///
///     q(σ) = (1 - floor)·r_k·p(σ) + floor/(σ_max - σ_min),   r_k = (1 - mix) + mix·w_k/Z
///
/// for σ in bin k, with w_k = sqrt(mean L² in bin k), P_k = p's mass in bin k and Z = Σ w_k·P_k.
/// `weight(σ)` = dp/dq makes E_q[weight·f] = E_p[f], so the trainers' objective stays p's.
public struct SigmaProposal: Sendable {
    public let curriculum: SigmaDistribution
    public let settings: AdaptiveSettings
    /// Whether q differs from p (adaptive on, the history warm and of these settings' bin count,
    /// a sigma range of positive width, and some loss where p has mass).
    public let isAdapted: Bool
    /// q's mass per bin (p's when not adapted), for metrics and plots.
    public let binWeights: [Double]
    private let bins: SigmaBins
    /// r_k: q's continuous part over p's, per bin, before the floor.
    private let ratios: [Double]
    /// p's CDF at each bin's lower edge, and q's cumulative mass below each bin.
    private let curriculumBelow: [Double]
    private let proposalBelow: [Double]
    /// p's point masses, as sigmas.
    private let atoms: [Double]

    public init(curriculum: SigmaDistribution, history: LossHistory?, settings: AdaptiveSettings) {
        self.curriculum = curriculum
        self.settings = settings
        let binCount = max(settings.bins, 1)
        let binning = SigmaBins(count: binCount, sigmaMin: curriculum.sigmaMin, sigmaMax: curriculum.sigmaMax)
        bins = binning
        let edgesCDF = (0...binCount).map { $0 == 0 ? 0 : curriculum.cdf(binning.edge($0)) }
        let masses = (0..<binCount).map { max(edgesCDF[$0 + 1] - edgesCDF[$0], 0) }
        let range = curriculum.sigmaMax - curriculum.sigmaMin
        let rms = history.map { $0.rootMeanSquare() } ?? []
        let normaliser = zip(rms, masses).reduce(0) { $0 + $1.0 * $1.1 }
        let adapted = settings.enabled && range > 0 && settings.mix > 0 && rms.count == binCount
            && history?.isWarm == true && normaliser > 0 && normaliser.isFinite
        isAdapted = adapted
        curriculumBelow = Array(edgesCDF.dropLast())
        atoms = curriculum.components.flatMap(\.atoms).map {
            min(max(curriculum.sigmaMin + range * $0, curriculum.sigmaMin), curriculum.sigmaMax)
        }
        guard adapted else {
            ratios = Array(repeating: 1, count: binCount)
            binWeights = masses
            proposalBelow = []
            return
        }
        let binRatios = rms.map { (1 - settings.mix) + settings.mix * $0 / normaliser }
        let floor = settings.uniformFloor
        let weights = (0..<binCount).map { (1 - floor) * binRatios[$0] * masses[$0] + floor / Double(binCount) }
        ratios = binRatios
        binWeights = weights
        var running = 0.0
        proposalBelow = weights.map { mass in
            defer { running += mass }
            return running
        }
    }

    /// Density of q's continuous part (p's point masses keep point masses under q).
    public func pdf(_ sigma: Double) -> Double {
        guard isAdapted else { return curriculum.pdf(sigma) }
        guard sigma >= bins.sigmaMin, sigma <= bins.sigmaMax else { return 0 }
        let k = bins.index(of: sigma)
        return (1 - settings.uniformFloor) * ratios[k] * curriculum.pdf(sigma) + floorDensity
    }

    /// Q(σ) = P(Σ <= σ) under q.
    public func cdf(_ sigma: Double) -> Double {
        guard isAdapted else { return curriculum.cdf(sigma) }
        if sigma < bins.sigmaMin { return 0 }
        if sigma >= bins.sigmaMax { return 1 }
        let k = bins.index(of: sigma)
        return min(proposalBelow[k] + withinBin(k, sigma), 1)
    }

    /// The sigma whose q-CDF first reaches u, for u in [0, 1]: the bin from the cumulative masses,
    /// then p's exact CDF inverted numerically within the bin. Not adapted: p's quantile exactly.
    public func quantile(_ u: Double) -> Double {
        guard isAdapted else { return curriculum.quantile(u) }
        precondition(u >= 0 && u <= 1, "the uniform must be in [0, 1], got \(u)")
        // The last bin whose mass below is < u (bin 0 for u = 0).
        var low = 0, high = bins.count - 1
        while low < high {
            let middle = (low + high + 1) / 2
            if proposalBelow[middle] < u { low = middle } else { high = middle - 1 }
        }
        let k = low
        let target = min(u - proposalBelow[k], binWeights[k])
        let lo = bins.edge(k), hi = bins.edge(k + 1)
        let start = binWeights[k] > 0 ? lo + (hi - lo) * target / binWeights[k] : lo
        let scaled = (1 - settings.uniformFloor) * ratios[k], floorDensity = floorDensity
        let solution = solveIncreasing(target, lo: lo, hi: hi, start: start, tolerance: 1e-12,
                                       { withinBin(k, $0) }, slope: { scaled * curriculum.pdf($0) + floorDensity })
        // At a jump of Q (one of p's point masses) return the mass itself.
        let tolerance = 1e-11
        if let atom = atoms.first(where: { $0 >= solution.lo - tolerance && $0 <= solution.hi + tolerance }) {
            return atom
        }
        return min(max(solution.root, lo), hi)
    }

    /// dp/dq at a sigma drawn from q: exactly 1 when not adapted; 1/((1 - floor)·r_k) where p has
    /// a point mass or an unbounded density; 0 where only the floor puts mass.
    public func weight(_ sigma: Double) -> Double {
        guard isAdapted else { return 1 }
        guard sigma >= bins.sigmaMin, sigma <= bins.sigmaMax else { return 0 }
        let k = bins.index(of: sigma)
        let scaled = (1 - settings.uniformFloor) * ratios[k]
        let density = curriculum.pdf(sigma)
        if atoms.contains(sigma) || density == .infinity { return 1 / scaled }
        return density / (scaled * density + floorDensity)
    }

    private var floorDensity: Double { settings.uniformFloor / (bins.sigmaMax - bins.sigmaMin) }

    /// q's mass in bin k at or below sigma.
    private func withinBin(_ k: Int, _ sigma: Double) -> Double {
        let lower = bins.edge(k)
        let curriculumMass = max(curriculum.cdf(sigma) - curriculumBelow[k], 0)
        return (1 - settings.uniformFloor) * ratios[k] * curriculumMass + floorDensity * (sigma - lower)
    }
}
