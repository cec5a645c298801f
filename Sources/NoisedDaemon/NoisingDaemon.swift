import Configuration
import Foundation
import Logging
import NoisedProtocol
import Synchronization
import ZeroMQ

/// The running service: PULL latents → noise → PUSH (z_t, ε, σ), with state kept across restarts.
///
/// `run` drives the pipeline on the calling thread until `requestStop`; then it drains what was
/// received (bounded by `shutdown.drain_seconds`), saves state and returns the counts.
public final class NoisingDaemon: @unchecked Sendable {
    public struct Summary: Sendable {
        public var received: UInt64 = 0
        public var sent: UInt64 = 0
        public var undelivered: UInt64 = 0
        public var rejected: [RejectReason: UInt64] = [:]
    }

    private let config: NoisedConfig
    private let logger: Logger
    private let stopRequested = Atomic<Bool>(false)
    /// How often a blocked receive or send wakes up to look at `stopRequested`.
    private static let pollMilliseconds: Int32 = 100
    private static let saveInterval: Duration = .seconds(2)

    public init(config: NoisedConfig, logger: Logger) {
        self.config = config
        self.logger = logger
    }

    /// Safe from any thread, including a signal-watching one.
    public func requestStop() { stopRequested.store(true, ordering: .relaxed) }

    private var stopping: Bool { stopRequested.load(ordering: .relaxed) }

    public func run() throws -> Summary {
        let store = config.stateDir.map(StateStore.init(directory:))
        var state = try store?.load() ?? DaemonState()
        let settings = NoisingSettings(config)

        let context = try ZMQContext()
        let input = try ZMQSocket(context, type: .pull)
        try input.setHighWaterMarks(receive: Int32(clamping: config.input.highWaterMark))
        try input.setTimeouts(receive: Self.pollMilliseconds)
        try input.setLinger(milliseconds: 0)
        let output = try ZMQSocket(context, type: .push)
        try output.setHighWaterMarks(send: Int32(clamping: config.output.highWaterMark))
        try output.setTimeouts(send: Self.pollMilliseconds)
        try attach(input, config.input.endpoint, bind: config.input.bind)
        try attach(output, config.output.endpoint, bind: config.output.bind)

        let buffers = MessageBufferPool(maxIdle: config.output.highWaterMark + config.workers + 2)
        let noiser = BatchNoiser(seed: config.seed, workers: config.workers, buffers: buffers)
        defer { noiser.shutdown() }

        logger.info("ready", metadata: [
            "input": "\(config.input.endpoint)", "output": "\(config.output.endpoint)",
            "workers": "\(config.workers)", "step": "\(state.step(batchesPerStep: settings.batchesPerStep))",
            "seq": "\(state.seq)", "samples": "\(state.samples)",
        ])

        var summary = Summary()
        var rejects = RejectLog()
        var lastSave = ContinuousClock.now
        var saved = state

        func save() {
            guard let store, state != saved else { return }
            do {
                try store.save(state)
                saved = state
            } catch { logger.error("cannot save state", metadata: ["error": "\(error)"]) }
            lastSave = .now
        }

        /// Noises and sends one message; false if it could not be delivered before `deadline`.
        func handle(_ message: ZMQMessage, deadline: ContinuousClock.Instant?) throws {
            summary.received += 1
            let noised: NoisedMessage
            do {
                noised = try noiser.noise(message.bytes, settings: settings, state: &state)
            } catch {
                rejects.record(error, logger: logger)
                return
            }
            let outgoing = try ZMQOutgoingMessage(zeroCopy: noised.buffer.pointer, count: noised.byteCount) {
                [buffer = noised.buffer] in buffers.recycle(buffer)
            }
            // A blocked send wakes up every poll interval; once stopping, it gives up at the deadline.
            while try !output.send(outgoing) {
                if let deadline, ContinuousClock.now >= deadline {
                    summary.undelivered += 1
                    return
                }
                if deadline == nil && stopping { return try handleStopWhileBlocked(outgoing) }
            }
            summary.sent += 1
        }

        /// A stop arrived while a send was blocked: keep trying until the drain deadline.
        func handleStopWhileBlocked(_ outgoing: ZMQOutgoingMessage) throws {
            let deadline = ContinuousClock.now + .seconds(config.shutdown.drainSeconds)
            while try !output.send(outgoing) {
                if ContinuousClock.now >= deadline {
                    summary.undelivered += 1
                    return
                }
            }
            summary.sent += 1
        }

        while !stopping {
            if let message = try input.receive() { try handle(message, deadline: nil) }
            if ContinuousClock.now - lastSave >= Self.saveInterval { save() }
        }

        // Drain: everything already queued on the input is noised and sent, within the bound.
        let deadline = ContinuousClock.now + .seconds(config.shutdown.drainSeconds)
        var drained = 0
        while ContinuousClock.now < deadline, let message = try input.receive(dontWait: true) {
            try handle(message, deadline: deadline)
            drained += 1
        }
        let left = max(.zero, deadline - ContinuousClock.now)
        try output.setLinger(milliseconds: Int32(left.seconds * 1000))
        input.close()
        output.close()
        save()

        summary.rejected = rejects.counts
        var metadata: Logger.Metadata = [
            "received": "\(summary.received)", "sent": "\(summary.sent)", "rejected": "\(rejects.total)",
            "undelivered": "\(summary.undelivered)", "drained": "\(drained)",
            "step": "\(state.step(batchesPerStep: settings.batchesPerStep))", "seq": "\(state.seq)",
        ]
        metadata.merge(rejects.summary) { a, _ in a }
        logger.info("stopped", metadata: metadata)
        return summary
    }

    private func attach(_ socket: ZMQSocket, _ endpoint: String, bind: Bool) throws {
        if bind { try socket.bind(endpoint) } else { try socket.connect(endpoint) }
    }
}
