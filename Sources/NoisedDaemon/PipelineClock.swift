/// Where the pipeline reads the time: drain deadlines, the state save interval, the heartbeat the
/// watchdog and `/healthz` judge, latencies and log rate limits. Production reads the continuous
/// clock; a test gives one it moves by hand, so a ten-second drain bound or a stalled heartbeat is
/// tested without waiting for it.
package struct PipelineClock: Sendable {
    package let now: @Sendable () -> ContinuousClock.Instant

    package init(now: @escaping @Sendable () -> ContinuousClock.Instant) { self.now = now }

    package static let continuous = PipelineClock { .now }
}
