import CZeroMQ
import Foundation
import Synchronization

/// Answers ZeroMQ's authentication requests (ZAP 1.0) for one context: a CURVE client whose
/// public key is in the allowed set gets in; any other peer is refused.
///
/// libzmq asks the handler bound at `inproc://zeromq.zap.01` of the socket's context during each
/// handshake. Without a handler libzmq lets every CURVE client in, so start this before any
/// CURVE server socket binds, and keep it until they are closed. It runs until `stop()`.
// @unchecked: its socket is used only on its own thread; the shared state is Mutex and Atomic.
public final class ZAPAuthenticator: @unchecked Sendable {
    public static let endpoint = "inproc://zeromq.zap.01"

    /// One refusal: the peer's address, and why.
    public struct Denial: Sendable {
        public let address: String
        public let reason: String
    }

    private let socket: ZMQSocket
    private let domain: String
    private let allowedKeys: Mutex<Set<String>>
    private let stopRequested = Atomic<Bool>(false)
    private let finished = DispatchSemaphore(value: 0)
    private let approvalCount = Atomic<Int>(0)
    private let denialCount = Atomic<Int>(0)
    private let onDenial: (@Sendable (Denial) -> Void)?

    /// Binds the handler in `context` and starts answering on its own thread.
    /// - Parameters:
    ///   - allowedKeys: Z85 public keys of the clients let in.
    ///   - domain: the ZAP domain the server sockets set (requests for others are refused).
    ///   - onDenial: called on the handler's thread for each refusal (for logs and metrics).
    public init(context: ZMQContext, allowedKeys: Set<String>, domain: String = "noised",
                onDenial: (@Sendable (Denial) -> Void)? = nil) throws {
        for key in allowedKeys { try ZMQCurve.validate(key) }
        socket = try ZMQSocket(context, type: .rep)
        try socket.setLinger(milliseconds: 0)
        try socket.bind(Self.endpoint)
        self.domain = domain
        self.allowedKeys = Mutex(allowedKeys)
        self.onDenial = onDenial
        let thread = Thread { [self] in serve() }
        thread.name = "noised-zap"
        thread.start()
    }

    /// Replaces the allowed client keys; handshakes from now on use the new set (connected peers stay).
    public func updateAllowedKeys(_ keys: Set<String>) throws(InvalidCurveKey) {
        for key in keys { try ZMQCurve.validate(key) }
        allowedKeys.withLock { $0 = keys }
    }

    public var approvals: Int { approvalCount.load(ordering: .relaxed) }
    public var denials: Int { denialCount.load(ordering: .relaxed) }

    /// Stops answering and waits for the handler's thread to close its socket. Idempotent.
    public func stop() {
        if stopRequested.exchange(true, ordering: .acquiringAndReleasing) { return }
        finished.wait()
    }

    private func serve() {
        defer {
            socket.close()
            finished.signal()
        }
        // Polls in short slices so `stop` is noticed without closing the socket under the thread.
        while !stopRequested.load(ordering: .acquiring) {
            do throws(ZMQError) {
                guard try socket.waitReadable(milliseconds: 100),
                      let request = try socket.receiveMultipart(dontWait: true) else { continue }
                try socket.send(parts: answer(request))
            } catch {
                if error.isTerminated { return }
            }
        }
    }

    /// The reply frames: version, request id, status code, status text, user id, metadata.
    private func answer(_ request: [[UInt8]]) -> [[UInt8]] {
        // version, request id, domain, address, identity, mechanism, credentials...
        guard request.count >= 6, request[0] == Array("1.0".utf8) else {
            let requestID = request.count > 1 ? request[1] : []
            return deny(requestID, address: "?", reason: "malformed ZAP request")
        }
        let requestID = request[1]
        let requestDomain = String(decoding: request[2], as: UTF8.self)
        let address = String(decoding: request[3], as: UTF8.self)
        let mechanism = String(decoding: request[5], as: UTF8.self)
        guard requestDomain == domain else {
            return deny(requestID, address: address, reason: "unknown ZAP domain '\(requestDomain)'")
        }
        guard mechanism == "CURVE", request.count == 7, let clientKey = try? ZMQCurve.encode(request[6]) else {
            return deny(requestID, address: address, reason: "mechanism \(mechanism) is not allowed; CURVE is required")
        }
        guard allowedKeys.withLock({ $0.contains(clientKey) }) else {
            return deny(requestID, address: address, reason: "client key \(clientKey) is not authorized")
        }
        approvalCount.add(1, ordering: .relaxed)
        return reply(requestID, status: "200", text: "OK", userID: clientKey)
    }

    private func deny(_ requestID: [UInt8], address: String, reason: String) -> [[UInt8]] {
        denialCount.add(1, ordering: .relaxed)
        onDenial?(Denial(address: address, reason: reason))
        return reply(requestID, status: "400", text: reason, userID: "")
    }

    private func reply(_ requestID: [UInt8], status: String, text: String, userID: String) -> [[UInt8]] {
        [Array("1.0".utf8), requestID, Array(status.utf8), Array(text.utf8), Array(userID.utf8), []]
    }
}
