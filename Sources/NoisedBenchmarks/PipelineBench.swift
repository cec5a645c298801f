import Foundation
import NoisedRuntime
import NoiseKernel
import NoiseKernelCore

/// `noised bench pipeline`: producer → noised → consumer on loopback, beside a plain ZeroMQ relay
/// moving the same bytes between the same producer and consumer, per transport, dtype and size.
///
/// Each case starts a fresh `noised run` child (so its memory is the case's alone) and a fresh
/// relay, then saturates them in turn, `rounds` times each (noised, relay, noised, relay, ...), so
/// that load from other jobs on a shared machine falls on both alike; the ratio is the median of
/// the rounds' ratios. Then it sends batches one at a time through each idle pipeline for latency.
/// Throughput counts the batches the consumer received inside the measured windows.
public struct PipelineBench {
    public enum Transport: String, Sendable, Codable, CaseIterable { case ipc, tcp }

    public struct Options: Sendable {
        /// The noised executable to start (normally this process's own).
        public var daemonBinary: String
        public var transports: [Transport] = [.ipc, .tcp]
        public var dtypes: [ElementType] = [.f32, .bf16]
        /// Bytes of z_0 per message.
        public var sizes: [Int] = [256 << 10, 4 << 20, 32 << 20, 128 << 20]
        public var warmupSeconds = 1.0
        /// Measured seconds per case and side, split evenly over the rounds.
        public var secondsPerCase = 3.0
        /// Alternating noised and relay windows per case.
        public var rounds = 3
        /// Arrivals each measured window holds at least (it is lengthened for large messages).
        public var minimumMessagesPerRound = 8
        /// One-at-a-time batches for the idle-queue latency, bounded by count and time (at least
        /// three): 200 make the p99 of small messages more than the slowest one.
        public var lockstepMessages = 200
        public var lockstepSeconds = 1.5
        /// How long the daemon sits without input for the idle CPU figure.
        public var idleSeconds = 3.0
        public var workers = 2
        /// Input and output high-water marks of the daemon, and of the relay's and bench's sockets.
        public var highWaterMark = 4

        public init(daemonBinary: String) { self.daemonBinary = daemonBinary }

        /// A smoke run: the smallest size, short phases.
        public static func quick(daemonBinary: String) -> Options {
            var options = Options(daemonBinary: daemonBinary)
            options.sizes = [256 << 10]
            options.warmupSeconds = 0.2
            options.secondsPerCase = 0.5
            options.rounds = 1
            options.minimumMessagesPerRound = 3
            options.lockstepMessages = 5
            options.lockstepSeconds = 0.5
            options.idleSeconds = 1
            return options
        }
    }

    /// The median of the rounds' rates, and the messages counted in all of them.
    public struct Throughput: Sendable, Codable, Equatable {
        /// 10^9 bytes of z_0 per second.
        public var gigabytesPerSecond: Double
        public var messagesPerSecond: Double
        public var messages: Int

        package init(gigabytesPerSecond: Double, messagesPerSecond: Double, messages: Int) {
            self.gigabytesPerSecond = gigabytesPerSecond
            self.messagesPerSecond = messagesPerSecond
            self.messages = messages
        }
    }

    public struct Row: Sendable, Codable, Equatable {
        public var transport: Transport
        public var dtype: String
        public var latentBytes: Int
        public var noised: Throughput
        public var relay: Throughput
        /// noised's throughput over the relay's in each round (adjacent windows).
        public var roundRatios: [Double]
        /// The median of the rounds' ratios.
        public var noisedToRelay: Double { median(roundRatios) ?? 0 }
        /// End to end (producer's send → consumer's receive), one batch at a time.
        public var noisedIdleLatency: LatencySummary?
        public var relayIdleLatency: LatencySummary?
        /// End to end while saturated: mostly time spent waiting in full queues.
        public var noisedLoadedLatency: LatencySummary?
        /// The daemon's own arrival → send and kernel times (its metrics histograms), one batch at a
        /// time; nil when the daemon serves no such metrics.
        public var daemonArrivalToSend: LatencySummary?
        public var daemonKernel: LatencySummary?
        public var residentPeakBytes: Int
        /// Resident memory at the end of the measured window minus at its middle.
        public var residentGrowthBytes: Int
        /// (input HWM + output HWM + workers + 2) × largest message + 64 MiB.
        public var residentBoundBytes: Int
        /// The daemon's user + system CPU seconds per 10^9 bytes of z_0.
        public var cpuSecondsPerGigabyte: Double?

