#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
import Schedule

/// An entropic optimal-transport plan between a batch's samples and its noises, with uniform
/// marginals a = b = 1/n: POT's `ot.sinkhorn(a, b, M / M.max(), reg, numItermax: iterations)`
/// (`sinkhorn_knopp`), as torchcfm's OTPlanSampler calls it with normalize_cost.
///
/// The iteration is POT's: K = exp(M' / −reg) with M' the cost over its maximum, u = v = 1/n, then
/// per iteration v = b / Kᵀu and u = 1 / ((1/a) K v); an iteration whose Kᵀu has a zero or whose
/// u or v is not finite is undone and ends the loop; every tenth (0, 10, …) the column marginals'
/// distance ‖diag(u) K diag(v)ᵀ1 − b‖₂ is checked and the loop ends below `stopThreshold`.
/// Plan = diag(u) K diag(v).
///
/// In the scaling form rather than the log domain: the normalised cost lies in [0, 1], so
/// K ≥ exp(−1/reg), a normal Double for every regularization allowed here, and u, v stay within
/// about exp(±1/reg); the scaling form costs two matrix–vector products per iteration where the
/// log domain costs n² exponentials, and it is the arithmetic POT does.
public struct SinkhornPlan: Sendable {
    /// exp(−1/0.002) ≈ 7e-218: K never underflows and u·v never overflows.
    public static let minimumRegularization = BatchCoupling.minimumRegularization
    /// POT's default stopThr.
    public static let defaultStopThreshold = 1e-9

    public let n: Int
    /// The plan, row-major; row i sums to about 1/n, as does every column.
    public let values: [Double]
    /// Iterations whose update was kept (POT's log["niter"] + 1 unless it stopped on an error).
    public let iterationsRun: Int

    public init(
        cost: [Double], n: Int, regularization: Double, iterations: Int, stopThreshold: Double = defaultStopThreshold
    ) throws(CouplingError) {
        guard n >= 0, cost.count == n * n else { throw .notSquare(rows: n, columns: n > 0 ? cost.count / n : cost.count) }
        guard regularization >= Self.minimumRegularization, regularization.isFinite else {
            throw .badRegularization(regularization)
        }
        precondition(iterations >= 0, "SinkhornPlan: negative iteration count \(iterations)")
        try requireFinite(cost, columns: n)
        self.n = n
        guard n > 0 else { (values, iterationsRun) = ([], 0); return }

        // All costs zero (say, one sample equal to its noise): the uniform kernel, not 0 / 0.
        let maximum = cost.max()!
        let scale = maximum > 0 ? maximum : 1
        let kernel = cost.map { exp(($0 / scale) / -regularization) }
        let a = 1.0 / Double(n), b = a
        let inverseA = 1.0 / a
        var u = [Double](repeating: 1.0 / Double(n), count: n)
        var v = u
        var transposedU = [Double](repeating: 0, count: n)
        var nextU = u, nextV = v
        var kept = 0
        kernel.withUnsafeBufferPointer { kernel in
            for iteration in 0..<iterations {
                Self.multiplyTransposed(kernel, n, u, into: &transposedU)
                for j in 0..<n { nextV[j] = b / transposedU[j] }
                for i in 0..<n { nextU[i] = 1.0 / (inverseA * Self.dot(kernel.baseAddress! + i * n, nextV, n)) }
                if transposedU.contains(0) || nextU.contains(where: { !$0.isFinite }) || nextV.contains(where: { !$0.isFinite }) {
                    break
                }
                swap(&u, &nextU)
                swap(&v, &nextV)
                kept += 1
                if iteration % 10 == 0 {
                    Self.multiplyTransposed(kernel, n, u, into: &transposedU)
                    var squared = 0.0
                    for j in 0..<n {
                        let error = v[j] * transposedU[j] - b
                        squared += error * error
                    }
                    if squared.squareRoot() < stopThreshold { break }
                }
            }
        }
        var plan = kernel
        for i in 0..<n {
            for j in 0..<n { plan[i * n + j] = u[i] * kernel[i * n + j] * v[j] }
        }
        values = plan
        iterationsRun = kept
    }

    /// The same for a square `CostMatrix`.
    public init(_ matrix: CostMatrix, regularization: Double, iterations: Int,
                stopThreshold: Double = defaultStopThreshold) throws(CouplingError) {
        guard matrix.rows == matrix.columns else { throw .notSquare(rows: matrix.rows, columns: matrix.columns) }
        try self.init(cost: matrix.values, n: matrix.rows, regularization: regularization, iterations: iterations,
                      stopThreshold: stopThreshold)
    }

    /// The noise of sample `row` for a uniform in [0, 1): the first column whose running sum of
    /// the row, in column order, exceeds uniform × the row's sum (inverse CDF of the row
    /// normalised to a distribution).
    public func choose(row: Int, uniform: Double) -> Int {
        precondition(row >= 0 && row < n, "SinkhornPlan.choose: row \(row) outside 0..<\(n)")
        precondition(uniform >= 0 && uniform <= 1, "SinkhornPlan.choose: uniform \(uniform) outside [0, 1]")
        let start = row * n
        var total = 0.0
        for j in 0..<n { total += values[start + j] }
        let target = uniform * total
        var cumulative = 0.0
        var lastWithMass = 0
        for j in 0..<n {
            let mass = values[start + j]
            cumulative += mass
            if mass > 0 { lastWithMass = j }
            if cumulative > target { return j }
        }
        // uniform × total rounded up to the full sum: the last column the row reaches.
        return lastWithMass
    }

    /// out = Kᵀ x, row by row of K so the inner loop is contiguous.
    private static func multiplyTransposed(_ kernel: UnsafeBufferPointer<Double>, _ n: Int, _ x: [Double], into out: inout [Double]) {
        for j in 0..<n { out[j] = 0 }
        out.withUnsafeMutableBufferPointer { out in
            for i in 0..<n {
                let xi = x[i], row = kernel.baseAddress! + i * n
                for j in 0..<n { out[j] += row[j] * xi }
            }
        }
    }

    /// Σ_j row[j] x[j] with four vector accumulators (the order is not POT's BLAS order; the two
    /// agree to rounding).
    private static func dot(_ row: UnsafePointer<Double>, _ x: [Double], _ n: Int) -> Double {
        x.withUnsafeBufferPointer { x in
            let x = x.baseAddress!
            var acc0 = SIMD4<Double>(), acc1 = SIMD4<Double>()
            var j = 0
            while j + 8 <= n {
                let r0 = UnsafeRawPointer(row + j).loadUnaligned(as: SIMD4<Double>.self)
                let r1 = UnsafeRawPointer(row + j + 4).loadUnaligned(as: SIMD4<Double>.self)
                acc0 += r0 * UnsafeRawPointer(x + j).loadUnaligned(as: SIMD4<Double>.self)
                acc1 += r1 * UnsafeRawPointer(x + j + 4).loadUnaligned(as: SIMD4<Double>.self)
                j += 8
            }
            let acc = acc0 + acc1
            var sum = (acc[0] + acc[2]) + (acc[1] + acc[3])
            while j < n {
                sum += row[j] * x[j]
                j += 1
            }
            return sum
        }
    }
}
