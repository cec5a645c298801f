/// Exact linear assignment: the permutation p minimising Σ_i cost[i, p(i)] of a square matrix.
///
/// Shortest augmenting paths with dual potentials (the Jonker–Volgenant family; the form of
/// Crouse 2016 that scipy's linear_sum_assignment uses): each row in turn is joined to the partial
/// matching by a Dijkstra search over reduced costs, O(n³) at worst. Ties go to the lowest column
/// index (among equally short columns a free one first, which ends the search), so the result is a
/// function of the matrix alone; identical rows or columns need no special case.
public enum LinearAssignment {
    /// Row i → column; throws for a NaN or infinite cost.
    public static func solve(cost: [Double], n: Int) throws(CouplingError) -> [Int] {
        guard n >= 0, cost.count == n * n else { throw .notSquare(rows: n, columns: n > 0 ? cost.count / n : cost.count) }
        try requireFinite(cost, columns: n)
        if n <= 1 { return Array(0..<n) }
        return cost.withUnsafeBufferPointer { solveFinite($0, n) }
    }

    /// The same for a square `CostMatrix`.
    public static func solve(_ matrix: CostMatrix) throws(CouplingError) -> [Int] {
        guard matrix.rows == matrix.columns else { throw .notSquare(rows: matrix.rows, columns: matrix.columns) }
        return try solve(cost: matrix.values, n: matrix.rows)
    }

    private static func solveFinite(_ cost: UnsafeBufferPointer<Double>, _ n: Int) -> [Int] {
        var u = [Double](repeating: 0, count: n)  // row potentials
        var v = [Double](repeating: 0, count: n)  // column potentials
        var columnOfRow = [Int](repeating: -1, count: n)
        var rowOfColumn = [Int](repeating: -1, count: n)
        var shortest = [Double](repeating: .infinity, count: n)
        var previousRow = [Int](repeating: -1, count: n)
        var rowSeen = [Bool](repeating: false, count: n)
        var columnDone = [Bool](repeating: false, count: n)
        var seenRows: [Int] = []
        var doneColumns: [Int] = []
        seenRows.reserveCapacity(n)
        doneColumns.reserveCapacity(n)

        for start in 0..<n {
            for j in 0..<n { shortest[j] = .infinity }
            for i in seenRows { rowSeen[i] = false }
            for j in doneColumns { columnDone[j] = false }
            seenRows.removeAll(keepingCapacity: true)
            doneColumns.removeAll(keepingCapacity: true)

            // Dijkstra from row `start` until it reaches a free column.
            var row = start
            var pathLength = 0.0
            var sink = -1
            while sink < 0 {
                rowSeen[row] = true
                seenRows.append(row)
                let costRow = cost.baseAddress! + row * n
                let reducedBase = pathLength - u[row]
                var lowest = Double.infinity
                var best = -1
                for j in 0..<n where !columnDone[j] {
                    let reduced = reducedBase + costRow[j] - v[j]
                    if reduced < shortest[j] {
                        previousRow[j] = row
                        shortest[j] = reduced
                    }
                    // Strictly shorter wins; on a tie a free column beats an assigned one, else the lower index stays.
                    if shortest[j] < lowest || (best >= 0 && shortest[j] == lowest && rowOfColumn[j] < 0 && rowOfColumn[best] >= 0) {
                        lowest = shortest[j]
                        best = j
                    }
                }
                // Finite costs keep every reduced cost finite, so some column is always reached.
                precondition(best >= 0, "LinearAssignment: no column reachable (non-finite cost)")
                pathLength = lowest
                columnDone[best] = true
                doneColumns.append(best)
                if rowOfColumn[best] < 0 { sink = best } else { row = rowOfColumn[best] }
            }

            // Dual update keeps reduced costs non-negative and zero along the matching.
            u[start] += pathLength
            for i in seenRows where i != start { u[i] += pathLength - shortest[columnOfRow[i]] }
            for j in doneColumns { v[j] -= pathLength - shortest[j] }

            // Augment along the path back to `start`.
            var column = sink
            while true {
                let i = previousRow[column]
                rowOfColumn[column] = i
                swap(&columnOfRow[i], &column)
                if i == start { break }
            }
        }
        return columnOfRow
    }
}
