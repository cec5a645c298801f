import Synchronization

/// Where the pipeline reads the time: drain deadlines, the state save interval, the heartbeat the
/// watchdog and `/healthz` judge, latencies and log rate limits. Production reads the continuous
/// clock; a test gives one it moves by hand, so a ten-second drain bound or a stalled heartbeat is
/// tested without waiting for it.
package struct PipelineClock: Sendable {
    package let now: @Sendable () -> ContinuousClock.Instant

    package init(now: @escaping @Sendable () -> ContinuousClock.Instant) { self.now = now }

    package static let continuous = PipelineClock { .now }
}

/// When a loop last came round, readable from any thread: a stuck loop stops updating it.
package final class Heartbeat: Sendable {
    private let clock: PipelineClock
    private let epoch: ContinuousClock.Instant
    /// Nanoseconds from `epoch` to the last beat.
    private let last = Atomic<UInt64>(0)

    package init(clock: PipelineClock) {
        self.clock = clock
        epoch = clock.now()
    }

    package func beat() { last.store(nanosecondsSinceEpoch(), ordering: .relaxed) }

    package var secondsSinceBeat: Double { Double(nanosecondsSinceEpoch() &- last.load(ordering: .relaxed)) / 1e9 }

    private func nanosecondsSinceEpoch() -> UInt64 {
        let elapsed = (clock.now() - epoch).components
        return UInt64(max(0, elapsed.seconds)) &* 1_000_000_000 &+ UInt64(max(0, elapsed.attoseconds / 1_000_000_000))
    }
}
