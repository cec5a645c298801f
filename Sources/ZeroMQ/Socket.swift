import CZeroMQ

public enum ZMQSocketType: Sendable {
    case push, pull, pub, sub, req, rep, pair, dealer, router

    var raw: Int32 {
        switch self {
        case .push: ZMQ_PUSH
        case .pull: ZMQ_PULL
        case .pub: ZMQ_PUB
        case .sub: ZMQ_SUB
        case .req: ZMQ_REQ
        case .rep: ZMQ_REP
        case .pair: ZMQ_PAIR
        case .dealer: ZMQ_DEALER
        case .router: ZMQ_ROUTER
        }
    }
}

/// One libzmq socket. Like libzmq sockets, it must be used from one thread at a time.
// @unchecked: libzmq lets a socket move between threads (with a barrier) if one uses it at a time, as here.
public final class ZMQSocket: @unchecked Sendable {
    var handle: UnsafeMutableRawPointer?
    public let type: ZMQSocketType
    /// Held so the context outlives its sockets: terminating a context waits for them to close.
    private let context: ZMQContext

    public init(_ context: ZMQContext, type: ZMQSocketType) throws(ZMQError) {
        guard let handle = zmq_socket(context.handle, type.raw) else { throw ZMQError("zmq_socket") }
        self.handle = handle
        self.type = type
        self.context = context
    }

    deinit { close() }

    /// Closes the socket; pending outgoing messages linger as `linger` says, inside the context.
    public func close() {
        if let handle { zmq_close(handle) }
        handle = nil
    }

    private var open: UnsafeMutableRawPointer {
        get throws(ZMQError) {
            guard let handle else { throw ZMQError("socket", code: ENOTSOCK) }
            return handle
        }
    }

    public func bind(_ endpoint: String) throws(ZMQError) {
        try check(zmq_bind(try open, endpoint), "bind \(endpoint)")
    }

    public func connect(_ endpoint: String) throws(ZMQError) {
        try check(zmq_connect(try open, endpoint), "connect \(endpoint)")
    }

    public func unbind(_ endpoint: String) throws(ZMQError) {
        try check(zmq_unbind(try open, endpoint), "unbind \(endpoint)")
    }

    public func disconnect(_ endpoint: String) throws(ZMQError) {
        try check(zmq_disconnect(try open, endpoint), "disconnect \(endpoint)")
    }

    /// The endpoint actually bound last, e.g. the port chosen for `tcp://127.0.0.1:*`.
    public var lastEndpoint: String {
        get throws(ZMQError) {
            var buffer = [CChar](repeating: 0, count: 1024)
            var size = buffer.count
            try check(zmq_getsockopt(try open, ZMQ_LAST_ENDPOINT, &buffer, &size), "getsockopt(ZMQ_LAST_ENDPOINT)")
            return String(decoding: buffer.prefix(while: { $0 != 0 }).map { UInt8(bitPattern: $0) }, as: UTF8.self)
        }
    }

    // MARK: Options

    private func set(_ option: Int32, _ value: Int32, _ name: String) throws(ZMQError) {
        var value = value
        try check(zmq_setsockopt(try open, option, &value, MemoryLayout<Int32>.size), "setsockopt(\(name))")
    }

    /// Messages queued per peer before sends block (outgoing) or the peer stops reading (incoming).
    public func setHighWaterMarks(send: Int32? = nil, receive: Int32? = nil) throws(ZMQError) {
        if let send { try set(ZMQ_SNDHWM, send, "ZMQ_SNDHWM") }
        if let receive { try set(ZMQ_RCVHWM, receive, "ZMQ_RCVHWM") }
    }

    /// Milliseconds that unsent messages are kept after close (-1: forever, 0: dropped).
    public func setLinger(milliseconds: Int32) throws(ZMQError) {
        try set(ZMQ_LINGER, milliseconds, "ZMQ_LINGER")
    }

    /// Milliseconds a blocking send or receive waits before failing with EAGAIN (-1: forever).
    public func setTimeouts(send: Int32? = nil, receive: Int32? = nil) throws(ZMQError) {
        if let send { try set(ZMQ_SNDTIMEO, send, "ZMQ_SNDTIMEO") }
        if let receive { try set(ZMQ_RCVTIMEO, receive, "ZMQ_RCVTIMEO") }
    }

    /// Peers that send a larger frame are disconnected before the frame is buffered.
    public func setMaxMessageSize(_ bytes: Int64) throws(ZMQError) {
        var value = bytes
        try check(zmq_setsockopt(try open, ZMQ_MAXMSGSIZE, &value, MemoryLayout<Int64>.size), "setsockopt(ZMQ_MAXMSGSIZE)")
    }

