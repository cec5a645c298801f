import CZeroMQ

/// A failed libzmq call: the operation, errno and libzmq's own description.
public struct ZMQError: Error, CustomStringConvertible, Sendable {
    public let operation: String
    public let code: Int32
    public let message: String

    init(_ operation: String, code: Int32 = zmq_errno()) {
        self.operation = operation
        self.code = code
        self.message = String(cString: zmq_strerror(code))
    }

    public var description: String { "\(operation): \(message) (errno \(code))" }

    /// The call would have blocked, or its timeout expired.
    public var isTimeout: Bool { code == EAGAIN }
    /// The context was terminated while the call waited.
    public var isTerminated: Bool { code == ETERM }
}

@inline(__always)
func check(_ rc: Int32, _ operation: @autoclosure () -> String) throws(ZMQError) {
    if rc != 0 { throw ZMQError(operation()) }
}
