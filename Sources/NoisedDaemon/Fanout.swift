import Configuration
import CoreMetrics
import Foundation
import Logging
import NoisedProtocol
import NoisedRuntime
import Synchronization
import ZeroMQ

/// One input stream, several outputs (`outputs`, `fanout`): takes batches from the daemon's input
/// sockets and hands each to the pipeline of every output (`copy`) or of one (`split`), over
/// inproc and without copying the bytes. Each output's pipeline is an ordinary `Pipeline` with its
/// own schedule, step, state, feedback and output socket, whose acknowledged input is the relay
/// from here; an acknowledged producer gets its reply once every output sent a copy has answered.
// @unchecked: everything mutable is touched only on the fan-out thread; the doors are Atomic/Mutex.
package final class Fanout: @unchecked Sendable {
    /// One output as the fan-out sees it.
    struct Route {
        let name: String
        /// DEALER, connected to the output pipeline's inproc ROUTER.
        let relay: ZMQSocket
        var whenFull: WhenFull
        var weight: Double
        let forwarded: CoreMetrics.Counter
        let dropped: CoreMetrics.Counter
    }

    /// A batch handed to some outputs whose answers are awaited.
    struct Pending {
        /// The producer's identity and ticket on the acknowledged input; nil for the plain input.
        let producer: (identity: [UInt8], ticket: [UInt8])?
        var waiting: Set<Int>
        var answers: [Int: AckReply] = [:]
        /// Still being handed to its outputs.
        var handing = false
    }

    package let pipelines: [Pipeline]
    let logger: Logger
    private let clock: PipelineClock
    private let context: ZMQContext
    private let authenticator: ZAPAuthenticator?
    private var config: NoisedConfig
    private let names: [String]
    private let input: ZMQSocket
    private let inputEvents: ZMQSocket
    private let acked: ZMQSocket?
    private var routes: [Route]
    private var pending: [UInt64: Pending] = [:]
    private var turns: WeightedTurns
    private var nextTicket: UInt64 = 0
    /// The first ticket whose producer has not been answered.
    private var oldestPending: UInt64 = 0
    private var disconnects = InputDisconnects()
    private var dropLog = RejectLog(message: "dropped an output's copy", level: .warning, interval: .seconds(10))
    private let counters: FanoutCounters
    private let stopRequestedAt = Mutex<ContinuousClock.Instant?>(nil)
    private let pendingConfig = Mutex<NoisedConfig?>(nil)
    private let failure = Mutex<(any Error)?>(nil)
    let heartbeat: Heartbeat
    private static let batchesPerPoll = 16

    /// The inproc address output `index`'s pipeline takes its batches on.
    static func relayEndpoint(_ index: Int) -> String { "inproc://noised-fanout-\(index)" }

    /// Makes every output's pipeline (each binding its output), then the relays, then the input
    /// sockets, so trainers can connect before producers send.
    /// - Parameter metrics: one per output, in `config.outputs` order.
    package init(config: NoisedConfig, logger: Logger, metrics: [NoisedMetrics], metricsAddress: String? = nil,
                 clock: PipelineClock = .continuous) throws {
        precondition(!config.outputs.isEmpty && metrics.count == config.outputs.count, "a fan-out needs its outputs' metrics")
        self.config = config
        self.logger = logger
        self.clock = clock
        heartbeat = Heartbeat(clock: clock)
        names = config.outputs.map(\.name)
        let context = try ZMQContext()
        self.context = context
        let security = try SocketSecurity(config.security.curve)
        let counters = FanoutCounters(registry: metrics[0].registry, outputs: names)
        self.counters = counters
        if let security {
            let refusals = RefusalLog(logger: logger, clock: clock)
            authenticator = try ZAPAuthenticator(context: context, allowedKeys: security.authorizedKeys) { [counters] denial in
                counters.unauthorized.increment()
                refusals.record(denial)
            }
        } else {
            authenticator = nil
        }
        pipelines = try config.outputs.indices.map { index in
            do {
                return try Pipeline(config: config.relayedConfig(ofOutput: index), logger: logger, metrics: metrics[index],
                                    metricsAddress: metricsAddress, context: context, clock: clock,
                                    output: OutputIdentity(name: config.outputs[index].name, index: index))
            } catch let error as SocketAttachError {
                // The output's own socket, named as the file names it.
                throw SocketAttachError(keyPath: "outputs[\(index)]." + error.keyPath.replacingOccurrences(of: "output.", with: ""),
                                        endpoint: error.endpoint, bind: error.bind, reason: error.reason)
            }
        }
        routes = try config.outputs.enumerated().map { index, target in
            let relay = try ZMQSocket(context, type: .dealer)
            // Answers are a few bytes each and must never be refused: no receive limit.
            try relay.setHighWaterMarks(send: 1, receive: 0)
            try relay.setTimeouts(send: Pipeline.pollMilliseconds)
            try relay.setLinger(milliseconds: 0)
            try relay.connect(Self.relayEndpoint(index))
            return Route(name: target.name, relay: relay, whenFull: target.whenFull, weight: target.weight,
                         forwarded: counters.copies[index].forwarded, dropped: counters.copies[index].dropped)
        }
        turns = WeightedTurns(weights: config.outputs.map(\.weight))
        (input, inputEvents) = try PipelineSockets.makeInput(context, config, security)
        acked = try PipelineSockets.makeAcked(context, config, security)
        heartbeat.beat()
    }

    // MARK: Doors, from any thread

    package func requestStop() {
        stopRequestedAt.withLock { requested in
            if requested == nil { requested = clock.now() }
        }
    }

    private var stopping: Bool { stopRequestedAt.withLock { $0 != nil } || failure.withLock { $0 != nil } }

    /// Hands a validated config over; each output's part goes to its pipeline. The outputs
    /// themselves (their names and order) change only with a restart.
    package func requestReload(_ new: NoisedConfig) throws {
        guard new.outputs.map(\.name) == names else {
            throw ReloadRefusal(
                message: "outputs: the list of outputs (their names and order) changes only with a restart; running "
                    + "[\(names.joined(separator: ", "))], the file has [\(new.outputs.map(\.name).joined(separator: ", "))]")
        }
        pendingConfig.withLock { $0 = new }
        for (index, pipeline) in pipelines.enumerated() { pipeline.requestReload(new.relayedConfig(ofOutput: index)) }
    }

    package var step: Int64 { pipelines.map(\.step).max() ?? 0 }
    package var batchesSent: UInt64 { pipelines.reduce(0) { $0 + $1.batchesSent } }
    package var secondsSinceHeartbeat: Double { ([heartbeat.secondsSinceBeat] + pipelines.map(\.secondsSinceHeartbeat)).max() ?? 0 }
    package var healthProblem: String? {
        for pipeline in pipelines { if let problem = pipeline.healthProblem { return "output \(pipeline.settings.output?.name ?? "?"): \(problem)" } }
        let stalled = heartbeat.secondsSinceBeat
        return stalled < 10 ? nil : String(format: "the fan-out has not come round for %.0f s", stalled)
    }

    // MARK: The fan-out thread

    /// Runs every output's pipeline on its own thread and the fan-out on this one, until a stop
    /// is requested or a pipeline fails. The drain forwards what is queued on the inputs and waits
    /// for the outputs' answers, then stops the pipelines, all within `shutdown.drain_seconds`.
    package func run() throws {
        let finished = DispatchGroup()
        for pipeline in pipelines {
            finished.enter()
            let thread = Thread { [self, finished] in
                do { _ = try pipeline.run() } catch { failure.withLock { $0 = $0 ?? error } }
                finished.leave()
            }
            thread.name = "noised-output"
            thread.start()
        }
        var stoppedAt: ContinuousClock.Instant?
        defer {
            let startedAt = stoppedAt ?? clock.now()
            for pipeline in pipelines { pipeline.requestStop(startedAt: startedAt) }
            finished.wait()
            authenticator?.stop()
            input.close()
            inputEvents.close()
            acked?.close()
            for route in routes { route.relay.close() }
            context.terminate()
        }
        logger.info("fan-out ready", metadata: [
            "input": "\(config.input.endpoint)", "acked_input": "\(config.input.ackedEndpoint ?? "none")",
            "fanout": "\(config.fanout)", "outputs": "\(names.joined(separator: ","))",
        ])
        while !stopping {
            heartbeat.beat()
            applyPendingReload()
            var watched = [inputEvents, input] + routes.map(\.relay)
            if let acked { watched.append(acked) }
            let ready = try ZMQSocket.waitReadable(watched, milliseconds: Int(Pipeline.pollMilliseconds))
            if ready[0] {
                let closed = try disconnects.take(from: inputEvents, maxMessageBytes: config.input.maxMessageBytes,
                                                  logger: logger, now: clock.now())
                if closed > 0 { counters.inputDisconnects.increment(by: Int64(closed)) }
            }
            try takeAnswers()
            if ready[1] || (acked != nil && ready[watched.count - 1]) { try takeBatches(until: nil) }
        }
        if let error = failure.withLock({ $0 }) { throw error }

        // Drain: forward what is queued, collect the answers, then let the pipelines stop.
        let startedAt = stopRequestedAt.withLock { $0 } ?? clock.now()
        stoppedAt = startedAt
        let deadline = startedAt + .seconds(config.shutdown.drainSeconds)
        try takeBatches(until: deadline)
        while !pending.isEmpty, clock.now() < deadline {
            heartbeat.beat()
            _ = try ZMQSocket.waitReadable(routes.map(\.relay), milliseconds: Int(Pipeline.pollMilliseconds))
            try takeAnswers()
        }
        for ticket in pending.keys.sorted() {
            guard let entry = pending.removeValue(forKey: ticket), let producer = entry.producer else { continue }
            let answer = entry.waiting.isEmpty ? Self.settle(entry.answers, names: names) : .unsent(
                detail: "the daemon stopped (shutdown.drain_seconds ran out) before every output answered for this batch; send it again")
            reply(to: producer, answer)
        }
        try? acked?.setLinger(milliseconds: Int32(max(.zero, deadline - clock.now()).seconds * 1000))
    }

    private var drainDeadline: ContinuousClock.Instant? {
        stopRequestedAt.withLock { $0 }.map { $0 + .seconds(config.shutdown.drainSeconds) }
    }

    private func applyPendingReload() {
        guard let new = pendingConfig.withLock({ config in defer { config = nil }; return config }) else { return }
        if new.inputSocket != config.inputSocket || new.ackedSocket != config.ackedSocket {
            logger.warning("with outputs, the input sockets change only with a restart; keeping the running input",
                           metadata: ["input": "\(config.input.endpoint)", "acked_input": "\(config.input.ackedEndpoint ?? "none")"])
        }
        if let curve = new.security.curve, let authenticator {
            do {
                try authenticator.updateAllowedKeys(try KeyFiles.loadAuthorizedKeys(directory: curve.authorizedKeysDir))
            } catch {
                logger.error("cannot read the authorized keys; keeping the running ones", metadata: ["error": "\(error)"])
            }
        }
        var kept = new
        kept.input = config.input
        kept.keepRestartOnlyValues(from: config)
        for (index, target) in kept.outputs.enumerated() {
            routes[index].whenFull = target.whenFull
            routes[index].weight = target.weight
        }
        config = kept
    }

    /// Takes queued batches from both inputs in turn: at most `batchesPerPoll` while running, or
    /// all that are queued before `deadline` when draining.
    private func takeBatches(until deadline: ContinuousClock.Instant?) throws {
        var (fromInput, fromAcked) = (true, acked != nil)
        var taken = 0
        while fromInput || fromAcked {
            if let deadline { guard clock.now() < deadline else { return } } else {
                guard taken < Self.batchesPerPoll, !stopping else { return }
            }
            if fromInput {
                if let message = try input.receive(dontWait: true) {
                    try forward(message, producer: nil)
                    taken += 1
                } else { fromInput = false }
            }
            if fromAcked, let acked {
                if let (frames, dropped) = try acked.receiveFrames(maxFrames: 3, dontWait: true) {
                    taken += 1
                    let identity = frames[0].array
                    guard frames.count == 3, dropped == 0, frames[1].count == AckEnvelope.ticketBytes else {
                        counters.badEnvelopes.increment()
                        let ticket = frames.count > 1 && frames[1].count == AckEnvelope.ticketBytes ? frames[1].array : []
                        reply(to: (identity, ticket), .rejected(
                            reason: RejectReason.badEnvelope.rawValue,
                            detail: "an acknowledged request is 2 frames, an 8-byte ticket then the batch; got \(frames.count - 1 + dropped) frame(s)"))
                        continue
                    }
                    try forward(frames[2], producer: (identity, frames[1].array))
                } else { fromAcked = false }
            }
        }
    }

    /// Hands `message` to its outputs and records what it waits for.
    private func forward(_ message: ZMQMessage, producer: (identity: [UInt8], ticket: [UInt8])?) throws {
        heartbeat.beat()
        counters.batches.increment()
        let ticket = nextTicket
        nextTicket &+= 1
        let ticketBytes = withUnsafeBytes(of: ticket.littleEndian) { Array($0) }
        // Entered first: while one output is waited for, another may already answer.
        pending[ticket] = Pending(producer: producer, waiting: [], handing: true)
        for index in config.fanout == .copy ? Array(routes.indices) : [nextSplitRoute()] {
            // The producer's answer waits for the `block` outputs only: a `drop` output's copy is
            // best effort, and its trainer may be gone for good.
            let awaited = routes[index].whenFull == .block
            if awaited { pending[ticket]?.waiting.insert(index) }
            if try hand(message, ticket: ticketBytes, to: index) {
                routes[index].forwarded.increment()
            } else {
                if awaited { pending[ticket]?.waiting.remove(index) }
                routes[index].dropped.increment()
            }
        }
        // Settled at once when no output took it; its answer (unsent) still waits its turn.
        pending[ticket]?.handing = false
        releaseSettled()
    }

    /// Replies to producers in the order their batches came: a producer reads a skipped answer as
    /// lost. So a settled batch waits for the ones before it (under `split` another output may
    /// answer first).
    private func releaseSettled() {
        while let entry = pending[oldestPending], entry.waiting.isEmpty, !entry.handing {
            pending[oldestPending] = nil
            oldestPending &+= 1
            if let producer = entry.producer { reply(to: producer, Self.settle(entry.answers, names: names)) }
        }
    }

    private func nextSplitRoute() -> Int {
        turns.weights = routes.map(\.weight)
        return turns.next()
    }

    /// Queues the batch on one output's relay. A `drop` output with no room is skipped at once; a
    /// `block` one is waited for, taking the other outputs' answers meanwhile, until the drain
    /// deadline. False: not queued.
    private func hand(_ message: ZMQMessage, ticket: [UInt8], to index: Int) throws -> Bool {
        let route = routes[index]
        if route.whenFull == .drop {
            if try route.relay.send(prefix: [ticket], sharing: message, dontWait: true) { return true }
            dropLog.record(reason: "output_full", detail: "output \(route.name)'s queue is full (when_full: drop)",
                           logger: logger, now: clock.now())
            return false
        }
        while true {
            // The relay's send timeout brings this round every poll interval.
            if try route.relay.send(prefix: [ticket], sharing: message) { return true }
            heartbeat.beat()
            try takeAnswers()
            if let deadline = drainDeadline, clock.now() >= deadline { return false }
            if failure.withLock({ $0 != nil }) { return false }
        }
    }

    /// Reads every answer the pipelines sent back and replies to producers whose batch is settled.
    private func takeAnswers() throws {
        for index in routes.indices {
            while let parts = try routes[index].relay.receiveMultipart(dontWait: true) {
                guard parts.count == 2, parts[0].count == 8 else { continue }
                let ticket = parts[0].withUnsafeBytes { UInt64(littleEndian: $0.loadUnaligned(as: UInt64.self)) }
                guard var entry = pending[ticket], entry.waiting.contains(index),
                      let answer = parts[1].withUnsafeBytes({ try? AckReply(status: $0) }) else { continue }
                entry.waiting.remove(index)
                entry.answers[index] = answer
                pending[ticket] = entry
            }
        }
        releaseSettled()
    }

    /// The producer's answer: ok if any output queued the batch (with the first such output's
    /// seq), else the first rejection, else unsent.
    package static func settle(_ answers: [Int: AckReply], names: [String]) -> AckReply {
        let ordered = answers.sorted { $0.key < $1.key }
        for (_, answer) in ordered { if case .ok = answer { return answer } }
        for (index, answer) in ordered {
            if case let .rejected(reason, detail) = answer { return .rejected(reason: reason, detail: "output \(names[index]): \(detail)") }
        }
        return ordered.first?.value ?? .unsent(detail: "no output took this batch; send it again")
    }

    private func reply(to producer: (identity: [UInt8], ticket: [UInt8]), _ answer: AckReply) {
        guard let acked else { return }
        counters.acknowledgement(answer.status).increment()
        do {
            if try !acked.send(parts: [producer.identity, producer.ticket, answer.encoded], dontWait: true) {
                counters.acknowledgement("dropped").increment()
            }
        } catch {
            counters.acknowledgement("dropped").increment()
            logger.debug("cannot send an acknowledgement", metadata: ["error": "\(error)"])
        }
    }
}

/// A reload the running daemon cannot take.
package struct ReloadRefusal: Error, CustomStringConvertible {
    package let message: String
    package var description: String { message }
}

extension NoisedConfig {
    /// Output `index`'s pipeline config: its part of the config, its input the fan-out's relay.
    func relayedConfig(ofOutput index: Int) -> NoisedConfig {
        var derived = config(ofOutput: index)
        derived.input.endpoint = Fanout.relayEndpoint(index) + "-plain"
        derived.input.ackedEndpoint = Fanout.relayEndpoint(index)
        derived.input.bind = true
        // What waits for a slow output is its output queue, not batches parked on the relay.
        derived.input.highWaterMark = 1
        return derived
    }
}
