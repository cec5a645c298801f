import Foundation
import NoisedDaemon
import NoisedRuntime
import NoiseKernel
import Safetensors
import ZeroMQ

/// `noised tap`: a consumer that reports rate, bytes and the σ distribution as it moves, and with
/// `verify` checks every triple it receives.
public struct Tap {
    public struct Options: Sendable {
        public var endpoint: String
        public var bind = false
        /// Batches to take; 0 takes until stopped or `seconds` pass.
        public var count = 0
        public var seconds: Double?
        public var verify = false
        /// Seconds between progress reports.
        public var reportInterval = 2.0
        public init(endpoint: String) { self.endpoint = endpoint }
    }

    public struct Report: Sendable {
        public var batches = 0
        public var samples = 0
        public var bytes = 0
        public var seconds = 0.0
        /// Batches that were not valid messages or failed a check.
        public var failures = 0
        public var sigmas = SigmaHistogram()

        mutating func add(_ batch: TapBatch, bytes: Int) {
            batches += 1
            samples += batch.sampleCount
            self.bytes += bytes
            batch.sigmas.forEach { sigmas.add(Double($0)) }
        }
    }

    public let options: Options
    private let print: @Sendable (String) -> Void

    public init(options: Options, print: @escaping @Sendable (String) -> Void) {
        self.options = options
        self.print = print
    }

    public func run(until stop: () -> Bool) throws -> Report {
        let context = try ZMQContext()
        let socket = try ZMQSocket(context, type: .pull)
        try socket.setTimeouts(receive: 100)
        try socket.setLinger(milliseconds: 0)
        if options.bind { try socket.bind(options.endpoint) } else { try socket.connect(options.endpoint) }
        defer { socket.close() }

        let clock = ContinuousClock()
        var total = Report()
        var window = Report()
        var windowSteps: ClosedRange<Int64>?
        var start: ContinuousClock.Instant?
        var lastReport = clock.now
        var verifier = TripleVerifier()

        func report(final: Bool) {
            let elapsed = (clock.now - lastReport).seconds
            guard window.batches > 0 || final else { return }
            let steps = windowSteps.map { "\($0.lowerBound)-\($0.upperBound)" } ?? "-"
            print(String(format: "steps %@  %.1f batch/s  %.1f MB/s  σ mean %.3f  %@",
                         steps, Double(window.batches) / max(elapsed, 1e-9), Double(window.bytes) / max(elapsed, 1e-9) / 1e6,
                         window.sigmas.mean, window.sigmas.sparkline))
            window = Report()
            windowSteps = nil
            lastReport = clock.now
        }

        while options.count == 0 || total.batches < options.count {
            if stop() { break }
            if let seconds = options.seconds, let start, (clock.now - start).seconds >= seconds { break }
            guard let message = try socket.receive() else {
                if start == nil, let seconds = options.seconds, (clock.now - lastReport).seconds >= seconds { break }
                continue
            }
            if start == nil { start = clock.now; lastReport = clock.now }
            message.withUnsafeBytes { bytes in
                let batch: TapBatch
                do { batch = try TapBatch(bytes) } catch {
                    total.failures += 1
                    print("invalid message: \(error)")
                    return
                }
                if options.verify {
                    let problems = verifier.check(batch)
                    if !problems.isEmpty { total.failures += 1 }
                    for problem in problems { print("verify: seq \(batch.seq.map(String.init) ?? "?"): \(problem)") }
                }
                total.add(batch, bytes: bytes.count)
                window.add(batch, bytes: bytes.count)
                if let step = batch.step {
                    windowSteps = windowSteps.map { min($0.lowerBound, step)...max($0.upperBound, step) } ?? step...step
                }
            }
            if (clock.now - lastReport).seconds >= options.reportInterval { report(final: false) }
        }
        report(final: true)
        total.seconds = start.map { (clock.now - $0).seconds } ?? 0
        return total
    }
}

/// A histogram of σ over [0, 1] in 20 bins.
public struct SigmaHistogram: Sendable {
    public private(set) var bins = [Int](repeating: 0, count: 20)
    private var sum = 0.0
    public private(set) var count = 0

    public init() {}

    public mutating func add(_ sigma: Double) {
        bins[min(bins.count - 1, max(0, Int(sigma * Double(bins.count))))] += 1
        sum += sigma
        count += 1
    }

    public var mean: Double { count == 0 ? .nan : sum / Double(count) }

    /// One character per bin, its height the bin's share of the fullest bin.
    public var sparkline: String {
        let levels = Array(" ▁▂▃▄▅▆▇█")
        let top = max(1, bins.max() ?? 1)
        return "[" + String(bins.map { levels[($0 * (levels.count - 1) + top - 1) / top] }) + "]"
    }

    /// A bar per bin, for the closing report.
    public func bars(width: Int = 40) -> [String] {
        let top = max(1, bins.max() ?? 1)
        return bins.indices.map { i in
            let lo = Double(i) / Double(bins.count)
            return String(format: "%.2f-%.2f %@ %d", lo, lo + 1 / Double(bins.count),
                          String(repeating: "█", count: bins[i] * width / top), bins[i])
        }
    }
}
