import CZeroMQ

/// A received message. Its bytes stay valid, in place, for the life of this object.
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

    /// The message's bytes, read in place (no copy).
    public var bytes: UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(start: zmq_msg_data(msg), count: zmq_msg_size(msg))
    }

    /// True when more frames of the same multipart message follow this one.
    public var hasMore: Bool { zmq_msg_more(msg) == 1 }
}

/// A message to send whose bytes libzmq reads in place (zero-copy).
///
/// `release` runs exactly once, when libzmq no longer needs the bytes: after a successful send, on
/// one of libzmq's I/O threads once the bytes are on the wire; or, when the message is dropped
/// without being sent, as this object goes away.
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
