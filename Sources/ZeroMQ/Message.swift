import CZeroMQ

/// A received message. Its bytes stay valid, in place, for the life of this object.
// @unchecked: its zmq_msg_t is only read after the receive that filled it; it is never written again.
public final class ZMQMessage: @unchecked Sendable {
    let msg: UnsafeMutablePointer<zmq_msg_t>

    init() {
        msg = .allocate(capacity: 1)
        zmq_msg_init(msg)
    }

    deinit {
        zmq_msg_close(msg)
        msg.deallocate()
    }

    public var count: Int { zmq_msg_size(msg) }

    /// Lends the message's bytes, in place (no copy), to `body`. Do not let the pointer escape
    /// `body`: the bytes go away with the message.
    public func withUnsafeBytes<R, E: Error>(_ body: (UnsafeRawBufferPointer) throws(E) -> R) throws(E) -> R {
        try withExtendedLifetime(self) { () throws(E) -> R in
            try body(UnsafeRawBufferPointer(start: zmq_msg_data(msg), count: zmq_msg_size(msg)))
        }
    }

    /// A copy of the message's bytes.
    public var array: [UInt8] { withUnsafeBytes { Array($0) } }

    /// True when more frames of the same multipart message follow this one.
    public var hasMore: Bool { zmq_msg_more(msg) == 1 }
}

/// A message to send whose bytes libzmq reads in place (zero-copy).
///
/// `release` runs exactly once, when libzmq no longer needs the bytes: after a successful send, on
/// one of libzmq's I/O threads once the bytes are on the wire; or, when the message is dropped
/// without being sent, as this object goes away.
// @unchecked: handed from thread to thread but used by one at a time; libzmq runs `release` once.
public final class ZMQOutgoingMessage: @unchecked Sendable {
    let msg: UnsafeMutablePointer<zmq_msg_t>
    var sent = false

    public init(zeroCopy buffer: UnsafeMutableRawPointer, count: Int, release: @escaping @Sendable () -> Void) throws(ZMQError) {
        msg = .allocate(capacity: 1)
        let hint = Unmanaged.passRetained(ReleaseBox(release)).toOpaque()
        if zmq_msg_init_data(msg, buffer, count, releaseTrampoline, hint) != 0 {
            let error = ZMQError("zmq_msg_init_data")
            msg.deallocate()
            Unmanaged<ReleaseBox>.fromOpaque(hint).takeRetainedValue().release()
            throw error
        }
    }

    deinit {
        if !sent { zmq_msg_close(msg) }
        msg.deallocate()
    }
}

/// Called by libzmq (on one of its I/O threads) once it no longer needs a zero-copy buffer.
final class ReleaseBox {
    let release: @Sendable () -> Void
    init(_ release: @escaping @Sendable () -> Void) { self.release = release }
}

let releaseTrampoline: @convention(c) (UnsafeMutableRawPointer?, UnsafeMutableRawPointer?) -> Void = { _, hint in
    guard let hint else { return }
    Unmanaged<ReleaseBox>.fromOpaque(hint).takeRetainedValue().release()
}
