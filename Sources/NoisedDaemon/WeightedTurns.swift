/// `fanout: split`'s order: smooth weighted round robin (nginx's), so of every sum(weights) turns
/// each output takes exactly its weight (for whole weights), spread out rather than in bursts, and
/// the same order on every run.
package struct WeightedTurns {
    package var weights: [Double] {
        didSet { if weights.count != credits.count { credits = Array(repeating: 0, count: weights.count) } }
    }
    private var credits: [Double]

    package init(weights: [Double]) {
        precondition(!weights.isEmpty, "WeightedTurns needs at least one weight")
        self.weights = weights
        credits = Array(repeating: 0, count: weights.count)
    }

    /// The next output's index: every credit grows by its weight, the largest (the first of
    /// equals) is taken and pays the total.
    package mutating func next() -> Int {
        var best = 0
        for index in weights.indices {
            credits[index] += weights[index]
            if credits[index] > credits[best] { best = index }
        }
        credits[best] -= weights.reduce(0, +)
        return best
    }
}
