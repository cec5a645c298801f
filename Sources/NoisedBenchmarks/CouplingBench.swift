import Coupling
import Foundation
import NoisedRuntime
import NoiseKernel
import NoiseKernelCore

/// `noised bench coupling`: the time per batch of each coupling step (the B×B transport costs, the
/// exact assignment and Sinkhorn on them, knn's B×k costs and choice) beside the noise kernel's own
/// time for the same batch (f32 in, f32 out), on the same workers.
public struct CouplingBench: Sendable {
    public struct Options: Sendable {
        public var batchSizes = [64, 256]
        /// D = 16·64·64: a 16-channel 64×64 latent.
        public var elementsPerSample = 16 * 64 * 64
        public var workers = 2
        public var candidates = 4
        public var sinkhornRegularization = 0.05
        public var sinkhornIterations = 100
        /// Measured rounds; every case runs once per round, in turn.
        public var rounds = 5
        public var seed: UInt64 = 0x6E6F_6973_6564

        public init() {}
    }

    /// Median milliseconds per batch over the rounds.
    public struct Row: Sendable, Codable, Equatable {
        public var batch: Int
        public var elementsPerSample: Int
        public var workers: Int
        public var rounds: Int
        public var kernel: Double
        public var costMatrix: Double
        public var assignment: Double
        public var sinkhorn: Double
        public var knn: Double
        /// Iterations Sinkhorn kept before POT's stop check passed (at most `sinkhornIterations`):
        /// in high dimensions the costs concentrate and the plan converges early.
        public var sinkhornIterationsRun: Int
        /// Mean cost per sample of the identity pairing and of the assignment (a sanity check that
        /// the assignment did something).
        public var identityMeanCost: Double
        public var assignedMeanCost: Double
    }

    public var options: Options

    public init(options: Options = Options()) {
        self.options = options
    }

    public func run() throws -> [Row] {
        guard options.workers >= 1 else { throw KernelBenchError.badWorkerCount(options.workers) }
        guard options.elementsPerSample > 0, options.batchSizes.allSatisfy({ $0 > 0 }) else {
            throw KernelBenchError.badShape(options.batchSizes + [options.elementsPerSample])
        }
        let pool = WorkerPool(workers: options.workers)
        defer { pool.shutdown() }
        return try options.batchSizes.map { try measure(batch: $0, pool: pool) }
    }

    private func measure(batch: Int, pool: WorkerPool) throws -> Row {
        let elements = options.elementsPerSample, total = batch * elements
        let memory = CouplingBenchMemory(elements: total, samples: batch)
        defer { memory.deallocate() }
        let stream = NoiseStream(seed: options.seed)
        let kernel = NoiseKernel(stream: stream)
        let cost = TransportCost(stream: stream)
        let noiseBatch = NoiseBatch(
            sampleCount: batch, elementsPerSample: elements,
            input: UnsafeRawBufferPointer(memory.input), inputType: .f32,
            zt: UnsafeMutableRawBufferPointer(memory.zt), eps: UnsafeMutableRawBufferPointer(memory.eps), clean: nil,
            outputType: .f32, sigmas: UnsafeBufferPointer(memory.sigmas), noiseIDs: UnsafeBufferPointer(memory.noiseIDs))
        let samples = LatentSamples(count: batch, elementsPerSample: elements, bytes: UnsafeRawBufferPointer(memory.input), type: .f32)
        let kernelRanges = NoiseKernel.partition(totalElements: total, workers: pool.workers)
        let columnRanges = TransportCost.ranges(count: batch, parts: pool.workers)
        let candidates = options.candidates
        let (regularization, iterations) = (options.sinkhornRegularization, options.sinkhornIterations)
        var matrix = CostMatrix(rows: 0, columns: 0, values: [])
        var assignment: [Int] = []
        var sinkhornIterationsRun = 0

        precondition(candidates >= 1 && candidates <= NearestCandidate.maximumCandidates, "CouplingBench: \(candidates) candidates")
        let cases: [() throws -> Void] = [
            { pool.run(parts: kernelRanges.count) { kernel.run(noiseBatch, elements: kernelRanges[$0]) } },
            {
                pool.run(parts: columnRanges.count) {
                    cost.fill(memory.costs, samples, candidates: UnsafeBufferPointer(memory.noiseIDs), columns: columnRanges[$0])
                }
                matrix = CostMatrix(rows: batch, columns: batch, values: Array(memory.costs[0..<batch * batch]))
            },
            { assignment = try LinearAssignment.solve(matrix) },
            {
                let plan = try SinkhornPlan(matrix, regularization: regularization, iterations: iterations)
                sinkhornIterationsRun = plan.iterationsRun
                for row in 0..<batch { memory.choices[row] = plan.choose(row: row, uniform: (Double(row) + 0.5) / Double(batch)) }
            },
            {
                let rowRanges = TransportCost.ranges(count: batch, parts: pool.workers)
                pool.run(parts: rowRanges.count) {
                    cost.fillCandidates(memory.candidateCosts, samples, noiseIDs: UnsafeBufferPointer(memory.noiseIDs),
                                        candidates: candidates, rows: rowRanges[$0])
                }
                let choice = try NearestCandidate.choose(
                    CostMatrix(rows: batch, columns: candidates, values: Array(memory.candidateCosts[0..<batch * candidates])))
                for row in 0..<batch { memory.choices[row] = choice[row] }
            },
        ]
        // One warm-up round, then the cases in turn so that load from other jobs spreads evenly.
        for body in cases { try body() }
        let clock = ContinuousClock()
        var times = [[Double]](repeating: [], count: cases.count)
        for _ in 0..<max(options.rounds, 1) {
            for (index, body) in cases.enumerated() {
                var failure: Error?
                let elapsed = clock.measure { do { try body() } catch { failure = error } }
                if let failure { throw failure }
                times[index].append(Double(elapsed.components.seconds) * 1e3 + Double(elapsed.components.attoseconds) * 1e-15)
            }
        }
        let medians = times.map { $0.sorted()[$0.count / 2] }
        return Row(batch: batch, elementsPerSample: elements, workers: pool.workers, rounds: max(options.rounds, 1),
                   kernel: medians[0], costMatrix: medians[1], assignment: medians[2], sinkhorn: medians[3], knn: medians[4],
                   sinkhornIterationsRun: sinkhornIterationsRun,
                   identityMeanCost: matrix.meanCost(pairing: Array(0..<batch)), assignedMeanCost: matrix.meanCost(pairing: assignment))
    }

