import CoreMetrics
import Prometheus
import Synchronization

/// The daemon's metrics: swift-metrics handles backed by one Prometheus registry, which the
/// metrics server renders. Each instance has its own registry (no global bootstrap), so tests
/// and several daemons in one process do not share counts.
public final class NoisedMetrics: Sendable {
    public let registry: PrometheusCollectorRegistry

    public let batchesIn: CoreMetrics.Counter
    public let samplesIn: CoreMetrics.Counter
    public let bytesIn: CoreMetrics.Counter
    public let batchesOut: CoreMetrics.Counter
    public let samplesOut: CoreMetrics.Counter
    public let bytesOut: CoreMetrics.Counter
    public let feedbackReports: CoreMetrics.Counter
    public let feedbackReportsRejected: CoreMetrics.Counter
    public let feedbackReportsStale: CoreMetrics.Counter
    public let feedbackResumes: CoreMetrics.Counter
    public let inputDisconnects: CoreMetrics.Counter
    public let reloads: CoreMetrics.Counter
    public let reloadFailures: CoreMetrics.Counter
    /// Writes of the state file (reservations and saves) that failed.
    public let stateWriteFailures: CoreMetrics.Counter
    /// Metrics HTTP connections closed on accept because the connection cap was reached.
    public let metricsConnectionsRefused: CoreMetrics.Counter
    /// The curriculum step of the last batch.
    public let step: Meter
    /// Output messages handed to ZeroMQ whose buffers have not come back yet.
    public let pendingOutput: Meter
    /// σ of every sample sent; buckets 0.05 wide over [0, 1].
    public let sigma: Recorder
    /// With `schedule.coupling`, the last batch's mean transport cost per element: of the samples'
    /// own noise streams, and of the streams the coupling gave them.
    public let independentCost: Meter
    public let coupledCost: Meter
    /// The kernel's time for one batch.
    public let kernelLatency: CoreMetrics.Timer
    /// From a batch's arrival to its output being handed to ZeroMQ.
    public let endToEndLatency: CoreMetrics.Timer

    public static let sigmaBuckets: [Double] = (1...20).map { Double($0) / 20 }
    /// Latency buckets: the Renard R10 series (steps of 25 to 28 %) from 20 µs to 800 ms, fine
    /// enough to compare a batch's time in the daemon with its kernel time at any message size,
    /// then 1, 2.5, 5 and 10 s.
    public static let latencyBuckets: [Duration] = {
        let series = [100, 125, 160, 200, 250, 315, 400, 500, 630, 800]
        var bounds: [Duration] = []
        for decade in [Duration.nanoseconds(100), .microseconds(1), .microseconds(10), .microseconds(100), .milliseconds(1)] {
            bounds += series.map { decade * $0 }
        }
        return Array(bounds.drop { $0 < .microseconds(20) }) + [.seconds(1), .milliseconds(2500), .seconds(5), .seconds(10)]
    }()

    private let factory: PrometheusMetricsFactory
    /// Labels every metric of this instance carries: `output=<name>` for one output of a fan-out.
    private let labels: [(String, String)]
    private let rejectCounters = Mutex<[String: CoreMetrics.Counter]>([:])
    private let binWeightGauges = Mutex<[Int: Meter]>([:])
    private let ackCounters = Mutex<[String: CoreMetrics.Counter]>([:])

