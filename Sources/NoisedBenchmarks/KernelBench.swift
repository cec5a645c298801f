import Foundation
import Glibc
import NoisedRuntime
import NoiseKernel
import NoiseKernelCore

/// `noised bench`: throughput of the fused noising kernel per dtype pair and worker count, next to
/// a memcpy moving the same bytes (read z_0, write z_t and eps) on the same threads and, when
/// `numpy` is set, numpy noising the same tensor on one thread.
public struct KernelBench: Sendable {
    public struct Options: Sendable {
        /// Batch shape; the first dimension is the sample count. Default: a Mochi-shaped latent batch.
        public var shape: [Int] = [2, 12, 28, 60, 106]
        public var workerCounts: [Int] = [1, 2]
        /// Kernel implementations to measure (all that this CPU runs, by default).
        public var implementations: [NoiseKernel.Implementation] = NoiseKernel.Implementation.allCases.filter(\.isAvailable)
        public var typePairs: [(input: ElementType, output: ElementType)] = [(.f32, .f32), (.bf16, .bf16), (.f16, .f16)]
        public var secondsPerCase: Double = 1
        /// Also measure σ per frame along this axis (`schedule.frames`), beside one σ per sample;
        /// nil, or an axis the shape lacks, skips it.
        public var frameAxis: Int? = 2
        /// Also measure posterior sampling followed by the kernel (`input.posterior`).
        public var posterior = true
        public var seed: UInt64 = 0x6E6F_6973_6564
        /// numpy's rate for each dtype whose input and output types are equal; nil skips it.
        public var numpy: NumpyComparison?

        public init() {}
    }

    public struct Row: Sendable, Codable, Equatable {
        public var implementation: String
        public var input: String
        public var output: String
        public var workers: Int
        /// "sample": one σ per sample; "frame": one per frame (`Options.frameAxis`); "posterior":
        /// z_0 sampled from a mean and logvar first (`input.posterior`), one σ per sample.
        public var variant: String
        public var elements: Int
        public var repeats: Int
        /// Median over repeats, 10^9 elements per second.
        public var kernelGelemPerSecond: Double
        /// The fastest repeat: what the kernel does when nothing else shares the core (load from
        /// other jobs only ever slows a repeat down).
        public var kernelBestGelemPerSecond: Double
        /// Elements over the CPU time the kernel used (all threads): a per-core rate that another
        /// process taking the cores away does not lower, unlike the wall-clock one.
        public var kernelGelemPerCPUSecond: Double
        public var memcpyGelemPerSecond: Double
        /// numpy on one thread, same tensor and dtype (median over repeats); nil when not measured.
        public var numpyGelemPerSecond: Double?
        public var kernelToMemcpy: Double { kernelGelemPerSecond / memcpyGelemPerSecond }
        /// The kernel's rate per worker over numpy's single-threaded rate.
        public var kernelPerCoreToNumpy: Double? { numpyGelemPerSecond.map { kernelGelemPerSecond / Double(workers) / $0 } }
    }

    public var options: Options

    public init(options: Options = Options()) {
        self.options = options
    }

    public func run() throws -> [Row] {
        guard options.shape.count >= 1, options.shape.allSatisfy({ $0 > 0 }) else {
            throw KernelBenchError.badShape(options.shape)
        }
        if let bad = options.workerCounts.first(where: { $0 < 1 }) { throw KernelBenchError.badWorkerCount(bad) }
        if let missing = options.implementations.first(where: { !$0.isAvailable }) {
            throw KernelBenchError.unavailableImplementation(missing.rawValue)
        }
        guard options.secondsPerCase > 0 else { throw KernelBenchError.badDuration(options.secondsPerCase) }
        var rows: [Row] = []
        var numpyRates: [String: Double] = [:]
        var numpyMeasured: Set<String> = []
        for workers in options.workerCounts {
            let pool = WorkerPool(workers: workers)
            defer { pool.shutdown() }
            rows += measure(options.typePairs, pool: pool)
            // numpy right after the first worker count's cases, never beside them: load from other jobs
            // on a shared machine changes over minutes, so the two are measured as close
            // together as they can be.
            let dtypes = options.typePairs.filter { $0.input == $0.output }.map(\.input.rawValue)
                .reduce(into: [String]()) { if !numpyMeasured.contains($1) && !$0.contains($1) { $0.append($1) } }
            if let numpy = options.numpy, !dtypes.isEmpty {
                numpyMeasured.formUnion(dtypes)
                numpyRates.merge(try numpy.run(shape: options.shape, dtypes: dtypes, seconds: options.secondsPerCase)) { $1 }
            }
        }
        for index in rows.indices where rows[index].input == rows[index].output {
            rows[index].numpyGelemPerSecond = numpyRates[rows[index].input]
        }
        return rows
    }

