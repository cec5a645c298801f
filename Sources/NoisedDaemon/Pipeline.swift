import Configuration
import Foundation
import Logging
import NoisedProtocol
import NoisedRuntime
import NoiseKernel
import Synchronization
import ZeroMQ

/// The data path on one dedicated thread: PULL/ROUTER → noise → PUSH, plus trainers' feedback.
///
/// Blocking ZeroMQ calls happen only here, never on Swift's cooperative pool. Other threads talk to
/// the pipeline through thread-safe doors: `requestStop`, `requestReload`, `heartbeat` and the
/// health and progress readings.
// @unchecked: everything mutable is touched only on the pipeline thread; the doors are Atomic/Mutex.
package final class Pipeline: @unchecked Sendable {
    package struct Summary: Sendable {
        package var received: UInt64 = 0
        package var sent: UInt64 = 0
        package var undelivered: UInt64 = 0
        package var rejected: [RejectReason: UInt64] = [:]
        package var reports: UInt64 = 0
        package var reportsRejected: UInt64 = 0
        package var inputDisconnects: UInt64 = 0
    }

    /// What became of one received batch.
    enum Outcome {
        case queued(seq: UInt64)
        case rejected(ProtocolError)
        /// Noised, but the drain bound ran out before the output socket took it.
        case unsent
    }

    var config: NoisedConfig
    var settings: NoisingSettings
    let logger: Logger
    let context: ZMQContext
    var sockets: PipelineSockets
    /// Checks CURVE clients' keys when `security.curve` is set.
    let authenticator: ZAPAuthenticator?
    let metrics: NoisedMetrics
    let clock: PipelineClock
    private let metricsAddress: String?
    let noiser: BatchNoiser
    let ids: IDLedger
    var summary = Summary()
    var rejects = RejectLog()
    private var reportRejects = RejectLog(message: "rejected report")
    private var staleReports = RejectLog(message: "stale report", level: .info)
    private var disconnects = InputDisconnects()
    /// Set while a reload is being applied, so a batch it sends does not start another.
    var applyingReload = false
    /// Latent shapes whose sequence-length shift was logged under the running schedule.
    var shiftsLogged = Set<[Int]>()

    private let stopRequestedAt = Mutex<ContinuousClock.Instant?>(nil)
    let pendingConfig = Mutex<NoisedConfig?>(nil)
    /// The last time the loop came round.
    let heartbeat: Heartbeat
    private let sentCount = Atomic<UInt64>(0)
    let currentStep = Atomic<Int64>(0)
    /// Called on the pipeline thread once a reload has taken effect (with the keys that changed and
    /// the config now running) or was refused.
    package var onReloadApplied: @Sendable (Result<(changed: [String], config: NoisedConfig), Error>) -> Void = { _ in }
    /// Whether `run` terminates the context at its end (it made it) or leaves that to its owner.
    private let ownsContext: Bool
    /// How often a blocked receive or send wakes up to look at stop and reload requests.
    static let pollMilliseconds: Int32 = 100
    private static let saveInterval: Duration = .seconds(2)
    /// Batches taken from the input queues per poll: each poll is a system call, and a saturated
    /// input has the next batch already queued. Reloads, reports and producer disconnects wait at
    /// most this many batches.
    private static let batchesPerPoll = 16

    /// - Parameters:
    ///   - context: the ZeroMQ context to make the sockets in; nil makes one. A test gives its own,
    ///     so its sockets can speak `inproc://` with the pipeline's.
    ///   - clock: where every deadline, interval and heartbeat reads the time.
    ///   - output: the fan-out output this pipeline feeds; its input is the fan-out's relay, and
    ///     the fan-out, which owns the shared context, checks CURVE clients for it.
    package init(config: NoisedConfig, logger: Logger, metrics: NoisedMetrics, metricsAddress: String? = nil,
                 context: ZMQContext? = nil, clock: PipelineClock = .continuous, output: OutputIdentity? = nil) throws {
        self.clock = clock
        heartbeat = Heartbeat(clock: clock)
        self.config = config
        self.settings = NoisingSettings(config, output: output)
        var logger = logger
        if let output { logger[metadataKey: "output_name"] = "\(output.name)" }
        self.logger = logger
        self.metrics = metrics
        self.metricsAddress = metricsAddress
        // The state directory must take the first reservation before any socket opens: a daemon
        // that cannot persist its ids must not hand any out.
        ids = try IDLedger(store: config.stateDir.map(StateStore.init(directory:)), maxBatch: settings.maxBatch,
                           logger: logger) { [metrics] _ in metrics.stateWriteFailures.increment() }
        self.context = try context ?? ZMQContext()
        ownsContext = context == nil
        let security = try SocketSecurity(config.security.curve)
        if let security, output == nil {
            let refusals = RefusalLog(logger: logger, clock: clock)
            // The handler must be bound before any CURVE server socket binds.
            authenticator = try ZAPAuthenticator(context: self.context, allowedKeys: security.authorizedKeys) { [metrics] denial in
                metrics.rejects(reason: "unauthorized").increment()
                refusals.record(denial)
            }
        } else {
            authenticator = nil
            for endpoint in config.allEndpoints where security == nil && !PipelineSockets.isLoopback(endpoint) {
                logger.warning("listening beyond this machine without CURVE: anyone who can reach it can send and receive",
                               metadata: ["endpoint": "\(endpoint)"])
            }
        }
        sockets = try PipelineSockets(context: self.context, config: config, security: security)
        let buffers = MessageBufferPool(maxIdle: config.output.highWaterMark + config.workers + 2)
        noiser = BatchNoiser(seed: config.seed, workers: config.workers, buffers: buffers)
        beat()
        currentStep.store(settings.step(for: ids.state), ordering: .relaxed)
        metrics.step.set(Double(settings.step(for: ids.state)))
    }

    var state: DaemonState { ids.state }
    /// The curriculum's current step; safe from any thread.
    package var step: Int64 { currentStep.load(ordering: .relaxed) }
    /// Batches sent so far; safe from any thread.
    package var batchesSent: UInt64 { sentCount.load(ordering: .relaxed) }

    /// Starts the drain: from now (or `startedAt`), `shutdown.drain_seconds` bound everything left to do.
    package func requestStop(startedAt: ContinuousClock.Instant? = nil) {
        stopRequestedAt.withLock { requested in
            if requested == nil { requested = startedAt ?? clock.now() }
        }
    }

    var stopping: Bool { stopRequestedAt.withLock { $0 != nil } }
    /// The instant the drain must be over; nil while running. Read on the pipeline thread, which
    /// owns the config.
    var drainDeadline: ContinuousClock.Instant? {
        stopRequestedAt.withLock { $0 }.map { $0 + .seconds(config.shutdown.drainSeconds) }
    }

    /// Hands a validated config to the pipeline; it takes effect before the next batch, or at once
    /// for the output while a batch waits to be sent.
    package func requestReload(_ config: NoisedConfig) { pendingConfig.withLock { $0 = config } }

    /// Seconds since the loop last came round.
    package var secondsSinceHeartbeat: Double { heartbeat.secondsSinceBeat }

    /// Why `/healthz` should answer 503, or nil: a loop that has not come round for 10 s is stuck,
    /// and one that cannot reserve noise ids takes no batches.
    package var healthProblem: String? {
        if let problem = ids.problem { return problem }
        let stalled = secondsSinceHeartbeat
        return stalled < 10 ? nil : String(format: "pipeline has not come round for %.0f s", stalled)
    }

    func beat() { heartbeat.beat() }

    package func run() throws -> Summary {
        defer {
            noiser.shutdown()
            authenticator?.stop()
            sockets.close(lingerMilliseconds: 0)  // already closed, with linger, unless run threw
            // Returns once the output's linger (the rest of the drain bound) is over.
            if ownsContext { context.terminate() }
        }
        logger.info("ready", metadata: [
            "input": "\(config.input.endpoint)", "acked_input": "\(config.input.ackedEndpoint ?? "none")",
            "output": "\(config.output.endpoint)",
            "feedback": "\(config.feedback.endpoint ?? "none")", "metrics": "\(metricsAddress ?? "none")",
            "curve": "\(authenticator != nil)", "workers": "\(config.workers)",
            "kernel": "\(NoiseKernel.Implementation.best)", "descriptors": "\(DescriptorLimit.current().soft)",
            "step": "\(step)", "seq": "\(state.seq)", "samples": "\(state.samples)",
        ])
        var lastSave = clock.now()
        while !stopping {
            beat()
            applyPendingReload(holdingBatch: false)
            let ready = try sockets.wait(input: ids.reserve(), milliseconds: Int(Self.pollMilliseconds))
            if ready.inputEvents { try takeInputEvents() }
            if ready.feedback { try takeReports() }
            if ready.input || ready.acked { try takeBatches(input: ready.input, acked: ready.acked, until: nil) }
            if clock.now() - lastSave >= Self.saveInterval {
                ids.saveIfChanged()
                lastSave = clock.now()
            }
        }

        // Drain: what is already queued on the inputs is noised and sent, within the bound.
        let deadline = drainDeadline ?? clock.now()
        let drained = try takeBatches(input: true, acked: true, until: deadline)
        sockets.close(lingerMilliseconds: Int32(max(.zero, deadline - clock.now()).seconds * 1000))
        ids.release()

        summary.rejected = Dictionary(uniqueKeysWithValues: rejects.counts.compactMap { label, n in
            RejectReason(rawValue: label).map { ($0, n) }
        })
        var metadata: Logger.Metadata = [
            "received": "\(summary.received)", "sent": "\(summary.sent)", "rejected": "\(rejects.total)",
            "undelivered": "\(summary.undelivered)", "drained": "\(drained)",
            "reports": "\(summary.reports)", "reports_rejected": "\(summary.reportsRejected)",
            "input_disconnects": "\(summary.inputDisconnects)",
            "step": "\(step)", "seq": "\(state.seq)",
        ]
        metadata.merge(rejects.summary) { a, _ in a }
        logger.info("stopped", metadata: metadata)
        return summary
    }

    /// Takes queued batches from both inputs in turn: at most `batchesPerPoll` while running, or
    /// all that are queued before `deadline` when draining. Returns how many were taken.
    @discardableResult
    func takeBatches(input: Bool, acked: Bool, until deadline: ContinuousClock.Instant?) throws -> Int {
        var (fromInput, fromAcked) = (input, acked && sockets.acked != nil)
        var taken = 0
        while fromInput || fromAcked {
            if let deadline { guard clock.now() < deadline else { break } } else {
                guard taken < Self.batchesPerPoll, !stopping else { break }
            }
            // No batch is taken without its noise ids and seq reserved on disk.
            guard ids.reserve() else { break }
            if fromInput {
                if let message = try sockets.input.receive(dontWait: true) {
                    try takePlain(message)
                    taken += 1
                } else { fromInput = false }
            }
            if fromAcked, let socket = sockets.acked {
                if try takeAcked(from: socket) { taken += 1 } else { fromAcked = false }
            }
        }
        return taken
    }

    private func takePlain(_ message: ZMQMessage) throws {
        beat()
        if case .rejected(let error) = try handle(message) { record(error) }
    }

    func record(_ error: ProtocolError) {
        rejects.record(error, logger: logger, now: clock.now())
        metrics.rejects(reason: error.reason.rawValue).increment()
    }

    /// Noises and sends one message. A send blocked by back-pressure wakes every poll interval to
    /// apply reloads (a new output endpoint takes the batch) and, once stopping, gives up at the
    /// drain deadline.
    func handle(_ message: ZMQMessage) throws -> Outcome {
        let arrival = clock.now()
        summary.received += 1
        metrics.batchesIn.increment()
        metrics.bytesIn.increment(by: Int64(message.count))
        let seq = ids.state.seq
        let noised: NoisedMessage
        do {
            noised = try message.withUnsafeBytes { bytes throws(ProtocolError) in
                try noiser.noise(bytes, settings: settings, state: &ids.state)
            }
        } catch {
            return .rejected(error)
        }
        metrics.samplesIn.increment(by: Int64(noised.sampleCount))
        logShiftOnce(latentShape: noised.latentShape)
        metrics.kernelLatency.recordNanoseconds(noised.kernelNanoseconds)
        let buffers = noiser.buffers
        let outgoing = try ZMQOutgoingMessage(zeroCopy: noised.buffer.pointer, count: noised.byteCount) {
            [buffer = noised.buffer] in buffers.recycle(buffer)
        }
        while try !sockets.output.send(outgoing) {
            beat()
            applyPendingReload(holdingBatch: true)
            if let deadline = drainDeadline, clock.now() >= deadline {
                summary.undelivered += 1
                return .unsent
            }
        }
        summary.sent += 1
        sentCount.store(summary.sent, ordering: .relaxed)
        currentStep.store(settings.step(for: ids.state), ordering: .relaxed)
        record(noised, arrival: arrival)
        return .queued(seq: seq)
    }

    /// A token count read wrongly (packed latents read as spatial ones) changes σ without an error,
    /// so the first batch of each shape says what the shift made of it. Bounded: a producer
    /// sending ever new shapes logs the first few hundred.
    private func logShiftOnce(latentShape: [Int]) {
        guard settings.schedule.usesLatentShape, shiftsLogged.count < 256,
              shiftsLogged.insert(latentShape).inserted else { return }
        let shifts = settings.schedule.sequenceLengthShifts(latentShape: latentShape)
        logger.info("sequence-length shift", metadata: [
            "shape": "\(latentShape.map(String.init).joined(separator: "x"))",
            "tokens": "\(shifts.map { String(format: "%.0f", $0.tokens) }.joined(separator: ","))",
            "shift": "\(shifts.map { String(format: "%.3f", $0.shift) }.joined(separator: ","))",
            "at_step": "\(shifts.map { String($0.atStep) }.joined(separator: ","))",
        ])
    }

    private func record(_ noised: NoisedMessage, arrival: ContinuousClock.Instant) {
        let elapsed = (clock.now() - arrival).components
        metrics.endToEndLatency.recordNanoseconds(elapsed.seconds * 1_000_000_000 + elapsed.attoseconds / 1_000_000_000)
        metrics.batchesOut.increment()
        metrics.samplesOut.increment(by: Int64(noised.sampleCount))
        metrics.bytesOut.increment(by: Int64(noised.byteCount))
        for sigma in noised.sigmas { metrics.sigma.record(Double(sigma)) }
        metrics.step.set(Double(step))
        metrics.pendingOutput.set(Double(noiser.buffers.allocatedCount - noiser.buffers.idleCount))
        if let cost = noised.couplingCost {
            metrics.independentCost.set(cost.independent)
            metrics.coupledCost.set(cost.coupled)
        }
        if let weights = noised.binWeights {
            for (bin, weight) in weights.enumerated() { metrics.binWeight(bin).set(weight) }
        }
    }

    private func takeInputEvents() throws {
        let closed = try disconnects.take(from: sockets.inputEvents, maxMessageBytes: config.input.maxMessageBytes,
                                          logger: logger, now: clock.now())
        summary.inputDisconnects += UInt64(closed)
        if closed > 0 { metrics.inputDisconnects.increment(by: Int64(closed)) }
    }

    /// Applies every report already queued on the feedback socket.
    private func takeReports() throws {
        guard let feedback = sockets.feedback else { return }
        while let message = try feedback.receive(dontWait: true) {
            summary.reports += 1
            metrics.feedbackReports.increment()
            do {
                let report = try message.withUnsafeBytes { bytes throws(FeedbackError) in try FeedbackReport(message: bytes) }
                switch ids.state.apply(report, settings: settings) {
                case .applied: break
                case let .resumed(from, to, generation):
                    metrics.feedbackResumes.increment()
                    logger.notice("trainers resumed: the curriculum's step moves to the report's", metadata: [
                        "from_step": "\(from)", "to_step": "\(to)", "generation": "\(generation)",
                        "seq": "\(ids.state.seq)", "samples": "\(ids.state.samples)",
                    ])
                case let .stale(current):
                    metrics.feedbackReportsStale.increment()
                    staleReports.record(
                        reason: "stale_report",
                        detail: "generation \(report.generation) is older than the running generation \(current): ignored",
                        logger: logger, now: clock.now())
                }
                currentStep.store(settings.step(for: ids.state), ordering: .relaxed)
            } catch {
                summary.reportsRejected += 1
                metrics.feedbackReportsRejected.increment()
                reportRejects.record(reason: "bad_report", detail: error.detail, logger: logger, now: clock.now())
            }
        }
    }
}

/// The daemon's CURVE identity and the clients it lets in, read from `security.curve`.
struct SocketSecurity {
    let secretKey: String
    let authorizedKeys: Set<String>

    init?(_ curve: CurveConfig?) throws {
        guard let curve else { return nil }
        secretKey = try KeyFiles.loadSecretKey(path: curve.secretKeyFile).secretKey
        authorizedKeys = try KeyFiles.loadAuthorizedKeys(directory: curve.authorizedKeysDir)
    }
}

/// Refused CURVE handshakes, logged at most once a second like rejected batches (a client with a
/// wrong key retries every few hundred milliseconds). Called on the ZAP handler's thread.
final class RefusalLog: Sendable {
    private let log = Mutex(RejectLog(message: "refused a client"))
    private let logger: Logger
    private let clock: PipelineClock

    init(logger: Logger, clock: PipelineClock) {
        self.logger = logger
        self.clock = clock
    }

    func record(_ denial: ZAPAuthenticator.Denial) {
        log.withLock { $0.record(reason: "unauthorized", detail: "\(denial.address): \(denial.reason)", logger: logger, now: clock.now()) }
    }
}