        package init(transport: Transport, dtype: String, latentBytes: Int, noised: Throughput, relay: Throughput,
                     roundRatios: [Double], noisedIdleLatency: LatencySummary?, relayIdleLatency: LatencySummary?,
                     noisedLoadedLatency: LatencySummary?, daemonArrivalToSend: LatencySummary?,
                     daemonKernel: LatencySummary?, residentPeakBytes: Int, residentGrowthBytes: Int,
                     residentBoundBytes: Int, cpuSecondsPerGigabyte: Double?) {
            self.transport = transport
            self.dtype = dtype
            self.latentBytes = latentBytes
            self.noised = noised
            self.relay = relay
            self.roundRatios = roundRatios
            self.noisedIdleLatency = noisedIdleLatency
            self.relayIdleLatency = relayIdleLatency
            self.noisedLoadedLatency = noisedLoadedLatency
            self.daemonArrivalToSend = daemonArrivalToSend
            self.daemonKernel = daemonKernel
            self.residentPeakBytes = residentPeakBytes
            self.residentGrowthBytes = residentGrowthBytes
            self.residentBoundBytes = residentBoundBytes
            self.cpuSecondsPerGigabyte = cpuSecondsPerGigabyte
        }
    }

    public struct Idle: Sendable, Codable, Equatable {
        public var seconds: Double
        public var cpuSeconds: Double
        public var fractionOfCore: Double { seconds > 0 ? cpuSeconds / seconds : 0 }

        package init(seconds: Double, cpuSeconds: Double) {
            self.seconds = seconds
            self.cpuSeconds = cpuSeconds
        }
    }

    public struct Report: Sendable, Codable, Equatable {
        public var rows: [Row] = []
        public var idle: Idle?

        package init(rows: [Row] = [], idle: Idle? = nil) {
            self.rows = rows
            self.idle = idle
        }
    }

    public let options: Options
    private let progress: (String) -> Void

    public init(options: Options, progress: @escaping (String) -> Void = { _ in }) {
        self.options = options
        self.progress = progress
    }

    public func run() throws -> Report {
        try Self.validate(options)
        HeapPolicy.keepFreedMemory()
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("noised-bench-\(getpid())").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        var report = Report()
        var caseNumber = 0
        for transport in options.transports {
            for dtype in options.dtypes {
                for size in options.sizes {
                    caseNumber += 1
                    progress("case \(caseNumber): \(transport.rawValue) \(dtype.rawValue) \(Self.formatSize(size))")
                    let measureIdle = report.idle == nil
                    let (row, idle) = try measure(transport, dtype, size, directory: directory, name: "case\(caseNumber)",
                                                  measureIdle: measureIdle)
                    report.rows.append(row)
                    if measureIdle { report.idle = idle }
                }
            }
        }
        return report
    }

    /// The options every pipeline bench (this one and the fan-out's) needs.
    static func validate(_ options: Options) throws {
        guard FileManager.default.isExecutableFile(atPath: options.daemonBinary) else {
            throw BenchError("the daemon binary \(options.daemonBinary) is not an executable file")
        }
        guard options.secondsPerCase > 0, options.warmupSeconds >= 0, options.idleSeconds >= 0, options.lockstepSeconds >= 0 else {
            throw BenchError("bench durations must be positive (case \(options.secondsPerCase) s, warm-up \(options.warmupSeconds) s)")
        }
        guard options.rounds >= 1 else { throw BenchError("the pipeline bench needs at least one round, got \(options.rounds)") }
        guard options.workers >= 1, options.highWaterMark >= 1, options.lockstepMessages >= 1 else {
            throw BenchError("workers (\(options.workers)), high-water mark (\(options.highWaterMark)) and lockstep messages (\(options.lockstepMessages)) must be at least 1")
        }
        guard !options.transports.isEmpty, !options.dtypes.isEmpty, !options.sizes.isEmpty else {
            throw BenchError("the pipeline bench needs at least one transport, dtype and size")
        }
    }

    /// An input endpoint and `outputs` output endpoints of one system under test.
    static func endpoints(_ transport: Transport, directory: String, name: String, outputs: Int = 1) throws
        -> (input: String, outputs: [String]) {
        switch transport {
        case .ipc: ("ipc://\(directory)/\(name)-in", (0..<outputs).map { "ipc://\(directory)/\(name)-out\($0)" })
        case .tcp: ("tcp://127.0.0.1:\(try ProcessStats.freeLoopbackPort())",
                    try (0..<outputs).map { _ in "tcp://127.0.0.1:\(try ProcessStats.freeLoopbackPort())" })
        }
    }

