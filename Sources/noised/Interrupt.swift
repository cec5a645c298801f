import Glibc
import NoisedDaemon
import NoisedRuntime
import Synchronization

/// Ctrl-C for the foreground tools (feed, tap): finish cleanly and print the report.
enum Interrupt {
    private static let flag = Atomic<Bool>(false)

    /// Call before any socket exists, so that ZeroMQ's threads inherit the blocked signals.
    static func install() {
        SignalWatcher([SIGINT, SIGTERM]) { _ in flag.store(true, ordering: .relaxed) }.start()
    }

    static var requested: Bool { flag.load(ordering: .relaxed) }
}
