import Configuration
import Logging
import Synchronization
import ZeroMQ

/// A socket the daemon could not bind or connect, named by its config key and address.
public struct SocketAttachError: Error, CustomStringConvertible {
    public let keyPath: String
    public let endpoint: String
    public let bind: Bool
    public let reason: String

    public var description: String { "\(keyPath) \(endpoint): cannot \(bind ? "bind" : "connect"): \(reason)" }
}

/// The pipeline's sockets, each made from its own part of the config, so a reload re-makes only
/// the sockets whose settings changed (`Pipeline.apply`).
struct PipelineSockets {
    /// PULL: plain PUSH producers.
    private(set) var input: ZMQSocket
    /// The PULL socket's disconnect events (its monitor).
    private(set) var inputEvents: ZMQSocket
    /// ROUTER: DEALER producers whose batches are acknowledged.
    private(set) var acked: ZMQSocket?
    /// PUSH: trainers.
    private(set) var output: ZMQSocket
    private(set) var feedback: ZMQSocket?
    private let context: ZMQContext
    private let security: SocketSecurity?
    private static let monitors = Atomic<Int>(0)

    init(context: ZMQContext, config: NoisedConfig, security: SocketSecurity?) throws {
        self.context = context
        self.security = security
        // Made in the order a peer needs them: trainers can connect before producers send.
        output = try Self.makeOutput(context, config, security)
        feedback = try Self.makeFeedback(context, config, security)
        (input, inputEvents) = try Self.makeInput(context, config, security)
        acked = try Self.makeAcked(context, config, security)
    }

    /// Which sockets have something to read, after waiting at most `milliseconds`. Without
    /// `input` the batch sockets are left alone (the daemon cannot take batches just now).
    func wait(input: Bool, milliseconds: Int) throws(ZMQError) -> Readiness {
        var watched = [inputEvents]
        if input { watched.append(self.input); if let acked { watched.append(acked) } }
        if let feedback { watched.append(feedback) }
        let ready = try ZMQSocket.waitReadable(watched, milliseconds: milliseconds)
        var next = 1
        func take(_ present: Bool) -> Bool {
            guard present else { return false }
            defer { next += 1 }
            return ready[next]
        }
        let plain = take(input), fromAcked = take(input && acked != nil), reports = take(feedback != nil)
        return Readiness(inputEvents: ready[0], input: plain, acked: fromAcked, feedback: reports)
    }

    struct Readiness {
        var inputEvents: Bool
        var input: Bool
        var acked: Bool
        var feedback: Bool
    }

    // MARK: Reload

    /// Re-makes the output socket if its settings changed. A new address is bound before the old
    /// socket closes (so a failure keeps the old one); the old one lingers `lingerMilliseconds` so
    /// batches queued on it still go out. Only the high-water mark changed: set in place, for
    /// connections made from now on.
    mutating func updateOutput(from old: NoisedConfig, to new: NoisedConfig, lingerMilliseconds: Int32) throws {
        guard old.outputSocket != new.outputSocket else { return }
        if (old.output.endpoint, old.output.bind) == (new.output.endpoint, new.output.bind) {
            try output.setHighWaterMarks(send: Int32(clamping: new.output.highWaterMark))
            return
        }
        let fresh = try Self.makeOutput(context, new, security)
        try? output.setLinger(milliseconds: max(0, lingerMilliseconds))
        output.close()
        output = fresh
    }

    mutating func updateFeedback(from old: NoisedConfig, to new: NoisedConfig) throws {
        guard old.feedbackSocket != new.feedbackSocket else { return }
        let keepsAddress = (old.feedback.endpoint, old.feedback.bind) == (new.feedback.endpoint, new.feedback.bind)
        // A bound address is free again only once the old socket is closed.
        if keepsAddress { feedback?.close(); feedback = nil }
        let fresh = try Self.makeFeedback(context, new, security)
        feedback?.close()
        feedback = fresh
    }

    /// Re-makes the input sockets whose settings changed, and returns the old ones: the caller
    /// takes what is already queued on them, then closes them.
    mutating func updateInputs(from old: NoisedConfig, to new: NoisedConfig) throws -> [ZMQSocket] {
        var retired: [ZMQSocket] = []
        if old.inputSocket != new.inputSocket {
            if (old.input.endpoint, old.input.bind) == (new.input.endpoint, new.input.bind) {
                try input.setHighWaterMarks(receive: Int32(clamping: new.input.highWaterMark))
                try input.setMaxMessageSize(Int64(new.input.maxMessageBytes))
            } else {
                let (fresh, events) = try Self.makeInput(context, new, security)
                retired.append(input)
                inputEvents.close()
                (input, inputEvents) = (fresh, events)
            }
        }
        if old.ackedSocket != new.ackedSocket {
            let keepsAddress = (old.input.ackedEndpoint, old.input.bind) == (new.input.ackedEndpoint, new.input.bind)
            if keepsAddress, let acked {
                try acked.setHighWaterMarks(receive: Int32(clamping: new.input.highWaterMark))
                try acked.setMaxMessageSize(Int64(new.input.maxMessageBytes))
            } else {
                let fresh = try Self.makeAcked(context, new, security)
                if let acked { retired.append(acked) }
                acked = fresh
            }
        }
        return retired
    }

    /// Closes every socket; the output and the acknowledgements linger `lingerMilliseconds` so
    /// what is queued still goes out.
    func close(lingerMilliseconds: Int32) {
        try? output.setLinger(milliseconds: max(0, lingerMilliseconds))
        try? acked?.setLinger(milliseconds: max(0, lingerMilliseconds))
        input.close()
        inputEvents.close()
        acked?.close()
        output.close()
        feedback?.close()
    }

    // MARK: Making each socket