    private func measure(_ transport: Transport, _ dtype: ElementType, _ size: Int, directory: String, name: String,
                         measureIdle: Bool) throws -> (Row, Idle?) {
        let messages = try BenchMessages(latentBytes: size, dtype: dtype)
        let hwm = Int32(clamping: options.highWaterMark)
        // Enough batches for the daemon's and the relay's buffer pools to reach their working size.
        let warmupMessages = options.highWaterMark + 2

        let daemonEnds = try Self.endpoints(transport, directory: directory, name: name + "-noised")
        let metricsPort = try ProcessStats.freeLoopbackPort()
        let daemon = try BenchChild.daemon(
            binary: options.daemonBinary,
            settings: .init(input: daemonEnds.input, outputs: daemonEnds.outputs, workers: options.workers,
                            highWaterMark: options.highWaterMark, metricsPort: metricsPort),
            directory: directory, name: name)
        defer { daemon.stop() }
        let traffic = try BenchTraffic(input: daemonEnds.input, outputs: daemonEnds.outputs, messages: messages, highWaterMark: hwm)
        defer { traffic.close() }
        // The relay between its own producer and consumer; it idles while noised is measured.
        let relayEnds = try Self.endpoints(transport, directory: directory, name: name + "-relay")
        let relay = try BenchRelay.start(
            binary: options.daemonBinary,
            options: .init(input: relayEnds.input, output: relayEnds.outputs[0], latentBytes: size, dtype: dtype,
                           highWaterMark: options.highWaterMark),
            logPath: directory + "/\(name)-relay.log")
        defer { relay.stop() }
        let relayTraffic = try BenchTraffic(input: relayEnds.input, outputs: relayEnds.outputs, messages: messages, highWaterMark: hwm)
        defer { relayTraffic.close() }

        var resident: [(time: UInt64, bytes: Int)] = []
        var noisedRounds: [Throughput] = [], relayRounds: [Throughput] = [], cpuPerGigabyteRounds: [Double] = []
        var loadedLatencies: [Double] = []
        var lastWindow: Range<UInt64> = 0..<0
        let secondsPerRound = options.secondsPerCase / Double(options.rounds)
        for _ in 0..<options.rounds {
            var cpu: (first: (time: UInt64, seconds: Double)?, last: (time: UInt64, seconds: Double)?) = (nil, nil)
            let (consumed, window) = try traffic.saturate(
                warmupSeconds: options.warmupSeconds, warmupMessages: warmupMessages, seconds: secondsPerRound,
                minimumMessages: options.minimumMessagesPerRound
            ) { inWindow in
                let now = ProcessStats.monotonicNanoseconds()
                if let bytes = ProcessStats.residentBytes(pid: daemon.pid) { resident.append((now, bytes)) }
                if inWindow, let seconds = ProcessStats.cpuSeconds(pid: daemon.pid) {
                    if cpu.first == nil { cpu.first = (now, seconds) } else { cpu.last = (now, seconds) }
                }
            }
            let arrivals = consumed[0]
            guard arrivals.unstamped == 0 else { throw BenchError("\(arrivals.unstamped) noised batches lost their send stamp") }
            let noised = Self.throughput(arrivalTimes: arrivals.times, window: window, latentBytes: size)
            noisedRounds.append(noised)
            loadedLatencies += zip(arrivals.times, arrivals.latencies).filter { window.contains($0.0) }.map { Double($0.1) / 1e9 }
            lastWindow = window
            if let first = cpu.first, let last = cpu.last, last.time > first.time, noised.gigabytesPerSecond > 0 {
                let cores = (last.seconds - first.seconds) / (Double(last.time - first.time) / 1e9)
                cpuPerGigabyteRounds.append(cores / noised.gigabytesPerSecond)
            }
            let relayRun = try relayTraffic.saturate(
                warmupSeconds: options.warmupSeconds, warmupMessages: warmupMessages, seconds: secondsPerRound,
                minimumMessages: options.minimumMessagesPerRound) { _ in }
            relayRounds.append(Self.throughput(arrivalTimes: relayRun.arrivals[0].times, window: relayRun.window, latentBytes: size))
        }

        let scrapeBefore = DaemonMetrics.scrape(port: metricsPort)
        let noisedIdle = try traffic.lockstep(maxMessages: options.lockstepMessages, maxSeconds: options.lockstepSeconds)
        let scrapeAfter = DaemonMetrics.scrape(port: metricsPort)
        let relayIdle = try relayTraffic.lockstep(maxMessages: options.lockstepMessages, maxSeconds: options.lockstepSeconds)
        relayTraffic.close()
        relay.stop()
        let idle = measureIdle ? idleCPU(pid: daemon.pid) : nil
        traffic.close()
        daemon.stop()

        let largestMessage = max(messages.input.count, messages.relayOutput.count)
        let row = Row(
            transport: transport, dtype: dtype.rawValue, latentBytes: size,
            noised: Self.combine(noisedRounds), relay: Self.combine(relayRounds),
            roundRatios: zip(noisedRounds, relayRounds).map {
                $1.gigabytesPerSecond > 0 ? $0.gigabytesPerSecond / $1.gigabytesPerSecond : 0
            },
            noisedIdleLatency: LatencySummary(samples: noisedIdle),
            relayIdleLatency: LatencySummary(samples: relayIdle),
            noisedLoadedLatency: LatencySummary(samples: loadedLatencies),
            daemonArrivalToSend: DaemonMetrics.histogram(DaemonMetrics.endToEnd, before: scrapeBefore, after: scrapeAfter),
            daemonKernel: DaemonMetrics.histogram(DaemonMetrics.kernel, before: scrapeBefore, after: scrapeAfter),
            residentPeakBytes: resident.map(\.bytes).max() ?? 0,
            residentGrowthBytes: Self.lastHalfGrowth(resident, window: lastWindow),
            residentBoundBytes: (2 * options.highWaterMark + options.workers + 2) * largestMessage + (64 << 20),
            cpuSecondsPerGigabyte: median(cpuPerGigabyteRounds))
        return (row, idle)
    }