    public static func renderTable(_ rows: [Row]) -> String {
        var lines = ["milliseconds per batch (median), f32 latents"]
        lines.append("batch  elements  workers  kernel   costs B×B  assignment  costs+assign  sinkhorn  knn(k)   mean cost identity -> assigned")
        for row in rows {
            lines.append(String(format: "%-7d%-10d%-9d%-9.2f%-11.2f%-12.2f%-14.2f%-10.2f%-9.2f%.1f -> %.1f",
                                row.batch, row.elementsPerSample, row.workers, row.kernel, row.costMatrix, row.assignment,
                                row.costMatrix + row.assignment, row.sinkhorn, row.knn, row.identityMeanCost, row.assignedMeanCost))
        }
        lines.append("sinkhorn: on the B×B costs (plan and one choice per row), iterations kept: "
            + rows.map { "B=\($0.batch) \($0.sinkhornIterationsRun)" }.joined(separator: ", ")
            + "; knn: its B×k costs and the choice")
        return lines.joined(separator: "\n") + "\n"
    }

    public static func renderJSON(_ rows: [Row]) throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        return String(decoding: try encoder.encode(rows), as: UTF8.self) + "\n"
    }
}

/// The batch memory of one coupling bench size; z_0 a deterministic spread of finite values.
// @unchecked: raw memory of one bench size; workers write disjoint ranges and are joined before it is read.
private struct CouplingBenchMemory: @unchecked Sendable {
    let input: UnsafeMutableBufferPointer<Float>
    let zt: UnsafeMutableBufferPointer<Float>
    let eps: UnsafeMutableBufferPointer<Float>
    let sigmas: UnsafeMutableBufferPointer<Float>
    let noiseIDs: UnsafeMutableBufferPointer<UInt64>
    let costs: UnsafeMutableBufferPointer<Double>
    let candidateCosts: UnsafeMutableBufferPointer<Double>
    let choices: UnsafeMutableBufferPointer<Int>

    init(elements: Int, samples: Int) {
        input = .allocate(capacity: elements)
        for index in 0..<elements { input[index] = Float(index % 4093) / 1024 - 2 }
        zt = .allocate(capacity: elements)
        zt.initialize(repeating: 0)
        eps = .allocate(capacity: elements)
        eps.initialize(repeating: 0)
        sigmas = .allocate(capacity: samples)
        noiseIDs = .allocate(capacity: samples)
        for sample in 0..<samples {
            sigmas[sample] = Float(sample + 1) / Float(samples + 2)
            noiseIDs[sample] = UInt64(sample)
        }
        costs = .allocate(capacity: samples * samples)
        costs.initialize(repeating: 0)
        candidateCosts = .allocate(capacity: samples * NearestCandidate.maximumCandidates)
        candidateCosts.initialize(repeating: 0)
        choices = .allocate(capacity: samples)
        choices.initialize(repeating: 0)
    }

    func deallocate() {
        for buffer in [input, zt, eps] { buffer.deallocate() }
        sigmas.deallocate()
        noiseIDs.deallocate()
        costs.deallocate()
        candidateCosts.deallocate()
        choices.deallocate()
    }
}
