import Foundation
import NoisedRuntime
import NoiseKernel
import NoiseKernelCore
import ZeroMQ

/// The pipeline bench's yardstick: a plain ZeroMQ relay that moves the same bytes noised moves but
/// computes nothing. For every latent batch it PULLs, it PUSHes a ready message the size of
/// noised's output (z_t + ε + σ + noise ids + header), zero-copy from reused buffers as the daemon
/// does, carrying the batch's send stamp across. The bench runs it as a child process
/// (`noised bench relay`), binding the endpoints noised would bind, so that it has an address space
/// and I/O thread of its own, as the daemon has.
public enum BenchRelay {
    public struct Options: Sendable {
        public var input: String
        public var output: String
        public var latentBytes: Int
        public var dtype: ElementType
        public var highWaterMark: Int

        public init(input: String, output: String, latentBytes: Int, dtype: ElementType, highWaterMark: Int) {
            self.input = input
            self.output = output
            self.latentBytes = latentBytes
            self.dtype = dtype
            self.highWaterMark = highWaterMark
        }

        var arguments: [String] {
            ["bench", "relay", "--input", input, "--output", output, "--latent-bytes", String(latentBytes),
             "--dtype", dtype.rawValue, "--hwm", String(highWaterMark)]
        }
    }

    /// Binds, logs `msg=ready` on stderr, then forwards until the process is terminated.
    public static func serve(_ options: Options) throws -> Never {
        HeapPolicy.keepFreedMemory()
        let messages = try BenchMessages(latentBytes: options.latentBytes, dtype: options.dtype)
        let context = try ZMQContext()
        let pull = try ZMQSocket(context, type: .pull)
        let push = try ZMQSocket(context, type: .push)
        let hwm = Int32(clamping: options.highWaterMark)
        for socket in [pull, push] {
            try socket.setLinger(milliseconds: 0)
            try socket.setHighWaterMarks(send: hwm, receive: hwm)
        }
        try pull.bind(options.input)
        try push.bind(options.output)
        FileHandle.standardError.write(Data("msg=ready input=\(options.input) output=\(options.output)\n".utf8))
        let buffers = PrefilledBuffers(messages.relayOutput)
        let outputStamp = buffers.template.stampOffset
        while true {
            guard let batch = try pull.receive() else { continue }
            let address = buffers.take()
            batch.withUnsafeBytes { input in
                if let inputStamp = SendStamp.offset(in: input) {
                    (address.pointer + outputStamp).copyMemory(from: input.baseAddress! + inputStamp, byteCount: SendStamp.width)
                }
            }
            let message = try ZMQOutgoingMessage(zeroCopy: address.pointer, count: buffers.template.count) {
                buffers.recycle(address)
            }
            try push.send(message)
        }
    }

    /// Starts `binary bench relay` and waits until it is bound.
    static func start(binary: String, options: Options, logPath: String) throws -> BenchChild {
        try BenchChild(binary: binary, arguments: options.arguments, logPath: logPath)
    }
}
