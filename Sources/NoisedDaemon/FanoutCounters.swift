import CoreMetrics
import NoisedProtocol
import Prometheus

/// The fan-out's own metrics, beside each output's (which carry `output=<name>`).
struct FanoutCounters: Sendable {
    let batches: CoreMetrics.Counter
    let copies: [(forwarded: CoreMetrics.Counter, dropped: CoreMetrics.Counter)]
    let inputDisconnects: CoreMetrics.Counter
    let badEnvelopes: CoreMetrics.Counter
    let unauthorized: CoreMetrics.Counter
    private let acknowledgements: [String: CoreMetrics.Counter]

    init(registry: PrometheusCollectorRegistry, outputs: [String]) {
        let factory = PrometheusMetricsFactory(registry: registry)
        func counter(_ name: String, _ help: String, _ labels: [(String, String)]) -> CoreMetrics.Counter {
            let descriptor = NoisedMetrics.descriptor(name, unit: "total", help)
            return CoreMetrics.Counter(label: descriptor.name, dimensions: labels,
                                       handler: registry.makeCounter(descriptor: descriptor, labels: labels), factory: factory)
        }
        batches = counter("fanout_batches_received", "Input batches the fan-out took, before any output saw them.", [])
        let copiesHelp = "Copies of input batches the fan-out handed to each output (forwarded) or skipped because its queue was full (dropped)."
        copies = outputs.map { name in
            (counter("fanout_copies", copiesHelp, [("output", name), ("result", "forwarded")]),
             counter("fanout_copies", copiesHelp, [("output", name), ("result", "dropped")]))
        }
        // Their own names: a metric name is either labelled by output everywhere or nowhere.
        inputDisconnects = counter(
            "fanout_input_disconnects", "Producer connections closed, including by ZeroMQ for a frame over input.max_message_bytes.", [])
        let rejectsHelp = "Input requests the fan-out refused before any output saw them, by reason."
        badEnvelopes = counter("fanout_rejected_batches", rejectsHelp, [("reason", RejectReason.badEnvelope.rawValue)])
        unauthorized = counter("fanout_rejected_batches", rejectsHelp, [("reason", "unauthorized")])
        acknowledgements = Dictionary(uniqueKeysWithValues: ["ok", "rejected", "unsent", "dropped"].map { status in
            (status, counter("fanout_acknowledgements", "Replies to producers on the acknowledged input, by status.", [("status", status)]))
        })
    }

    func acknowledgement(_ status: String) -> CoreMetrics.Counter { acknowledgements[status] ?? acknowledgements["dropped"]! }
}
