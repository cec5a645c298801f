import Foundation
import NoiseKernel
import NoiseKernelCore

/// A `schedule.coupling.method` a bench daemon runs, with the daemon's defaults for its parameters.
public enum CouplingMethod: String, Sendable, Codable, CaseIterable {
    case assignment, sinkhorn, knn
}

/// `noised bench pipeline --coupling METHOD`: what batch coupling costs the whole pipeline.
///
/// Each case is one batch size of samples of one shape; it starts two `noised run` children with
/// the same transport, dtype, workers and high-water marks, A without coupling and B with
/// `schedule.coupling: {method: METHOD}`, and saturates them in alternating rounds (a
/// `DaemonComparison`). B's extra time per batch is the median over the rounds of (B's time per
/// batch − A's); the daemon's kernel time per batch (`noised_kernel_seconds`, which leaves the
/// coupling out) is its yardstick, since the coupling and the kernel share the workers.
public struct CouplingPipelineBench {
    public struct Options: Sendable {
        /// Its binary, transports, dtypes, warm-up, seconds per case, rounds, minimum messages per
        /// round, workers and high-water mark; not its sizes (those follow from the batches).
        public var pipeline: PipelineBench.Options
        public var coupling: CouplingMethod = .assignment
        /// Samples per batch, one case each.
        public var batchSizes = [64, 256]
        /// The shape of one sample: D = 16·64·64, a 16-channel 64×64 image latent.
        public var sampleShape = [16, 64, 64]

        /// ipc, f32 and the sizes of the requirement (B = 64 and 256 of D = 65,536).
        public init(daemonBinary: String) {
            pipeline = PipelineBench.Options(daemonBinary: daemonBinary)
            pipeline.transports = [.ipc]
            pipeline.dtypes = [.f32]
        }

        /// A smoke run: batches of 8 samples of 4×16×16, short phases.
        public static func quick(daemonBinary: String) -> Self {
            var options = Self(daemonBinary: daemonBinary)
            options.pipeline = .quickFanout(daemonBinary: daemonBinary)
            options.batchSizes = [8]
            options.sampleShape = [4, 16, 16]
            return options
        }
    }

    public struct Row: Sendable, Codable, Equatable {
        public var transport: PipelineBench.Transport
        public var dtype: String
        public var coupling: CouplingMethod
        public var batch: Int
        public var sampleShape: [Int]
        public var latentBytes: Int
        /// A: no coupling.
        public var uncoupled: PipelineBench.Throughput
        /// B: `schedule.coupling: {method: coupling}`.
        public var coupled: PipelineBench.Throughput
        /// Per round, B's seconds per batch minus A's (adjacent windows).
        public var roundExtraSeconds: [Double]
        /// Each daemon's mean kernel seconds per batch over the measured windows and drains,
        /// median of the rounds; nil when it serves no such histogram.
        public var uncoupledKernelSeconds: Double?
        public var coupledKernelSeconds: Double?
        /// B's `noised_coupling_cost` after each round (the last batch's mean squared distance per
        /// element between z_0 and its noise), median of the rounds: with the samples' own streams
        /// and with the streams the coupling gave them. Nil when the daemon serves no such gauge.
        public var independentCost: Double?
        public var coupledCost: Double?

        /// The coupling's extra seconds per batch.
        public var extraSecondsPerBatch: Double { median(roundExtraSeconds) ?? 0 }
        public var elementsPerSample: Int { sampleShape.reduce(1, *) }
        /// The extra in units of the uncoupled daemon's kernel time per batch; nil without it.
        public var extraInKernels: Double? {
            uncoupledKernelSeconds.flatMap { $0 > 0 ? extraSecondsPerBatch / $0 : nil }
        }
        /// The target: the coupling adds at most the kernel's own time per batch.
        public var withinKernel: Bool? { extraInKernels.map { $0 <= 1 } }
        public var uncoupledSecondsPerBatch: Double { Self.secondsPerBatch(uncoupled) }
        public var coupledSecondsPerBatch: Double { Self.secondsPerBatch(coupled) }

        package static func secondsPerBatch(_ rate: PipelineBench.Throughput) -> Double {
            rate.messagesPerSecond > 0 ? 1 / rate.messagesPerSecond : 0
        }

