import Foundation
import NoiseKernel
import Safetensors
import ZeroMQ

/// `noised feed`: a producer of latent batches, synthetic or read from `.safetensors` files.
public struct Feeder {
    public struct Options: Sendable {
        public var endpoint: String
        public var bind = false
        public var shape: [Int] = [2, 12, 28, 60, 106]
        public var dtype: ElementType = .bf16
        public var tensor = "latents"
        /// Batches to send; 0 sends until stopped.
        public var count = 0
        /// Batches per second; nil sends as fast as the daemon takes them.
        public var rate: Double?
        /// A folder of `.safetensors` files sent in name order, cycling; nil for synthetic latents.
        public var directory: String?
        public var seed: UInt64 = 0

        public init(endpoint: String) { self.endpoint = endpoint }
    }

    public struct Report: Sendable {
        public var batches = 0
        public var bytes = 0
        public var seconds = 0.0
    }

    public let options: Options

    public init(options: Options) { self.options = options }

    /// The messages to cycle through: the files' bytes as they are, or a few synthetic batches.
    public func messages() throws -> [[UInt8]] {
        if let directory = options.directory {
            let names = try FileManager.default.contentsOfDirectory(atPath: directory)
                .filter { $0.hasSuffix(".safetensors") }.sorted()
            guard !names.isEmpty else { throw FeedError("no .safetensors files in \(directory)") }
            return try names.map { name in
                let path = directory + "/" + name
                guard let data = FileManager.default.contents(atPath: path) else { throw FeedError("cannot read \(path)") }
                return [UInt8](data)
            }
        }
        guard !options.shape.isEmpty, options.shape.allSatisfy({ $0 > 0 }) else {
            throw FeedError("shape must be positive dimensions, got \(options.shape)")
        }
        let perSample = options.shape.dropFirst().reduce(1, *)
        let stream = NoiseStream(seed: options.seed)
        // Four distinct batches are enough to keep consumers honest without regenerating per send.
        return try (0..<4).map { variant in
            var values = [Float](repeating: 0, count: options.shape[0] * perSample)
            values.withUnsafeMutableBufferPointer { all in
                for b in 0..<options.shape[0] {
                    let slice = UnsafeMutableBufferPointer(rebasing: all[(b * perSample)..<((b + 1) * perSample)])
                    stream.fill(noiseID: UInt64(variant * options.shape[0] + b), elements: 0..<perSample, into: slice)
                }
            }
            let data = ElementType.encode(values, as: options.dtype)
            return try encodeSafetensors(
                [(name: options.tensor, dtype: options.dtype.dtype, shape: options.shape, data: data)],
                metadata: ["source": "noised feed"])
        }
    }

    public func run(until stop: () -> Bool) throws -> Report {
        let messages = try messages()
        let context = try ZMQContext()
        let socket = try ZMQSocket(context, type: .push)
        try socket.setTimeouts(send: 100)
        // Batches already queued are still delivered after the last send returns.
        try socket.setLinger(milliseconds: 60_000)
        if options.bind { try socket.bind(options.endpoint) } else { try socket.connect(options.endpoint) }
        defer { socket.close() }

        var report = Report()
        let clock = ContinuousClock()
        let start = clock.now
        while options.count == 0 || report.batches < options.count {
            if stop() { break }
            if let rate = options.rate, rate > 0 {
                let due = start + .seconds(Double(report.batches) / rate)
                if due > clock.now { Thread.sleep(forTimeInterval: (due - clock.now).seconds) }
            }
            let message = messages[report.batches % messages.count]
            if try socket.send(copying: message) {
                report.batches += 1
                report.bytes += message.count
            }
        }
        report.seconds = (clock.now - start).seconds
        return report
    }
}

public struct FeedError: Error, CustomStringConvertible {
    public let description: String
    init(_ description: String) { self.description = description }
}

extension Duration {
    var seconds: Double { Double(components.seconds) + Double(components.attoseconds) / 1e18 }
}