    /// Every implementation and a memcpy for every dtype pair at one worker count, taking turns
    /// repeat by repeat: load from other jobs changes over seconds, and turns spread it evenly over
    /// the cases being compared.
    private func measure(_ pairs: [(input: ElementType, output: ElementType)], pool: WorkerPool) -> [Row] {
        let sampleCount = options.shape[0]
        let elementsPerSample = options.shape.dropFirst().reduce(1, *)
        let total = sampleCount * elementsPerSample
        let ranges = NoiseKernel.partition(totalElements: total, workers: pool.workers)
        let axis = options.frameAxis.flatMap { $0 >= 1 && $0 < options.shape.count ? $0 : nil }
        let layout = axis.map { FrameLayout(frames: options.shape[$0], frameElements: options.shape[($0 + 1)...].reduce(1, *)) }
        let buffers = pairs.map {
            BenchBuffers(elements: total, input: $0.input, output: $0.output, samples: sampleCount, frames: layout?.frames ?? 1)
        }
        defer { buffers.forEach { $0.deallocate() } }
        // Per pair: one case per implementation (and per σ layout), then the memcpy.
        var cases: [() -> Void] = []
        for (pair, buffer) in zip(pairs, buffers) {
            let batch = NoiseBatch(
                sampleCount: sampleCount, elementsPerSample: elementsPerSample,
                input: UnsafeRawBufferPointer(start: buffer.input, count: total * pair.input.byteCount), inputType: pair.input,
                zt: UnsafeMutableRawBufferPointer(start: buffer.zt, count: total * pair.output.byteCount),
                eps: UnsafeMutableRawBufferPointer(start: buffer.eps, count: total * pair.output.byteCount), clean: nil,
                outputType: pair.output,
                sigmas: UnsafeBufferPointer(buffer.sigmas), noiseIDs: UnsafeBufferPointer(buffer.noiseIDs))
            // Unsafe: the workers only read it, and `buffers` outlive the measurement.
            nonisolated(unsafe) let logvar = UnsafeRawBufferPointer(start: buffer.logvar, count: total * pair.input.byteCount)
            let posterior = PosteriorSample(seed: options.seed)
            let framed = layout.map { layout in
                NoiseBatch(sampleCount: sampleCount, elementsPerSample: elementsPerSample, input: batch.input, inputType: pair.input,
                           zt: batch.zt, eps: batch.eps, clean: nil, outputType: pair.output,
                           sigmas: UnsafeBufferPointer(buffer.frameSigmas), noiseIDs: batch.noiseIDs, layout: layout)
            }
            for implementation in options.implementations {
                let kernel = NoiseKernel(stream: NoiseStream(seed: options.seed), implementation: implementation)
                for batch in [batch] + (framed.map { [$0] } ?? []) {
                    cases.append { pool.run(parts: ranges.count) { part in kernel.run(batch, elements: ranges[part]) } }
                }
                if options.posterior {
                    // As the daemon does it: z_0 drawn from the mean and logvar in the kernel's pass.
                    cases.append {
                        pool.run(parts: ranges.count) { part in
                            _ = posterior.noise(batch, logvar: logvar, kernel: kernel, elements: ranges[part])
                        }
                    }
                }
            }
            cases.append { pool.run(parts: ranges.count) { part in buffer.copy(ranges[part]) } }
        }
        let rates = takeTurns(cases, elements: total, seconds: options.secondsPerCase * Double(cases.count))
        let layouts = ["sample"] + (layout == nil ? [] : ["frame"]) + (options.posterior ? ["posterior"] : [])
        let kernelCases = options.implementations.flatMap { implementation in layouts.map { (implementation, $0) } }
        let perPair = kernelCases.count + 1
        return pairs.enumerated().flatMap { index, pair in
            let pairRates = rates[(index * perPair)..<((index + 1) * perPair)]
            let memcpy = pairRates.last!
            return zip(kernelCases, pairRates).map { kernelCase, rate in
                Row(
                    implementation: kernelCase.0.rawValue, input: pair.input.rawValue, output: pair.output.rawValue,
                    workers: pool.workers, variant: kernelCase.1, elements: total, repeats: rate.repeats,
                    kernelGelemPerSecond: rate.median, kernelBestGelemPerSecond: rate.best,
                    kernelGelemPerCPUSecond: rate.perCPUSecond, memcpyGelemPerSecond: memcpy.median)
            }
        }
    }