    static func makeInput(
        _ context: ZMQContext, _ config: NoisedConfig, _ security: SocketSecurity?
    ) throws -> (ZMQSocket, ZMQSocket) {
        let input = try ZMQSocket(context, type: .pull)
        try input.setHighWaterMarks(receive: Int32(clamping: config.input.highWaterMark))
        try input.setLinger(milliseconds: 0)
        // An oversized frame is refused by ZeroMQ's decoder before it is buffered, so it never
        // reaches memory; BatchNoiser checks again for transports without a decoder (inproc).
        try input.setMaxMessageSize(Int64(config.input.maxMessageBytes))
        let monitor = "inproc://noised-input-events-\(monitors.add(1, ordering: .relaxed).newValue)"
        try input.startMonitor(monitor, events: [.disconnected])
        let events = try ZMQSocket(context, type: .pair)
        try events.setLinger(milliseconds: 0)
        try events.connect(monitor)
        // A fan-out's relay (inproc) stays inside the process: nothing to authenticate.
        if let security, !config.input.endpoint.hasPrefix("inproc://") { try input.makeCurveServer(secretKey: security.secretKey) }
        try attach(input, "input.endpoint", config.input.endpoint, bind: config.input.bind)
        return (input, events)
    }

    static func makeAcked(_ context: ZMQContext, _ config: NoisedConfig, _ security: SocketSecurity?) throws -> ZMQSocket? {
        guard let endpoint = config.input.ackedEndpoint else { return nil }
        let socket = try ZMQSocket(context, type: .router)
        try socket.setHighWaterMarks(receive: Int32(clamping: config.input.highWaterMark))
        try socket.setLinger(milliseconds: 0)
        try socket.setMaxMessageSize(Int64(config.input.maxMessageBytes))
        if let security, !endpoint.hasPrefix("inproc://") { try socket.makeCurveServer(secretKey: security.secretKey) }
        try attach(socket, "input.acked_endpoint", endpoint, bind: config.input.bind)
        return socket
    }

    private static func makeOutput(_ context: ZMQContext, _ config: NoisedConfig, _ security: SocketSecurity?) throws -> ZMQSocket {
        let output = try ZMQSocket(context, type: .push)
        try output.setHighWaterMarks(send: Int32(clamping: config.output.highWaterMark))
        try output.setTimeouts(send: Pipeline.pollMilliseconds)
        if let security { try output.makeCurveServer(secretKey: security.secretKey) }
        try attach(output, "output.endpoint", config.output.endpoint, bind: config.output.bind)
        return output
    }

    private static func makeFeedback(_ context: ZMQContext, _ config: NoisedConfig, _ security: SocketSecurity?) throws -> ZMQSocket? {
        guard let endpoint = config.feedback.endpoint else { return nil }
        let socket = try ZMQSocket(context, type: config.feedback.pattern == .sub ? .sub : .pull)
        if config.feedback.pattern == .sub { try socket.subscribe() }
        try socket.setLinger(milliseconds: 0)
        if let security { try socket.makeCurveServer(secretKey: security.secretKey) }
        try attach(socket, "feedback.endpoint", endpoint, bind: config.feedback.bind)
        return socket
    }

    private static func attach(_ socket: ZMQSocket, _ keyPath: String, _ endpoint: String, bind: Bool) throws {
        do {
            if bind { try socket.bind(endpoint) } else { try socket.connect(endpoint) }
        } catch {
            socket.close()
            throw SocketAttachError(keyPath: keyPath, endpoint: endpoint, bind: bind, reason: "\(error.message) (errno \(error.code))")
        }
    }

    /// ipc and inproc stay on this machine; tcp on a loopback address does too.
    static func isLoopback(_ endpoint: String) -> Bool {
        guard endpoint.hasPrefix("tcp://") else { return true }
        return HostPort(tcpEndpoint: endpoint)?.isLoopback ?? false
    }
}

/// The settings each socket is made from: a change re-makes (or re-tunes) that socket alone.
extension NoisedConfig {
    var inputSocket: [String] { [input.endpoint, "\(input.bind)", "\(input.highWaterMark)", "\(input.maxMessageBytes)"] }
    var ackedSocket: [String] {
        [input.ackedEndpoint ?? "", "\(input.bind)", "\(input.highWaterMark)", "\(input.maxMessageBytes)"]
    }
    var outputSocket: [String] { [output.endpoint, "\(output.bind)", "\(output.highWaterMark)"] }
    var feedbackSocket: [String] { [feedback.endpoint ?? "", "\(feedback.bind)", "\(feedback.pattern)"] }
}

/// Producer connections closed, read from an input socket's monitor. ZeroMQ reports every closed
/// connection the same way: a producer that exits, and one that sent a frame over
/// `input.max_message_bytes` (refused by closing the connection, without reading the frame). The
/// log says both.
struct InputDisconnects {
    // A producer that exits closes its connection too, so this is a notice, not a warning.
    private var log = RejectLog(message: "input connection closed", level: .notice)

    /// Logs (rate-limited) each closed connection queued on `events`; returns how many there were.
    mutating func take(from events: ZMQSocket, maxMessageBytes: Int, logger: Logger, now: ContinuousClock.Instant) throws -> Int {
        var closed = 0
        while let parts = try events.receiveMultipart(dontWait: true) {
            guard let event = ZMQSocketEvent(parts: parts), event.kind == .disconnected else { continue }
            closed += 1
            log.record(
                reason: "input_disconnect",
                detail: "a producer's connection closed (\(event.address)): the producer closed it, or sent a frame over "
                    + "input.max_message_bytes (\(maxMessageBytes)), which ZeroMQ refuses by closing the connection",
                logger: logger, now: now)
        }
        return closed
    }
}
