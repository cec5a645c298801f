/// p50 and p99 of a set of latencies, in seconds.
public struct LatencySummary: Sendable, Codable, Equatable {
    public var p50: Double
    public var p99: Double
    public var count: Int

    public init(p50: Double, p99: Double, count: Int) {
        self.p50 = p50
        self.p99 = p99
        self.count = count
    }

    /// Nearest-rank percentiles of `samples`; nil when there are none.
    public init?(samples: [Double]) {
        guard !samples.isEmpty else { return nil }
        let sorted = samples.sorted()
        func rank(_ q: Double) -> Double {
            sorted[min(sorted.count - 1, max(0, Int((q * Double(sorted.count)).rounded(.up)) - 1))]
        }
        self.init(p50: rank(0.5), p99: rank(0.99), count: sorted.count)
    }
}

/// A Prometheus histogram read from the exposition text: cumulative counts per upper bound.
package struct PrometheusHistogram: Sendable, Equatable {
    /// (upper bound `le`, cumulative count), ascending; the last bound is +infinity.
    package var buckets: [(bound: Double, count: Double)]

    package static func == (a: Self, b: Self) -> Bool {
        a.buckets.map(\.bound) == b.buckets.map(\.bound) && a.buckets.map(\.count) == b.buckets.map(\.count)
    }

    package init(buckets: [(bound: Double, count: Double)]) { self.buckets = buckets }

    /// The `<name>_bucket{le="..."} count` lines of `name` (labels other than `le` are not expected).
    package init?(named name: String, in exposition: String) {
        var buckets: [(bound: Double, count: Double)] = []
        let prefix = name + "_bucket{"
        for line in exposition.split(separator: "\n") where line.hasPrefix(prefix) {
            guard let leStart = line.range(of: "le=\""), let leEnd = line[leStart.upperBound...].firstIndex(of: "\""),
                  let countText = line.split(separator: " ").last, let count = Double(countText) else { continue }
            let boundText = line[leStart.upperBound..<leEnd]
            guard let bound = boundText == "+Inf" ? Double.infinity : Double(boundText) else { continue }
            buckets.append((bound, count))
        }
        guard !buckets.isEmpty else { return nil }
        self.buckets = buckets.sorted { $0.bound < $1.bound }
    }

    /// The observations made between `earlier` and this reading of the same histogram.
    package func subtracting(_ earlier: PrometheusHistogram) -> PrometheusHistogram {
        guard earlier.buckets.map(\.bound) == buckets.map(\.bound) else { return self }
        return PrometheusHistogram(buckets: zip(buckets, earlier.buckets).map { ($0.bound, $0.count - $1.count) })
    }

    package var total: Double { buckets.last?.count ?? 0 }

    /// Quantile q as Prometheus' histogram_quantile computes it: linear within the bucket that
    /// holds rank q·total (the lower edge of the first bucket is 0). Values past the last finite
    /// bound are reported as that bound. Nil without observations.
    package func quantile(_ q: Double) -> Double? {
        guard total > 0 else { return nil }
        let rank = q * total
        var lower = 0.0, below = 0.0
        for bucket in buckets {
            if bucket.count >= rank {
                guard bucket.bound.isFinite else { return lower }
                let inBucket = bucket.count - below
                return inBucket > 0 ? lower + (bucket.bound - lower) * (rank - below) / inBucket : bucket.bound
            }
            lower = bucket.bound
            below = bucket.count
        }
        return lower
    }

    /// `<name>_sum` and `<name>_count` of the histogram `name`, each summed over its label sets
    /// (one per output of a fan-out); nil when the exposition has no `_count` of it.
    package static func totals(named name: String, in exposition: String) -> (sum: Double, count: Double)? {
        func total(_ series: String) -> Double? {
            let values = exposition.split(separator: "\n").compactMap { line -> Double? in
                guard line.hasPrefix(series), let next = line.dropFirst(series.count).first, next == " " || next == "{",
                      let value = line.split(separator: " ").last else { return nil }
                return Double(value)
            }
            return values.isEmpty ? nil : values.reduce(0, +)
        }
        guard let count = total(name + "_count") else { return nil }
        return (total(name + "_sum") ?? 0, count)
    }

    package var summary: LatencySummary? {
        guard let p50 = quantile(0.5), let p99 = quantile(0.99) else { return nil }
        return LatencySummary(p50: p50, p99: p99, count: Int(total))
    }
}

/// The daemon's latency histograms and coupling gauges, read from its metrics endpoint.
package enum DaemonMetrics {
    /// Arrival of a batch → its output handed to ZeroMQ.
    static let endToEnd = "noised_end_to_end_seconds"
    /// The noising kernel's time per batch.
    static let kernel = "noised_kernel_seconds"

    /// The exposition text, or nil when the daemon serves none.
    static func scrape(port: Int) -> String? { ProcessStats.httpGet(port: port, path: "/metrics") }

    /// The mean of the observations between two scrapes, over every label set of `name`; nil
    /// without observations or without metrics.
    static func meanSeconds(_ name: String, before: String?, after: String?) -> Double? {
        guard let after, let later = PrometheusHistogram.totals(named: name, in: after) else { return nil }
        let earlier = before.flatMap { PrometheusHistogram.totals(named: name, in: $0) } ?? (0, 0)
        let count = later.count - earlier.count
        return count > 0 ? (later.sum - earlier.sum) / count : nil
    }

    /// The last batch's mean squared distance per element between z_0 and its noise.
    static let couplingCost = "noised_coupling_cost"

    /// `noised_coupling_cost` with the samples' own streams (`pairing="independent"`) and with the
    /// streams the coupling gave them (`pairing="coupled"`); nil unless both are there.
    package static func couplingCost(in exposition: String?) -> (independent: Double, coupled: Double)? {
        guard let exposition, let independent = gauge(couplingCost, label: "pairing=\"independent\"", in: exposition),
              let coupled = gauge(couplingCost, label: "pairing=\"coupled\"", in: exposition) else { return nil }
        return (independent, coupled)
    }

    /// The mean of the gauge `name`'s series whose labels include `label`; nil without one.
    static func gauge(_ name: String, label: String, in exposition: String) -> Double? {
        let values = exposition.split(separator: "\n").compactMap { line -> Double? in
            guard line.hasPrefix(name + "{"), let labelsEnd = line.firstIndex(of: "}"),
                  line[..<labelsEnd].contains(label), let value = line.split(separator: " ").last else { return nil }
            return Double(value)
        }
        return values.isEmpty ? nil : values.reduce(0, +) / Double(values.count)
    }

    /// Quantiles of the observations between two scrapes.
    static func histogram(_ name: String, before: String?, after: String?) -> LatencySummary? {
        guard let after, let later = PrometheusHistogram(named: name, in: after) else { return nil }
        guard let before, let earlier = PrometheusHistogram(named: name, in: before) else { return later.summary }
        return later.subtracting(earlier).summary
    }
}