    /// SUB sockets receive only messages starting with a subscribed prefix; "" subscribes to all.
    public func subscribe(_ prefix: String = "") throws(ZMQError) {
        let bytes = Array(prefix.utf8)
        try check(zmq_setsockopt(try open, ZMQ_SUBSCRIBE, bytes, bytes.count), "setsockopt(ZMQ_SUBSCRIBE)")
    }

    /// Sets a raw byte-string option (CURVE keys, ZAP domain, ...).
    public func setOption(_ option: Int32, bytes: [UInt8], name: String) throws(ZMQError) {
        try check(zmq_setsockopt(try open, option, bytes, bytes.count), "setsockopt(\(name))")
    }

    /// Sets a raw integer option.
    public func setOption(_ option: Int32, int value: Int32, name: String) throws(ZMQError) {
        try set(option, value, name)
    }

    // MARK: CURVE

    /// Makes this socket a CURVE server: peers must handshake with CURVE and know its public key;
    /// the ZAP handler of the context (see `ZAPAuthenticator`) decides which clients are let in.
    /// Set before `bind`.
    public func makeCurveServer(secretKey: String, zapDomain: String = "noised") throws {
        let secret = try ZMQCurve.decode(secretKey)
        try set(ZMQ_CURVE_SERVER, 1, "ZMQ_CURVE_SERVER")
        try setOption(ZMQ_CURVE_SECRETKEY, bytes: secret, name: "ZMQ_CURVE_SECRETKEY")
        try setOption(ZMQ_ZAP_DOMAIN, bytes: Array(zapDomain.utf8), name: "ZMQ_ZAP_DOMAIN")
    }

    /// Makes this socket a CURVE client of the server whose public key is `serverKey`. Set before `connect`.
    public func makeCurveClient(serverKey: String, publicKey: String, secretKey: String) throws {
        let server = try ZMQCurve.decode(serverKey)
        let own = try ZMQCurve.decode(publicKey)
        let secret = try ZMQCurve.decode(secretKey)
        try setOption(ZMQ_CURVE_SERVERKEY, bytes: server, name: "ZMQ_CURVE_SERVERKEY")
        try setOption(ZMQ_CURVE_PUBLICKEY, bytes: own, name: "ZMQ_CURVE_PUBLICKEY")
        try setOption(ZMQ_CURVE_SECRETKEY, bytes: secret, name: "ZMQ_CURVE_SECRETKEY")
    }

    // MARK: Receive

    /// Receives one frame, or nil when the receive timeout expires (or `dontWait` and nothing is queued).
    public func receive(dontWait: Bool = false) throws(ZMQError) -> ZMQMessage? {
        let message = ZMQMessage()
        let socket = try open
        while true {
            if zmq_msg_recv(message.msg, socket, dontWait ? ZMQ_DONTWAIT : 0) >= 0 { return message }
            let error = ZMQError("zmq_msg_recv")
            if error.code == EINTR { continue }
            if error.isTimeout { return nil }
            throw error
        }
    }

    /// Receives every frame of one multipart message (copied), or nil when the receive timeout
    /// expires before its first frame (or `dontWait` and nothing is queued).
    public func receiveMultipart(dontWait: Bool = false) throws(ZMQError) -> [[UInt8]]? {
        guard let first = try receive(dontWait: dontWait) else { return nil }
        var parts = [first.array]
        var more = first.hasMore
        // The remaining frames of a message arrive together with its first one.
        while more, let next = try receive() {
            parts.append(next.array)
            more = next.hasMore
        }
        return parts
    }

    /// Receives one multipart message in place: its first `maxFrames` frames, and how many frames
    /// followed them (received and dropped). Nil when nothing is queued (`dontWait`) or the
    /// receive timeout expires.
    public func receiveFrames(maxFrames: Int, dontWait: Bool = false) throws(ZMQError) -> (frames: [ZMQMessage], dropped: Int)? {
        precondition(maxFrames >= 1, "a message has at least one frame")
        guard let first = try receive(dontWait: dontWait) else { return nil }
        var frames = [first]
        var dropped = 0
        var last = first
        // The remaining frames of a message arrive together with its first one.
        while last.hasMore, let next = try receive() {
            if frames.count < maxFrames { frames.append(next) } else { dropped += 1 }
            last = next
        }
        return (frames, dropped)
    }