    /// - Parameter labels: carried by every metric; several instances with different labels can
    ///   share one registry.
    public init(registry: PrometheusCollectorRegistry = PrometheusCollectorRegistry(), labels: [(String, String)] = []) {
        self.registry = registry
        self.labels = labels
        let factory = PrometheusMetricsFactory(registry: registry)
        self.factory = factory
        func counter(_ name: String, _ help: String) -> CoreMetrics.Counter {
            let descriptor = Self.descriptor(name, unit: "total", help)
            return CoreMetrics.Counter(label: descriptor.name, dimensions: labels,
                                       handler: registry.makeCounter(descriptor: descriptor, labels: labels), factory: factory)
        }
        func timer(_ name: String, _ help: String) -> CoreMetrics.Timer {
            let descriptor = Self.descriptor(name, unit: "seconds", help)
            let histogram = registry.makeDurationHistogram(descriptor: descriptor, labels: labels, buckets: Self.latencyBuckets)
            return CoreMetrics.Timer(label: descriptor.name, dimensions: labels, handler: histogram, factory: factory)
        }
        batchesIn = counter("batches_received", "Input batches received (valid or not).")
        samplesIn = counter("samples_received", "Samples in valid input batches.")
        bytesIn = counter("bytes_received", "Bytes of input messages received.")
        batchesOut = counter("batches_sent", "Noised batches handed to ZeroMQ for sending.")
        samplesOut = counter("samples_sent", "Samples in noised batches sent.")
        bytesOut = counter("bytes_sent", "Bytes of output messages sent.")
        feedbackReports = counter("feedback_reports", "Trainer reports received, valid or not.")
        feedbackReportsRejected = counter("feedback_reports_rejected", "Trainer loss reports rejected as malformed.")
        feedbackReportsStale = counter("feedback_reports_stale", "Trainer reports ignored: their generation is older than the running one.")
        feedbackResumes = counter("feedback_resumes", "Trainer reports that started a new generation (a resume), moving the step.")
        inputDisconnects = counter("input_disconnects", "Producer connections closed, including by ZeroMQ for a frame over input.max_message_bytes.")
        reloads = counter("reloads", "Configuration reloads applied (SIGHUP).")
        reloadFailures = counter("reload_failures", "Configuration reloads refused; the running configuration was kept.")
        stateWriteFailures = counter("state_write_failures", "Writes of state_dir/state.json that failed; while noise ids cannot be reserved no batch is taken.")
        metricsConnectionsRefused = counter("metrics_connections_refused", "Connections to the metrics listener closed at once because it had its maximum open.")
        let stepDescriptor = Self.descriptor("step", unit: "", "Curriculum step of the last batch.")
        step = Meter(label: stepDescriptor.name, dimensions: labels,
                     handler: registry.makeGauge(descriptor: stepDescriptor, labels: labels), factory: factory)
        let queueLabels = labels + [("queue", "pending_output")]
        pendingOutput = Meter(label: Self.queueDepthDescriptor.name, dimensions: queueLabels,
                              handler: registry.makeGauge(descriptor: Self.queueDepthDescriptor, labels: queueLabels), factory: factory)
        let sigmaDescriptor = Self.descriptor("sigma", unit: "", "Noise level σ of each sample sent.")
        let sigmaHistogram = registry.makeValueHistogram(descriptor: sigmaDescriptor, labels: labels, buckets: Self.sigmaBuckets)
        sigma = Recorder(label: sigmaDescriptor.name, dimensions: labels, aggregate: true, handler: sigmaHistogram, factory: factory)
        let costDescriptor = Self.descriptor(
            "coupling_cost", unit: "", "Mean squared distance per element between z_0 and its noise in the last batch, by pairing.")
        func cost(_ pairing: String) -> Meter {
            let costLabels = labels + [("pairing", pairing)]
            return Meter(label: costDescriptor.name, dimensions: costLabels,
                         handler: registry.makeGauge(descriptor: costDescriptor, labels: costLabels), factory: factory)
        }
        independentCost = cost("independent")
        coupledCost = cost("coupled")
        kernelLatency = timer("kernel", "Time the noising kernel took per batch.")
        endToEndLatency = timer("end_to_end", "Time from receiving a batch to handing its output to ZeroMQ.")
    }

    /// `noised_<name>_<unit>` with its HELP text.
    static func descriptor(_ name: String, unit: String, _ help: String) -> MetricNameDescriptor {
        MetricNameDescriptor(namespace: "noised", metricName: name, unitName: unit, helpText: help)
    }

    private static var rejectsDescriptor: MetricNameDescriptor { descriptor("rejected_batches", unit: "total", "Input batches dropped as invalid, by reason.") }
    private static var binWeightDescriptor: MetricNameDescriptor { descriptor("adaptive_bin_weight", unit: "", "Adaptive σ sampler weight of each bin.") }
    private static var queueDepthDescriptor: MetricNameDescriptor { descriptor("queue_depth", unit: "", "Items waiting in each of the daemon's queues.") }

    /// Batches dropped as invalid, by reason (e.g. the protocol error's name).
    public func rejects(reason: String) -> CoreMetrics.Counter {
        rejectCounters.withLock { counters in
            if let counter = counters[reason] { return counter }
            let labels = self.labels + [("reason", reason)]
            let handler = registry.makeCounter(descriptor: Self.rejectsDescriptor, labels: labels)
            let counter = CoreMetrics.Counter(label: Self.rejectsDescriptor.name, dimensions: labels, handler: handler, factory: factory)
            counters[reason] = counter
            return counter
        }
    }

    /// Replies on the acknowledged input, by status (ok, rejected, unsent; dropped: a reply the
    /// producer was not there to take).
    public func acknowledgements(status: String) -> CoreMetrics.Counter {
        ackCounters.withLock { counters in
            if let counter = counters[status] { return counter }
            let descriptor = Self.descriptor("acknowledgements", unit: "total", "Replies to acknowledged-input batches, by status.")
            let labels = self.labels + [("status", status)]
            let counter = CoreMetrics.Counter(label: descriptor.name, dimensions: labels,
                                              handler: registry.makeCounter(descriptor: descriptor, labels: labels), factory: factory)
            counters[status] = counter
            return counter
        }
    }

    /// The adaptive sampler's weight of σ bin `bin`.
    public func binWeight(_ bin: Int) -> Meter {
        binWeightGauges.withLock { gauges in
            if let gauge = gauges[bin] { return gauge }
            let labels = self.labels + [("bin", String(bin))]
            let handler = registry.makeGauge(descriptor: Self.binWeightDescriptor, labels: labels)
            let gauge = Meter(label: Self.binWeightDescriptor.name, dimensions: labels, handler: handler, factory: factory)
            gauges[bin] = gauge
            return gauge
        }
    }

    /// The exposition text of every metric.
    public func render() -> String { registry.emitToString() }
}
