import Foundation

/// One bench daemon (`noised run` on a generated config) with its producer, a consumer per output
/// and its metrics port: one side of a `DaemonComparison`.
struct DaemonUnderTest {
    /// One saturated round: each consumer's rate, the daemon's mean kernel time per pass from the
    /// start of the measured window to the end of the drain, and its metrics after the drain.
    struct Round {
        var perOutput: [PipelineBench.Throughput]
        var kernelSeconds: Double?
        /// The exposition text scraped once the pipeline was drained; nil without metrics.
        var metrics: String?
    }

    let daemon: BenchChild
    let traffic: BenchTraffic
    let metricsPort: Int
    let latentBytes: Int

    init(_ options: PipelineBench.Options, _ transport: PipelineBench.Transport, _ messages: BenchMessages,
         _ variant: DaemonComparison.Variant, directory: String, name: String) throws {
        let ends = try PipelineBench.endpoints(transport, directory: directory, name: name, outputs: variant.outputs)
        metricsPort = try ProcessStats.freeLoopbackPort()
        daemon = try BenchChild.daemon(
            binary: options.daemonBinary,
            settings: .init(input: ends.input, outputs: ends.outputs, workers: options.workers,
                            highWaterMark: options.highWaterMark, metricsPort: metricsPort, coupling: variant.coupling),
            directory: directory, name: name)
        traffic = try BenchTraffic(input: ends.input, outputs: ends.outputs, messages: messages,
                                   highWaterMark: Int32(clamping: options.highWaterMark))
        latentBytes = messages.latentBytes
    }

    func stop() {
        traffic.close()
        daemon.stop()
    }

    func saturate(_ options: PipelineBench.Options) throws -> Round {
        var windowStartScrape: String?, scraped = false
        let (arrivals, window) = try traffic.saturate(
            // Enough batches for the daemon's buffer pools to reach their working size.
            warmupSeconds: options.warmupSeconds, warmupMessages: options.highWaterMark + 2,
            seconds: options.secondsPerCase / Double(options.rounds), minimumMessages: options.minimumMessagesPerRound
        ) { inWindow in
            if inWindow && !scraped {
                windowStartScrape = DaemonMetrics.scrape(port: metricsPort)
                scraped = true
            }
        }
        let unstamped = arrivals.map(\.unstamped).reduce(0, +)
        guard unstamped == 0 else { throw BenchError("\(unstamped) noised batches lost their send stamp") }
        let after = DaemonMetrics.scrape(port: metricsPort)
        return Round(
            perOutput: arrivals.map { PipelineBench.throughput(arrivalTimes: $0.times, window: window, latentBytes: latentBytes) },
            kernelSeconds: DaemonMetrics.meanSeconds(DaemonMetrics.kernel, before: windowStartScrape, after: after),
            metrics: after)
    }
}