    /// Blocks until the socket is readable or `milliseconds` pass; true when a receive will not block.
    public func waitReadable(milliseconds: Int) throws(ZMQError) -> Bool {
        var item = zmq_pollitem_t(socket: try open, fd: 0, events: Int16(ZMQ_POLLIN), revents: 0)
        let rc = zmq_poll(&item, 1, milliseconds)
        if rc < 0 {
            let error = ZMQError("zmq_poll")
            if error.code == EINTR { return false }
            throw error
        }
        return rc > 0
    }

    // MARK: Send

    /// Sends a copy of `bytes` as one frame. False when the send timeout expired (nothing was sent).
    @discardableResult
    public func send(copying bytes: UnsafeRawBufferPointer, dontWait: Bool = false) throws(ZMQError) -> Bool {
        let socket = try open
        while true {
            if zmq_send(socket, bytes.baseAddress, bytes.count, dontWait ? ZMQ_DONTWAIT : 0) >= 0 { return true }
            let error = ZMQError("zmq_send")
            if error.code == EINTR { continue }
            if error.isTimeout { return false }
            throw error
        }
    }

    @discardableResult
    public func send(copying bytes: [UInt8], dontWait: Bool = false) throws(ZMQError) -> Bool {
        let result = bytes.withUnsafeBytes { raw in Result { () throws(ZMQError) in try send(copying: raw, dontWait: dontWait) } }
        return try result.get()
    }

    /// Sends `parts` as one multipart message (copied). False when the send timeout expired
    /// before the first frame was taken; libzmq queues a message's frames atomically, so the rest follow.
    @discardableResult
    public func send(parts: [[UInt8]], dontWait: Bool = false) throws(ZMQError) -> Bool {
        precondition(!parts.isEmpty, "a multipart message has at least one frame")
        return try sendCopies(parts, moreFollows: false, dontWait: dontWait)
    }

    /// Sends `prefix` (copied) then `message` as the last frame, sharing its bytes (libzmq counts
    /// references, so one received batch can go to several sockets without a copy; it stays
    /// valid here). False when the send timeout expired before the first frame was taken.
    @discardableResult
    public func send(prefix: [[UInt8]], sharing message: ZMQMessage, dontWait: Bool = false) throws(ZMQError) -> Bool {
        if !prefix.isEmpty, try !sendCopies(prefix, moreFollows: true, dontWait: dontWait) { return false }
        let shared = ZMQMessage()
        guard zmq_msg_copy(shared.msg, message.msg) == 0 else { throw ZMQError("zmq_msg_copy") }
        let socket = try open
        while true {
            // Once a first frame is queued the rest of the message always is.
            if zmq_msg_send(shared.msg, socket, dontWait && prefix.isEmpty ? ZMQ_DONTWAIT : 0) >= 0 { return true }
            let error = ZMQError("zmq_msg_send")
            if error.code == EINTR { continue }
            if error.isTimeout && prefix.isEmpty { return false }
            throw error
        }
    }

    /// Sends copies of `parts` as frames, the last with SNDMORE when more follow. False when the
    /// send timeout expired before the first frame was taken.
    private func sendCopies(_ parts: [[UInt8]], moreFollows: Bool, dontWait: Bool) throws(ZMQError) -> Bool {
        let socket = try open
        for (index, part) in parts.enumerated() {
            var flags = dontWait ? ZMQ_DONTWAIT : 0
            if index < parts.count - 1 || moreFollows { flags |= ZMQ_SNDMORE }
            while true {
                let rc = part.withUnsafeBytes { zmq_send(socket, $0.baseAddress, $0.count, flags) }
                if rc >= 0 { break }
                let error = ZMQError("zmq_send")
                if error.code == EINTR { continue }
                if error.isTimeout && index == 0 { return false }
                throw error
            }
        }
        return true
    }

    /// Sends `message` without copying its bytes. True when libzmq took it; false when the send
    /// timeout expired, in which case the message is still the caller's to send again or drop.
    @discardableResult
    public func send(_ message: ZMQOutgoingMessage, dontWait: Bool = false) throws(ZMQError) -> Bool {
        precondition(!message.sent, "a ZMQOutgoingMessage is sent at most once")
        let socket = try open
        while true {
            if zmq_msg_send(message.msg, socket, dontWait ? ZMQ_DONTWAIT : 0) >= 0 {
                message.sent = true
                return true
            }
            let error = ZMQError("zmq_msg_send")
            if error.code == EINTR { continue }
            if error.isTimeout { return false }
            throw error
        }
    }
}
