import Foundation
import Glibc

/// Turns process signals into calls on a dedicated thread.
///
/// The signals are blocked in the calling thread first, so every thread started afterwards
/// (ZeroMQ's I/O threads, the kernel workers) inherits the mask and only `sigwait` here sees them.
/// Call `start` before creating any other thread.
// @unchecked: immutable after init; the sigwait thread only reads the signal list and handler.
public final class SignalWatcher: @unchecked Sendable {
    private let signals: [Int32]
    private let handler: @Sendable (Int32) -> Void

    public init(_ signals: [Int32], handler: @escaping @Sendable (Int32) -> Void) {
        self.signals = signals
        self.handler = handler
    }

    public func start() {
        var set = sigset_t()
        sigemptyset(&set)
        for s in signals { sigaddset(&set, s) }
        pthread_sigmask(SIG_BLOCK, &set, nil)
        let blocked = set
        let handler = self.handler
        let thread = Thread {
            var set = blocked
            while true {
                var received: Int32 = 0
                if sigwait(&set, &received) == 0 { handler(received) }
            }
        }
        thread.name = "noised-signals"
        thread.start()
    }
}