    /// Messages per second from the arrivals inside the window: the count of gaps between the
    /// first and last arrival over their span (exact for slow, large messages, where counting
    /// whole messages per window would round), or the count over the window when there are few.
    package static func throughput(arrivalTimes: [UInt64], window: Range<UInt64>, latentBytes: Int) -> Throughput {
        let inWindow = arrivalTimes.filter { window.contains($0) }
        var perSecond = Double(inWindow.count) / (Double(window.count) / 1e9)
        if inWindow.count >= 3, let first = inWindow.first, let last = inWindow.last, last > first {
            perSecond = Double(inWindow.count - 1) / (Double(last - first) / 1e9)
        }
        return Throughput(gigabytesPerSecond: perSecond * Double(latentBytes) / 1e9, messagesPerSecond: perSecond,
                          messages: inWindow.count)
    }


    /// The rounds' median rates and their total message count.
    package static func combine(_ rounds: [Throughput]) -> Throughput {
        Throughput(gigabytesPerSecond: median(rounds.map(\.gigabytesPerSecond)) ?? 0,
                   messagesPerSecond: median(rounds.map(\.messagesPerSecond)) ?? 0,
                   messages: rounds.map(\.messages).reduce(0, +))
    }

    /// The daemon's CPU while it has no input, after a short settle.
    private func idleCPU(pid: Int32) -> Idle? {
        Thread.sleep(forTimeInterval: 0.5)
        let start = ProcessStats.monotonicNanoseconds()
        guard let before = ProcessStats.cpuSeconds(pid: pid) else { return nil }
        Thread.sleep(forTimeInterval: options.idleSeconds)
        guard let after = ProcessStats.cpuSeconds(pid: pid) else { return nil }
        return Idle(seconds: Double(ProcessStats.monotonicNanoseconds() - start) / 1e9, cpuSeconds: after - before)
    }

    /// Resident memory at the last sample minus the first sample in the second half of the window.
    package static func lastHalfGrowth(_ samples: [(time: UInt64, bytes: Int)], window: Range<UInt64>) -> Int {
        let middle = window.lowerBound + UInt64(window.count / 2)
        guard let atMiddle = samples.first(where: { $0.time >= middle }), let last = samples.last else { return 0 }
        return last.bytes - atMiddle.bytes
    }

    /// "256K", "4M", "4MiB", "1G" or a byte count.
    package static func parseSize(_ text: String) throws -> Int {
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        let units: [(suffix: String, shift: Int)] = [("KiB", 10), ("MiB", 20), ("GiB", 30), ("K", 10), ("M", 20), ("G", 30), ("", 0)]
        for unit in units where trimmed.hasSuffix(unit.suffix) {
            guard let value = Int(trimmed.dropLast(unit.suffix.count)), value > 0 else { break }
            return value << unit.shift
        }
        throw BenchError("size '\(text)' must be a positive byte count, optionally with K, M or G (KiB, MiB, GiB)")
    }

    package static func formatSize(_ bytes: Int) -> String {
        for (shift, unit) in [(30, "GiB"), (20, "MiB"), (10, "KiB")] where bytes >= 1 << shift && bytes % (1 << shift) == 0 {
            return "\(bytes >> shift) \(unit)"
        }
        return "\(bytes) B"
    }
}

/// The middle value (the mean of the two middle values for an even count); nil when empty.
package func median(_ values: [Double]) -> Double? {
    guard !values.isEmpty else { return nil }
    let sorted = values.sorted()
    let middle = sorted.count / 2
    return sorted.count % 2 == 1 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2
}
