import Coupling
import NoisedProtocol
import NoisedRuntime
import NoiseKernel
import Schedule

/// `schedule.coupling` for one batch: which noise stream each sample is noised with. The costs are
/// computed across the workers (columns of the B×B matrix, or rows of the knn matrix, per part),
/// which leaves every cost, and so every choice, the same for any worker count.
struct NoiseCoupling {
    let cost: TransportCost
    let stream: NoiseStream

    init(stream: NoiseStream) {
        self.stream = stream
        cost = TransportCost(stream: stream)
    }

    /// What the coupling chose, and the mean transport cost (per element) of the batch's own
    /// streams and of the chosen ones.
    struct Choice {
        let noiseIDs: [UInt64]
        let independentCost: Double
        let coupledCost: Double
    }

    /// The streams the samples get under `coupling`, from their own noise ids `ids`. A batch of
    /// one keeps its stream (assignment and sinkhorn have nothing to exchange).
    func choose(_ coupling: BatchCoupling, latents: LatentSamples, ids: [UInt64], workers: WorkerPool) throws(ProtocolError) -> Choice? {
        let samples = latents.count
        if let limit = coupling.batchLimit, samples > limit {
            throw ProtocolError(.batchTooLarge, "schedule.coupling method \(coupling.method) pairs batches of at most \(limit) samples; "
                + "this one has \(samples) (lower input.max_batch, or use knn)")
        }
        let perElement = 1 / Double(max(latents.elementsPerSample, 1))
        do {
            switch coupling {
            case .none:
                return nil
            case .assignment, .sinkhorn:
                guard samples > 1 else { return nil }
                let matrix = pairCosts(latents, ids: ids, workers: workers)
                let columns: [Int]
                if case let .sinkhorn(regularization, iterations) = coupling {
                    let plan = try SinkhornPlan(matrix, regularization: regularization, iterations: iterations)
                    columns = ids.indices.map { plan.choose(row: $0, uniform: stream.sigmaUniforms(noiseID: ids[$0], word1: 2).0) }
                } else {
                    columns = try LinearAssignment.solve(matrix)
                }
                return Choice(noiseIDs: columns.map { ids[$0] }, independentCost: matrix.meanCost(pairing: Array(ids.indices)) * perElement,
                              coupledCost: matrix.meanCost(pairing: columns) * perElement)
            case .knn(let candidates):
                let matrix = candidateCosts(latents, ids: ids, candidates: candidates, workers: workers)
                let chosen = try NearestCandidate.choose(matrix)
                return Choice(noiseIDs: ids.indices.map { NearestCandidate.noiseID(ids[$0], candidate: chosen[$0]) },
                              independentCost: matrix.meanCost(pairing: Array(repeating: 0, count: samples)) * perElement,
                              coupledCost: matrix.meanCost(pairing: chosen) * perElement)
            }
        } catch {
            throw ProtocolError(.nonfinite, "\(error): schedule.coupling needs finite latents whose squares fit in f32")
        }
    }

    private func pairCosts(_ latents: LatentSamples, ids: [UInt64], workers: WorkerPool) -> CostMatrix {
        let n = latents.count
        var values = [Double](repeating: 0, count: n * n)
        let parts = TransportCost.ranges(count: n, parts: workers.workers)
        values.withUnsafeMutableBufferPointer { out in
            ids.withUnsafeBufferPointer { idView in
                let shared = CostTarget(out: out, ids: idView)
                workers.run(parts: parts.count) { [cost] part in
                    cost.fill(shared.out, latents, candidates: shared.ids, columns: parts[part])
                }
            }
        }
        return CostMatrix(rows: n, columns: n, values: values)
    }

    private func candidateCosts(_ latents: LatentSamples, ids: [UInt64], candidates: Int, workers: WorkerPool) -> CostMatrix {
        var values = [Double](repeating: 0, count: latents.count * candidates)
        let parts = TransportCost.ranges(count: latents.count, parts: workers.workers)
        values.withUnsafeMutableBufferPointer { out in
            ids.withUnsafeBufferPointer { idView in
                let shared = CostTarget(out: out, ids: idView)
                workers.run(parts: parts.count) { [cost] part in
                    cost.fillCandidates(shared.out, latents, noiseIDs: shared.ids, candidates: candidates, rows: parts[part])
                }
            }
        }
        return CostMatrix(rows: latents.count, columns: candidates, values: values)
    }
}

/// The cost matrix and noise ids the workers share during one call.
// @unchecked: each part writes only its own columns (or rows) of `out`; `ids` is only read; both outlive the call.
private struct CostTarget: @unchecked Sendable {
    let out: UnsafeMutableBufferPointer<Double>
    let ids: UnsafeBufferPointer<UInt64>
}
