/// `schedule.coupling`: which of the batch's noise streams each sample is noised with, chosen to
/// shorten the paths from z_0 to ε (minibatch optimal transport, Immiscible Diffusion). σ stays the
/// sample's own; only the ε stream moves, and the output's `noise_id` names the one it got.
public enum BatchCoupling: Sendable, Equatable {
    /// Each sample keeps its own stream.
    case none
    /// The permutation of the batch's streams of least total squared distance (exact).
    case assignment
    /// Each sample's stream drawn from its row of the entropic transport plan (Sinkhorn–Knopp on
    /// the costs over their maximum, POT's `ot.sinkhorn`).
    case sinkhorn(regularization: Double, iterations: Int)
    /// Each sample takes the nearest of `candidates` streams of its own.
    case knn(candidates: Int)

    /// The largest batch `assignment` and `sinkhorn` pair: their B×B costs and plan stay a few MiB.
    public static let maxPairedBatch = 1024
    /// The most knn candidates: the candidate index takes bits 56–59 of the noise id.
    public static let maxCandidates = 16
    /// Below this the plan's exp(−1/reg) would underflow a Double.
    public static let minimumRegularization = 0.002
    public static let maxIterations = 10_000

    /// The method's name, as in the config.
    public var method: String {
        switch self {
        case .none: "none"
        case .assignment: "assignment"
        case .sinkhorn: "sinkhorn"
        case .knn: "knn"
        }
    }

    /// The most samples one batch may have under this method (nil: no limit of its own).
    public var batchLimit: Int? {
        switch self {
        case .assignment, .sinkhorn: Self.maxPairedBatch
        case .none, .knn: nil
        }
    }
}
