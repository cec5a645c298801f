import Foundation
import NoiseKernel
import NoiseKernelCore

/// `noised bench pipeline --fanout`: what `fanout: copy` to two outputs costs beside one output.
///
/// Each case starts two `noised run` children with the same transport, dtype, message size,
/// workers and high-water marks: A with the ordinary `output` and one consumer, B with
/// `fanout: copy` to two `outputs` and a consumer draining each. They are saturated in turn,
/// `rounds` times each (a `DaemonComparison`). B's rate counts input batches (each reaches both
/// consumers); its extra cost per batch is the median over the rounds of (B's time per batch −
/// A's) / A's, which two full pipelines sharing nothing would put at 1 (a second kernel pass and a
/// second send).
public struct FanoutBench {
    public struct Row: Sendable, Codable, Equatable {
        public var transport: PipelineBench.Transport
        public var dtype: String
        public var latentBytes: Int
        /// A: batches out of the one output.
        public var single: PipelineBench.Throughput
        /// B: input batches per second, the mean of its consumers' rates.
        public var copied: PipelineBench.Throughput
        /// B: each consumer's own rate, in the order of `outputs`.
        public var copiedPerOutput: [PipelineBench.Throughput]
        /// Per round, B's time per input batch over A's time per batch, minus 1 (adjacent windows).
        public var roundExtras: [Double]
        /// The daemons' mean kernel time per pass (`noised_kernel_seconds`) over the measured
        /// windows and drains, median of the rounds; B makes two passes per input batch. Nil when
        /// the daemon serves no such histogram.
        public var singleKernelSeconds: Double?
        public var copiedKernelSeconds: Double?

        /// The fan-out's extra time per input batch, in units of one output's time per batch.
        public var extraPerBatch: Double { median(roundExtras) ?? 0 }
        /// At most a second kernel pass and a second send: the second output costs no more than the first.
        public var withinKernelAndSend: Bool { extraPerBatch <= 1 }
        public var singleSecondsPerBatch: Double { single.messagesPerSecond > 0 ? 1 / single.messagesPerSecond : 0 }
        public var copiedSecondsPerBatch: Double { copied.messagesPerSecond > 0 ? 1 / copied.messagesPerSecond : 0 }

        package init(transport: PipelineBench.Transport, dtype: String, latentBytes: Int, single: PipelineBench.Throughput,
                     copied: PipelineBench.Throughput, copiedPerOutput: [PipelineBench.Throughput], roundExtras: [Double],
                     singleKernelSeconds: Double?, copiedKernelSeconds: Double?) {
            self.transport = transport
            self.dtype = dtype
            self.latentBytes = latentBytes
            self.single = single
            self.copied = copied
            self.copiedPerOutput = copiedPerOutput
            self.roundExtras = roundExtras
            self.singleKernelSeconds = singleKernelSeconds
            self.copiedKernelSeconds = copiedKernelSeconds
        }
    }

    public struct Report: Sendable, Codable, Equatable {
        public var rows: [Row] = []

        package init(rows: [Row] = []) { self.rows = rows }
    }

    /// Outputs of case B.
    static let copies = 2

    /// Of the pipeline bench's options this reads the binary, transports, dtypes, sizes, warm-up,
    /// seconds per case, rounds, minimum messages per round, workers and high-water mark.
    public let options: PipelineBench.Options
    private let progress: (String) -> Void

    public init(options: PipelineBench.Options, progress: @escaping (String) -> Void = { _ in }) {
        self.options = options
        self.progress = progress
    }

    public func run() throws -> Report {
        let comparison = DaemonComparison(options: options, a: .init(outputs: 1), b: .init(outputs: Self.copies))
        return try DaemonComparison.withScratchDirectory(options, prefix: "noised-bench-fanout") { directory in
            var report = Report()
            for transport in options.transports {
                for dtype in options.dtypes {
                    for size in options.sizes {
                        let caseNumber = report.rows.count + 1
                        progress("fan-out case \(caseNumber): \(transport.rawValue) \(dtype.rawValue) \(PipelineBench.formatSize(size))")
                        let messages = try BenchMessages(latentBytes: size, dtype: dtype)
                        let rounds = try comparison.measure(transport, messages, directory: directory, name: "fanout\(caseNumber)")
                        report.rows.append(Self.row(transport, dtype, size, single: rounds.a, copied: rounds.b))
                    }
                }
            }
            return report
        }
    }

    private static func row(_ transport: PipelineBench.Transport, _ dtype: ElementType, _ size: Int,
                            single: [DaemonUnderTest.Round], copied: [DaemonUnderTest.Round]) -> Row {
        let singleRates = single.map { $0.perOutput[0] }, copiedInput = copied.map { inputRate($0.perOutput) }
        return Row(
            transport: transport, dtype: dtype.rawValue, latentBytes: size,
            single: PipelineBench.combine(singleRates), copied: PipelineBench.combine(copiedInput),
            copiedPerOutput: (0..<copies).map { output in PipelineBench.combine(copied.map { $0.perOutput[output] }) },
            roundExtras: zip(singleRates, copiedInput).map { extra(single: $0, copied: $1) },
            singleKernelSeconds: median(single.compactMap(\.kernelSeconds)),
            copiedKernelSeconds: median(copied.compactMap(\.kernelSeconds)))
    }

    /// The input batches per second of a copy fan-out from its consumers' rates: every consumer
    /// receives every batch, so the mean of their rates, and the count all of them received.
    package static func inputRate(_ perOutput: [PipelineBench.Throughput]) -> PipelineBench.Throughput {
        let count = Double(max(perOutput.count, 1))
        return PipelineBench.Throughput(
            gigabytesPerSecond: perOutput.map(\.gigabytesPerSecond).reduce(0, +) / count,
            messagesPerSecond: perOutput.map(\.messagesPerSecond).reduce(0, +) / count,
            messages: perOutput.map(\.messages).min() ?? 0)
    }

    /// (B's time per batch − A's) / A's, from the rates of adjacent windows; 0 without a B rate.
    package static func extra(single: PipelineBench.Throughput, copied: PipelineBench.Throughput) -> Double {
        copied.messagesPerSecond > 0 ? single.messagesPerSecond / copied.messagesPerSecond - 1 : 0
    }
}

extension PipelineBench.Options {
    /// The fan-out comparison: ipc, f32, the sizes where the kernel is a fair share of a batch's time.
    public static func fanout(daemonBinary: String) -> Self {
        var options = Self(daemonBinary: daemonBinary)
        options.transports = [.ipc]
        options.dtypes = [.f32]
        options.sizes = [4 << 20, 32 << 20]
        return options
    }

    /// A smoke run of the fan-out comparison: 256 KiB, ipc, f32, short phases.
    public static func quickFanout(daemonBinary: String) -> Self {
        var options = quick(daemonBinary: daemonBinary)
        options.transports = [.ipc]
        options.dtypes = [.f32]
        return options
    }
}
