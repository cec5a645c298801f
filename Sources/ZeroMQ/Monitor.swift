import CZeroMQ

/// One event of a monitored socket (libzmq's socket monitor, event format version 1).
public struct ZMQSocketEvent: Sendable, Equatable {
    public enum Kind: Int32, Sendable {
        case accepted = 0x0020
        case disconnected = 0x0200
    }

    public let kind: Kind?
    public let rawEvent: UInt16
    public let value: UInt32
    public let address: String

    /// Decodes the two frames a monitor sends: [event u16 | value u32] (little-endian), then the peer's address.
    public init?(parts: [[UInt8]]) {
        guard parts.count == 2, parts[0].count == 6 else { return nil }
        let head = parts[0]
        rawEvent = UInt16(head[0]) | UInt16(head[1]) << 8
        value = UInt32(head[2]) | UInt32(head[3]) << 8 | UInt32(head[4]) << 16 | UInt32(head[5]) << 24
        kind = Kind(rawValue: Int32(rawEvent))
        address = String(decoding: parts[1], as: UTF8.self)
    }
}

extension ZMQSocket {
    /// Publishes the given events of this socket on a PAIR socket that libzmq binds at `endpoint`
    /// (inproc://…); connect a `.pair` socket there and read them with `receiveMultipart`.
    public func startMonitor(_ endpoint: String, events: [ZMQSocketEvent.Kind]) throws(ZMQError) {
        guard let handle else { throw ZMQError("zmq_socket_monitor", code: ENOTSOCK) }
        let mask = events.reduce(Int32(0)) { $0 | $1.rawValue }
        try check(zmq_socket_monitor(handle, endpoint, mask), "zmq_socket_monitor \(endpoint)")
    }
}