        package init(transport: PipelineBench.Transport, dtype: String, coupling: CouplingMethod, batch: Int, sampleShape: [Int],
                     latentBytes: Int, uncoupled: PipelineBench.Throughput, coupled: PipelineBench.Throughput,
                     roundExtraSeconds: [Double], uncoupledKernelSeconds: Double?, coupledKernelSeconds: Double?,
                     independentCost: Double?, coupledCost: Double?) {
            self.transport = transport
            self.dtype = dtype
            self.coupling = coupling
            self.batch = batch
            self.sampleShape = sampleShape
            self.latentBytes = latentBytes
            self.uncoupled = uncoupled
            self.coupled = coupled
            self.roundExtraSeconds = roundExtraSeconds
            self.uncoupledKernelSeconds = uncoupledKernelSeconds
            self.coupledKernelSeconds = coupledKernelSeconds
            self.independentCost = independentCost
            self.coupledCost = coupledCost
        }
    }

    public struct Report: Sendable, Codable, Equatable {
        public var rows: [Row] = []

        package init(rows: [Row] = []) { self.rows = rows }
    }

    public let options: Options
    private let progress: (String) -> Void

    public init(options: Options, progress: @escaping (String) -> Void = { _ in }) {
        self.options = options
        self.progress = progress
    }

    public func run() throws -> Report {
        guard !options.batchSizes.isEmpty, options.batchSizes.allSatisfy({ $0 >= 1 }),
              !options.sampleShape.isEmpty, options.sampleShape.allSatisfy({ $0 >= 1 }) else {
            throw BenchError("the coupling bench needs batch sizes and a sample shape, each at least 1 "
                + "(batches \(options.batchSizes), sample shape \(options.sampleShape))")
        }
        let pipeline = options.pipeline
        let comparison = DaemonComparison(options: pipeline, a: .init(coupling: nil), b: .init(coupling: options.coupling))
        return try DaemonComparison.withScratchDirectory(pipeline, prefix: "noised-bench-coupling") { directory in
            var report = Report()
            for transport in pipeline.transports {
                for dtype in pipeline.dtypes {
                    for batch in options.batchSizes {
                        let caseNumber = report.rows.count + 1
                        let shape = [batch] + options.sampleShape
                        progress("coupling case \(caseNumber): \(transport.rawValue) \(dtype.rawValue) "
                            + "\(shape.map(String.init).joined(separator: "x")), \(options.coupling.rawValue) beside none")
                        let messages = try BenchMessages(shape: shape, dtype: dtype)
                        let rounds = try comparison.measure(transport, messages, directory: directory, name: "coupling\(caseNumber)")
                        report.rows.append(row(transport, dtype, batch, messages.latentBytes, uncoupled: rounds.a, coupled: rounds.b))
                    }
                }
            }
            return report
        }
    }

    private func row(_ transport: PipelineBench.Transport, _ dtype: ElementType, _ batch: Int, _ latentBytes: Int,
                     uncoupled: [DaemonUnderTest.Round], coupled: [DaemonUnderTest.Round]) -> Row {
        let uncoupledRates = uncoupled.map { $0.perOutput[0] }, coupledRates = coupled.map { $0.perOutput[0] }
        let costs = coupled.compactMap { DaemonMetrics.couplingCost(in: $0.metrics) }
        return Row(
            transport: transport, dtype: dtype.rawValue, coupling: options.coupling, batch: batch,
            sampleShape: options.sampleShape, latentBytes: latentBytes,
            uncoupled: PipelineBench.combine(uncoupledRates), coupled: PipelineBench.combine(coupledRates),
            roundExtraSeconds: zip(uncoupledRates, coupledRates).map { Self.extraSeconds(uncoupled: $0, coupled: $1) },
            uncoupledKernelSeconds: median(uncoupled.compactMap(\.kernelSeconds)),
            coupledKernelSeconds: median(coupled.compactMap(\.kernelSeconds)),
            independentCost: median(costs.map(\.independent)), coupledCost: median(costs.map(\.coupled)))
    }

    /// B's seconds per batch minus A's, from the rates of adjacent windows; 0 without both rates.
    package static func extraSeconds(uncoupled: PipelineBench.Throughput, coupled: PipelineBench.Throughput) -> Double {
        guard uncoupled.messagesPerSecond > 0, coupled.messagesPerSecond > 0 else { return 0 }
        return 1 / coupled.messagesPerSecond - 1 / uncoupled.messagesPerSecond
    }
}
