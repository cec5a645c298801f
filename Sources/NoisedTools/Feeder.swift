import Foundation
import NoisedDaemon
import NoisedProtocol
import NoisedRuntime
import NoiseKernel
import NoiseKernelCore
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
        /// Speak the acknowledged input (a DEALER to `input.acked_endpoint`); false pushes plainly.
        public var acknowledged = true
        /// Batches sent and not yet answered, at most.
        public var window = 16
        /// How long to wait for an answer before giving up on the daemon.
        public var ackTimeout: Duration = .seconds(30)

        public init(endpoint: String) { self.endpoint = endpoint }
    }

    /// What was sent and, acknowledged, what the daemon answered.
    public struct Report: Sendable {
        public var batches = 0
        public var bytes = 0
        public var seconds = 0.0
        public var acknowledged = 0
        /// Rejected batches by reason label.
        public var rejected: [String: Int] = [:]
        public var unsent = 0
        /// Batches still without an answer when the feed gave up waiting.
        public var unacknowledged = 0
        /// Why the feed stopped early or could not confirm every batch, if it did.
        public var problem: String?

        public var rejectedCount: Int { rejected.values.reduce(0, +) }
        /// Every batch sent was acknowledged (always true for a plain feed, which cannot know).
        public var delivered: Bool { problem == nil && rejectedCount + unsent + unacknowledged == 0 }
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
        let socket = try ZMQSocket(context, type: options.acknowledged ? .dealer : .push)
        try socket.setTimeouts(send: 100)
        // Plain: batches already queued are still delivered after the last send returns.
        // Acknowledged: the answers say what arrived; nothing is left to linger for.
        try socket.setLinger(milliseconds: options.acknowledged ? 0 : 60_000)
        if options.acknowledged {
            try socket.setHighWaterMarks(send: Int32(clamping: options.window), receive: Int32(clamping: options.window))
        }
        do {
            if options.bind { try socket.bind(options.endpoint) } else { try socket.connect(options.endpoint) }
        } catch {
            throw FeedError("\(options.endpoint): cannot \(options.bind ? "bind" : "connect"): \(error)")
        }
        defer { socket.close() }
        var tickets = TicketWindow(limit: options.window)
        var report = Report()
        let clock = ContinuousClock()
        let start = clock.now
        sending: while options.count == 0 || report.batches < options.count {
            if stop() { break }
            if let rate = options.rate, rate > 0 {
                let due = start + .seconds(Double(report.batches) / rate)
                if due > clock.now { Thread.sleep(forTimeInterval: (due - clock.now).seconds) }
            }
            if options.acknowledged {
                try takeAnswers(socket, &tickets, &report, waitFor: 0)
                var waitedSince = clock.now
                while tickets.isFull {
                    if stop() { break sending }
                    if try takeAnswers(socket, &tickets, &report, waitFor: 1) > 0 { waitedSince = clock.now }
                    if clock.now - waitedSince > options.ackTimeout {
                        report.problem = "no answer from \(options.endpoint) for \(options.ackTimeout) with \(tickets.count) batches waiting: is the daemon running, and is this its input.acked_endpoint?"
                        break sending
                    }
                }
            }
            let message = messages[report.batches % messages.count]
            let sent = options.acknowledged
                ? try socket.send(parts: [tickets.next.littleEndianBytes, message])
                : try socket.send(copying: message)
            if sent {
                if options.acknowledged { tickets.sent() }
                report.batches += 1
                report.bytes += message.count
            }
        }
        if options.acknowledged {
            var waitedSince = clock.now
            while !tickets.isEmpty, clock.now - waitedSince <= options.ackTimeout {
                if try takeAnswers(socket, &tickets, &report, waitFor: 10) > 0 { waitedSince = clock.now }
            }
            report.unacknowledged += tickets.count
            if !tickets.isEmpty, report.problem == nil {
                report.problem = "\(tickets.count) batches unanswered by \(options.endpoint) after waiting \(options.ackTimeout)"
            }
        }
        report.seconds = (clock.now - start).seconds
        return report
    }

    /// Reads the answers that arrive within `milliseconds` (then any already queued); how many.
    @discardableResult
    private func takeAnswers(_ socket: ZMQSocket, _ tickets: inout TicketWindow, _ report: inout Report,
                             waitFor milliseconds: Int) throws -> Int {
        guard try socket.waitReadable(milliseconds: milliseconds) else { return 0 }
        var count = 0
        while let frames = try socket.receiveMultipart(dontWait: true) {
            guard frames.count == 2, frames[0].count == AckEnvelope.ticketBytes else {
                throw FeedError("\(options.endpoint) answered with \(frames.count) frames, not [ticket, status]: is it a noised input.acked_endpoint?")
            }
            let ticket = frames[0].withUnsafeBytes { $0.loadUnaligned(as: UInt64.self).littleEndian }
            guard let skipped = tickets.answer(ticket) else {
                throw FeedError("\(options.endpoint) answered ticket \(ticket), which was not waiting for an answer")
            }
            // Answers come in send order: tickets passed over were lost with a daemon that restarted.
            report.unacknowledged += skipped
            let reply = try frames[1].withUnsafeBytes { raw throws(ProtocolError) in try AckReply(status: raw) }
            switch reply {
            case .ok: report.acknowledged += 1
            case .rejected(let reason, _): report.rejected[reason, default: 0] += 1
            case .unsent: report.unsent += 1
            }
            count += 1
        }
        return count
    }
}

/// The tickets of batches sent and not answered; answers come in send order, so a range suffices.
struct TicketWindow {
    let limit: Int
    private(set) var next: UInt64 = 0
    private var oldest: UInt64 = 0

    init(limit: Int) { self.limit = max(1, limit) }

    var count: Int { Int(next - oldest) }
    var isFull: Bool { count >= limit }
    var isEmpty: Bool { count == 0 }

    mutating func sent() { next += 1 }

    /// Marks `ticket` answered and returns how many older tickets it passed over (never to be
    /// answered now); nil if `ticket` is not waiting.
    mutating func answer(_ ticket: UInt64) -> Int? {
        guard ticket >= oldest, ticket < next else { return nil }
        let skipped = Int(ticket - oldest)
        oldest = ticket + 1
        return skipped
    }
}

extension UInt64 {
    var littleEndianBytes: [UInt8] { withUnsafeBytes(of: littleEndian) { Array($0) } }
}

public struct FeedError: Error, CustomStringConvertible {
    public let description: String
    init(_ description: String) { self.description = description }
}

