import CZeroMQ

extension ZMQSocket {
    /// Waits until any of `sockets` is readable or `milliseconds` pass (-1: forever); returns which are.
    /// An interrupted wait (EINTR) returns all false, like a timeout.
    public static func waitReadable(_ sockets: [ZMQSocket], milliseconds: Int) throws(ZMQError) -> [Bool] {
        var items = [zmq_pollitem_t]()
        items.reserveCapacity(sockets.count)
        for socket in sockets {
            guard let handle = socket.handle else { throw ZMQError("zmq_poll", code: ENOTSOCK) }
            items.append(zmq_pollitem_t(socket: handle, fd: 0, events: Int16(ZMQ_POLLIN), revents: 0))
        }
        let rc = zmq_poll(&items, Int32(items.count), milliseconds)
        if rc < 0 {
            let error = ZMQError("zmq_poll")
            if error.code == EINTR { return Array(repeating: false, count: sockets.count) }
            throw error
        }
        return items.map { $0.revents & Int16(ZMQ_POLLIN) != 0 }
    }
}