    private struct Rate {
        var median: Double
        var best: Double
        var repeats: Int
        var perCPUSecond: Double
    }

    /// Runs each case once to warm up, then all of them in turn, one repeat each, for about
    /// `seconds` and at least three rounds.
    private func takeTurns(_ cases: [() -> Void], elements: Int, seconds: Double) -> [Rate] {
        let clock = ContinuousClock()
        cases.forEach { $0() }
        var rates = [[Double]](repeating: [], count: cases.count)
        var cpuSeconds = [Double](repeating: 0, count: cases.count)
        let deadline = clock.now + .milliseconds(Int64(seconds * 1000))
        repeat {
            for (index, body) in cases.enumerated() {
                let cpuStart = Self.processCPUSeconds()
                let elapsed = clock.measure(body)
                cpuSeconds[index] += Self.processCPUSeconds() - cpuStart
                let wall = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) * 1e-18
                rates[index].append(Double(elements) / wall / 1e9)
            }
        } while clock.now < deadline || rates[0].count < 3
        return zip(rates, cpuSeconds).map { caseRates, cpu in
            let sorted = caseRates.sorted()
            return Rate(median: sorted[sorted.count / 2], best: sorted.last!, repeats: sorted.count,
                        perCPUSecond: Double(elements * sorted.count) / max(cpu, 1e-9) / 1e9)
        }
    }

    /// User + system CPU seconds of this process so far (every thread; idle workers sleep).
    private static func processCPUSeconds() -> Double {
        var usage = rusage()
        getrusage(RUSAGE_SELF.rawValue, &usage)
        return Double(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec)
            + Double(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) * 1e-6
    }

    public static func renderTable(_ rows: [Row]) -> String {
        let withNumpy = rows.contains { $0.numpyGelemPerSecond != nil }
        var lines = ["kernel      input  output  workers  variant    kernel Gelem/s  best     per CPU-s  memcpy Gelem/s  kernel/memcpy"
            + (withNumpy ? "  numpy Gelem/s (1 thread)  kernel/numpy per core" : "")]
        for row in rows {
            var line = row.implementation.padding(toLength: 12, withPad: " ", startingAt: 0)
                + row.input.padding(toLength: 7, withPad: " ", startingAt: 0)
                + row.output.padding(toLength: 8, withPad: " ", startingAt: 0)
                + String(row.workers).padding(toLength: 9, withPad: " ", startingAt: 0)
                + row.variant.padding(toLength: 11, withPad: " ", startingAt: 0)
                + String(format: "%-16.3f%-9.3f%-11.3f%-16.3f%-15.3f", row.kernelGelemPerSecond, row.kernelBestGelemPerSecond,
                         row.kernelGelemPerCPUSecond, row.memcpyGelemPerSecond, row.kernelToMemcpy)
            if withNumpy, let numpy = row.numpyGelemPerSecond, let ratio = row.kernelPerCoreToNumpy {
                line += String(format: "%-26.3f%.1f", numpy, ratio)
            } else if withNumpy {
                line += "n/a"
            }
            lines.append(line.trimmingCharacters(in: .whitespaces))
        }
        // Each variant over the per-sample case it ran beside.
        for row in rows where row.variant != "sample" {
            guard let plain = rows.first(where: {
                $0.variant == "sample" && $0.implementation == row.implementation && $0.input == row.input
                    && $0.output == row.output && $0.workers == row.workers
            }) else { continue }
            lines.append(String(format: "%@ / sample, %@ %@->%@, %d worker(s): %.3f", row.variant, row.implementation, row.input,
                                row.output, row.workers, row.kernelGelemPerSecond / plain.kernelGelemPerSecond))
        }
        return lines.joined(separator: "\n") + "\n"
    }

    public static func renderJSON(_ rows: [Row]) throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        return String(decoding: try encoder.encode(rows), as: UTF8.self) + "\n"
    }
}

