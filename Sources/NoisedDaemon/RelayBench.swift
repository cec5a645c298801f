import Foundation
import ZeroMQ

/// The pipeline bench's yardstick: a plain ZeroMQ relay that moves the same bytes noised moves but
/// computes nothing. For every latent batch it PULLs, it PUSHes a ready message the size of
/// noised's output (z_t + ε + σ + noise ids + header), zero-copy from reused buffers as the daemon
/// does, carrying the batch's send stamp across. It binds the endpoints noised would bind and runs
/// on its own thread with its own ZeroMQ context (its own I/O thread, as a separate process has).
final class BenchRelay: Sendable {
    private let stop = StopFlag()
    private let thread: BenchThread<Int>

    /// Binds `input` and `output` before returning, so the producer and consumer can connect.
    init(input: String, output: String, messages: BenchMessages, highWaterMark: Int32) throws {
        let context = try ZMQContext()
        let pull = try ZMQSocket(context, type: .pull)
        let push = try ZMQSocket(context, type: .push)
        for socket in [pull, push] {
            try socket.setLinger(milliseconds: 0)
            try socket.setHighWaterMarks(send: highWaterMark, receive: highWaterMark)
            try socket.setTimeouts(send: 100, receive: 100)
        }
        try pull.bind(input)
        try push.bind(output)
        let buffers = PrefilledBuffers(messages.relayOutput)
        let stop = stop
        thread = BenchThread(name: "bench-relay") {
            defer {
                pull.close()
                push.close()
            }
            return try Self.forward(from: pull, to: push, buffers: buffers, until: stop)
        }
    }

    private static func forward(from pull: ZMQSocket, to push: ZMQSocket, buffers: PrefilledBuffers, until stop: StopFlag) throws -> Int {
        var forwarded = 0
        let outputStamp = buffers.template.stampOffset
        while !stop.isRaised {
            guard let batch = try pull.receive() else { continue }
            let address = buffers.take()
            let input = batch.bytes
            if let inputStamp = SendStamp.offset(in: input) {
                (address.pointer + outputStamp).copyMemory(from: input.baseAddress! + inputStamp, byteCount: SendStamp.width)
            }
            let message = try ZMQOutgoingMessage(zeroCopy: address.pointer, count: buffers.template.count) {
                buffers.recycle(address)
            }
            while try !push.send(message) {
                if stop.isRaised { return forwarded }
            }
            forwarded += 1
        }
        return forwarded
    }

    /// Stops forwarding and returns how many batches were forwarded.
    func finish() throws -> Int {
        stop.raise()
        return try thread.join()
    }
}
