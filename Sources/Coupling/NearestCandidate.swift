import Schedule

/// The knn coupling: each sample takes the nearest of k candidate noise streams of its own
/// (Immiscible Diffusion's KNN variant, arXiv 2505.18521).
public enum NearestCandidate {
    /// At most this many candidates per sample: the candidate index takes bits 56–59 of the noise
    /// id (bits 60–63 are a fan-out output's).
    public static let maximumCandidates = BatchCoupling.maxCandidates

    /// Candidate c (0..<k) of a sample with noise id n is stream n ^ (c << 56): candidate 0 is the
    /// sample's own stream, and the others differ from it only in bits 56–59.
    public static func noiseID(_ noiseID: UInt64, candidate: Int) -> UInt64 {
        precondition(candidate >= 0 && candidate < maximumCandidates,
                     "NearestCandidate.noiseID: candidate \(candidate) outside 0..<\(maximumCandidates)")
        return noiseID ^ (UInt64(candidate) << 56)
    }

    /// Per row of a B × k matrix (`TransportCost.candidateCosts`), the candidate of least cost;
    /// ties go to the lowest candidate index. Throws for a NaN or infinite cost.
    public static func choose(_ costs: CostMatrix) throws(CouplingError) -> [Int] {
        try requireFinite(costs.values, columns: costs.columns)
        precondition(costs.columns >= 1 || costs.rows == 0, "NearestCandidate.choose: no candidates")
        return (0..<costs.rows).map { row in
            var best = 0
            for candidate in 1..<max(costs.columns, 1) where costs[row, candidate] < costs[row, best] { best = candidate }
            return best
        }
    }
}