public enum KernelBenchError: Error, CustomStringConvertible, Equatable {
    case badShape([Int])
    case badWorkerCount(Int)
    case badDuration(Double)
    case unavailableImplementation(String)

    public var description: String {
        switch self {
        case .badShape(let shape): "bench shape \(shape) must have at least one dimension, all positive"
        case .badWorkerCount(let count): "bench worker count \(count) must be at least 1"
        case .badDuration(let seconds): "bench seconds per case \(seconds) must be positive"
        case .unavailableImplementation(let name): "bench kernel implementation \(name) does not run on this CPU"
        }
    }
}

/// The batch memory of one bench case; z_0 holds a deterministic spread of finite values.
// @unchecked: raw memory of one bench case; workers write disjoint ranges and are joined before it is read.
private struct BenchBuffers: @unchecked Sendable {
    let input: UnsafeMutableRawPointer
    let zt: UnsafeMutableRawPointer
    let eps: UnsafeMutableRawPointer
    let sigmas: UnsafeMutableBufferPointer<Float>
    let frameSigmas: UnsafeMutableBufferPointer<Float>
    /// A posterior's logvar beside `input` as its mean.
    let logvar: UnsafeMutableRawPointer
    let noiseIDs: UnsafeMutableBufferPointer<UInt64>
    let inputType: ElementType
    let outputType: ElementType

    init(elements: Int, input inputType: ElementType, output outputType: ElementType, samples: Int, frames: Int) {
        self.inputType = inputType
        self.outputType = outputType
        input = .allocate(byteCount: elements * inputType.byteCount, alignment: 64)
        zt = .allocate(byteCount: elements * outputType.byteCount, alignment: 64)
        eps = .allocate(byteCount: elements * outputType.byteCount, alignment: 64)
        for index in 0..<elements {
            inputType.store(Float(index % 4093) / 1024 - 2, to: input, at: index)
        }
        logvar = .allocate(byteCount: elements * inputType.byteCount, alignment: 64)
        for index in 0..<elements { inputType.store(Float(index % 61) / 10 - 5, to: logvar, at: index) }
        // Touch the outputs once so page faults stay out of the measurement.
        zt.initializeMemory(as: UInt8.self, repeating: 0, count: elements * outputType.byteCount)
        eps.initializeMemory(as: UInt8.self, repeating: 0, count: elements * outputType.byteCount)
        sigmas = .allocate(capacity: samples)
        noiseIDs = .allocate(capacity: samples)
        // σ changing every frame, 0 and 1 (the exact paths) among them.
        frameSigmas = .allocate(capacity: samples * frames)
        for index in frameSigmas.indices { frameSigmas[index] = Float(index % 11) / 10 }
        for sample in 0..<samples {
            sigmas[sample] = Float(sample + 1) / Float(samples + 2)
            noiseIDs[sample] = UInt64(sample)
        }
    }

    /// The memcpy baseline for elements [range): z_0 bytes into both outputs.
    func copy(_ range: Range<Int>) {
        let inBytes = inputType.byteCount, outBytes = outputType.byteCount
        let byteCount = range.count * min(inBytes, outBytes)
        memcpy(zt + range.lowerBound * outBytes, input + range.lowerBound * inBytes, byteCount)
        memcpy(eps + range.lowerBound * outBytes, input + range.lowerBound * inBytes, byteCount)
    }

    func deallocate() {
        input.deallocate()
        zt.deallocate()
        eps.deallocate()
        sigmas.deallocate()
        frameSigmas.deallocate()
        logvar.deallocate()
        noiseIDs.deallocate()
    }
}
