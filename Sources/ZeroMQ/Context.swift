import CZeroMQ
import Synchronization

/// A libzmq context: the I/O threads that move bytes for every socket made from it.
///
/// Create one per process. Terminating it (on deinit) waits for sockets to be closed and for
/// their lingering outgoing messages to be delivered or dropped, as each socket's linger says.
// @unchecked: libzmq contexts are thread-safe; `terminated` is atomic.
public final class ZMQContext: @unchecked Sendable {
    let handle: UnsafeMutableRawPointer
    private let terminated = Atomic<Bool>(false)

    public init(ioThreads: Int32 = 1) throws(ZMQError) {
        guard let handle = zmq_ctx_new() else { throw ZMQError("zmq_ctx_new") }
        self.handle = handle
        try check(zmq_ctx_set(handle, ZMQ_IO_THREADS, ioThreads), "zmq_ctx_set(ZMQ_IO_THREADS)")
    }

    deinit { terminate() }

    /// Waits until every socket made from this context is closed and their lingering outgoing
    /// messages are delivered or dropped, as each socket's linger says; then frees the context.
    /// Idempotent. Close every socket first: termination waits for them.
    public func terminate() {
        guard !terminated.exchange(true, ordering: .acquiringAndReleasing) else { return }
        // Retries on EINTR: a signal landing during term must not leak the context.
        while zmq_ctx_term(handle) != 0 && zmq_errno() == EINTR {}
    }

    /// Whether this libzmq supports a capability such as "curve" or "ipc".
    public static func has(_ capability: String) -> Bool { zmq_has(capability) == 1 }

    /// libzmq's version as (major, minor, patch).
    public static var version: (Int32, Int32, Int32) {
        var major: Int32 = 0, minor: Int32 = 0, patch: Int32 = 0
        zmq_version(&major, &minor, &patch)
        return (major, minor, patch)
    }
}
