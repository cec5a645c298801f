import NoiseKernelCore

/// B clean latents as the daemon holds them: `count` samples of `elementsPerSample` contiguous
/// elements of `type`, flattened.
// @unchecked: a read-only view of memory the caller owns and keeps alive while a cost is computed.
public struct LatentSamples: @unchecked Sendable {
    public let count: Int
    public let elementsPerSample: Int
    public let bytes: UnsafeRawBufferPointer
    public let type: ElementType

    public init(count: Int, elementsPerSample: Int, bytes: UnsafeRawBufferPointer, type: ElementType) {
        precondition(count >= 0 && elementsPerSample >= 0, "LatentSamples: negative shape \(count) x \(elementsPerSample)")
        let (total, overflow) = count.multipliedReportingOverflow(by: elementsPerSample)
        precondition(!overflow, "LatentSamples: \(count) x \(elementsPerSample) elements overflow")
        precondition(bytes.count >= total * type.byteCount,
                     "LatentSamples: \(bytes.count) bytes for \(total) \(type) elements")
        precondition(total == 0 || bytes.baseAddress != nil, "LatentSamples: a buffer without memory")
        (self.count, self.elementsPerSample, self.bytes, self.type) = (count, elementsPerSample, bytes, type)
    }
}

/// Transport costs between `rows` samples and `columns` candidate noises, row-major.
public struct CostMatrix: Sendable, Equatable {
    public let rows: Int
    public let columns: Int
    public var values: [Double]

    public init(rows: Int, columns: Int, values: [Double]) {
        precondition(rows >= 0 && columns >= 0 && values.count == rows * columns,
                     "CostMatrix: \(values.count) values for \(rows) x \(columns)")
        (self.rows, self.columns, self.values) = (rows, columns, values)
    }

    public subscript(row: Int, column: Int) -> Double { values[row * columns + column] }

    /// The mean of cost[i, pairing[i]] over the rows: what a batch pays for a choice of noise
    /// (the identity before coupling, the solver's choice after).
    public func meanCost(pairing: [Int]) -> Double {
        precondition(pairing.count == rows, "CostMatrix.meanCost: \(pairing.count) choices for \(rows) rows")
        guard rows > 0 else { return 0 }
        var total = 0.0
        for (row, column) in pairing.enumerated() { total += self[row, column] }
        return total / Double(rows)
    }
}

public enum CouplingError: Error, Equatable, CustomStringConvertible {
    /// A cost that is NaN or infinite (a non-finite z_0, or one whose square overflows f32).
    case nonFiniteCost(row: Int, column: Int)
    /// A square solver given a matrix of another shape.
    case notSquare(rows: Int, columns: Int)
    case badRegularization(Double)

    public var description: String {
        switch self {
        case .nonFiniteCost(let row, let column): "coupling: the transport cost of sample \(row) and noise \(column) is not finite"
        case .notSquare(let rows, let columns): "coupling: a \(rows) x \(columns) cost matrix is not square"
        case .badRegularization(let reg):
            "coupling: sinkhorn regularization \(reg) must be at least \(SinkhornPlan.minimumRegularization)"
        }
    }
}

/// Throws for the first NaN or infinity of a row-major matrix with `columns` columns.
func requireFinite(_ values: [Double], columns: Int) throws(CouplingError) {
    for (index, value) in values.enumerated() where !value.isFinite {
        throw .nonFiniteCost(row: index / max(columns, 1), column: index % max(columns, 1))
    }
}
