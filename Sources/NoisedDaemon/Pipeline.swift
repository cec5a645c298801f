import Configuration
import Foundation
import Logging
import NoiseKernel
import NoisedProtocol
import Synchronization
import ZeroMQ

/// The data path on one dedicated thread: PULL → noise → PUSH, plus trainers' feedback reports.
///
/// Blocking ZeroMQ calls happen only here, never on Swift's cooperative pool. Other threads talk to
/// the pipeline through three thread-safe doors: `requestStop`, `requestReload` and `heartbeat`.
final class Pipeline: @unchecked Sendable {
    struct Summary: Sendable {
        var received: UInt64 = 0
        var sent: UInt64 = 0
        var undelivered: UInt64 = 0
        var rejected: [RejectReason: UInt64] = [:]
        var reports: UInt64 = 0
        var reportsRejected: UInt64 = 0
        var inputDisconnects: UInt64 = 0
    }

    private var config: NoisedConfig
    private var settings: NoisingSettings
    let logger: Logger
    private let context: ZMQContext
    private var sockets: PipelineSockets
    /// Checks CURVE clients' keys when `security.curve` is set.
    private let authenticator: ZAPAuthenticator?
    let metrics: NoisedMetrics
    private let metricsAddress: String?
    private let noiser: BatchNoiser
    private let store: StateStore?
    private(set) var state: DaemonState
    private var summary = Summary()
    private var rejects = RejectLog()
    private var reportRejects = RejectLog(message: "rejected report")
    // A producer that exits closes its connection too, so this is a notice, not a warning.
    private var disconnectLog = RejectLog(message: "input connection closed", level: .notice)

    private let stopRequested = Atomic<Bool>(false)
    private let pendingConfig = Mutex<NoisedConfig?>(nil)
    /// Monotonic nanoseconds of the last time the loop came round; a stuck pipeline stops updating it.
    let heartbeat = Atomic<UInt64>(0)
    private let sentCount = Atomic<UInt64>(0)
    private let currentStep = Atomic<Int64>(0)
    /// Called on the pipeline thread once a reload has taken effect (with the keys that changed and
    /// the config now running) or was refused.
    var onReloadApplied: @Sendable (Result<(changed: [String], config: NoisedConfig), Error>) -> Void = { _ in }
    /// Stops the loop after this many batches without beating again, to test the watchdog.
    private let stallAfterBatches: UInt64?

    /// How often a blocked receive or send wakes up to look at stop and reload requests.
    static let pollMilliseconds: Int32 = 100
    private static let saveInterval: Duration = .seconds(2)
    /// Batches taken from the input queue per poll: each poll is a system call, and a saturated
    /// input has the next batch already queued. Reloads, reports and producer disconnects wait at
    /// most this many batches.
    private static let batchesPerPoll = 16

    init(config: NoisedConfig, logger: Logger, metrics: NoisedMetrics, metricsAddress: String? = nil,
         stallAfterBatches: UInt64? = nil) throws {
        self.config = config
        self.settings = NoisingSettings(config)
        self.logger = logger
        self.metrics = metrics
        self.metricsAddress = metricsAddress
        self.stallAfterBatches = stallAfterBatches
        store = config.stateDir.map(StateStore.init(directory:))
        state = try store?.load() ?? DaemonState()
        context = try ZMQContext()
        let security = try SocketSecurity(config.security.curve)
        if let security {
            // The handler must be bound before any CURVE server socket binds.
            authenticator = try ZAPAuthenticator(context: context, allowedKeys: security.authorizedKeys) { [logger, metrics] denial in
                metrics.rejects(reason: "unauthorized").increment()
                logger.warning("refused a client", metadata: ["address": "\(denial.address)", "reason": "\(denial.reason)"])
            }
        } else {
            authenticator = nil
            for endpoint in config.allEndpoints where !PipelineSockets.isLoopback(endpoint) {
                logger.warning("listening beyond this machine without CURVE: anyone who can reach it can send and receive",
                               metadata: ["endpoint": "\(endpoint)"])
            }
        }
        sockets = try PipelineSockets(context: context, config: config, security: security)
        let buffers = MessageBufferPool(maxIdle: config.output.highWaterMark + config.workers + 2)
        noiser = BatchNoiser(seed: config.seed, workers: config.workers, buffers: buffers)
        beat()
        currentStep.store(settings.step(for: state), ordering: .relaxed)
        metrics.step.set(Double(settings.step(for: state)))
    }

    /// The curriculum's current step; safe from any thread.
    var step: Int64 { currentStep.load(ordering: .relaxed) }
    /// Batches sent so far; safe from any thread.
    var batchesSent: UInt64 { sentCount.load(ordering: .relaxed) }

    func requestStop() { stopRequested.store(true, ordering: .relaxed) }
    private var stopping: Bool { stopRequested.load(ordering: .relaxed) }

    /// Hands a validated config to the pipeline; it takes effect before the next batch.
    func requestReload(_ config: NoisedConfig) { pendingConfig.withLock { $0 = config } }

    /// Seconds since the loop last came round.
    var secondsSinceHeartbeat: Double {
        Double(DispatchTime.now().uptimeNanoseconds &- heartbeat.load(ordering: .relaxed)) / 1e9
    }

    /// Why `/healthz` should answer 503, or nil: a loop that has not come round for 10 s is stuck.
    var healthProblem: String? {
        let stalled = secondsSinceHeartbeat
        return stalled < 10 ? nil : String(format: "pipeline has not come round for %.0f s", stalled)
    }

    private func beat() { heartbeat.store(DispatchTime.now().uptimeNanoseconds, ordering: .relaxed) }

    func run() throws -> Summary {
        defer {
            noiser.shutdown()
            authenticator?.stop()
        }
        logger.info("ready", metadata: [
            "input": "\(config.input.endpoint)", "output": "\(config.output.endpoint)",
            "feedback": "\(config.feedback.endpoint ?? "none")", "metrics": "\(metricsAddress ?? "none")",
            "curve": "\(authenticator != nil)", "workers": "\(config.workers)",
            "kernel": "\(NoiseKernel.Implementation.best)",
            "step": "\(step)", "seq": "\(state.seq)", "samples": "\(state.samples)",
        ])
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

        while !stopping {
            beat()
            applyPendingReload()
            let ready = try ZMQSocket.waitReadable(sockets.readable, milliseconds: Int(Self.pollMilliseconds))
            if ready[1] { try takeInputEvents() }
            if ready.count > 2, ready[2] { try takeReports() }
            var taken = 0
            while ready[0], taken < Self.batchesPerPoll, !stopping, let message = try sockets.input.receive(dontWait: true) {
                beat()
                try handle(message, deadline: nil)
                taken += 1
                if let stallAfterBatches, summary.sent >= stallAfterBatches { stall() }
            }
            if ContinuousClock.now - lastSave >= Self.saveInterval { save() }
        }

        // Drain: everything already queued on the input is noised and sent, within the bound.
        let deadline = ContinuousClock.now + .seconds(config.shutdown.drainSeconds)
        var drained = 0
        while ContinuousClock.now < deadline, let message = try sockets.input.receive(dontWait: true) {
            beat()
            try handle(message, deadline: deadline)
            drained += 1
        }
        let left = max(.zero, deadline - ContinuousClock.now)
        sockets.close(outputLingerMilliseconds: Int32(left.seconds * 1000))
        save()

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

    /// Test hook for the watchdog: behave like a worker that never returns, until asked to stop.
    private func stall() {
        logger.warning("stalling on purpose (NOISED_TEST_STALL_AFTER_BATCHES)")
        while !stopping { usleep(10_000) }
    }

    /// Noises and sends one message. A send blocked by back-pressure wakes every poll interval; once
    /// stopping, it gives up at the drain deadline and counts the batch as not delivered.
    private func handle(_ message: ZMQMessage, deadline: ContinuousClock.Instant?) throws {
        let arrival = ContinuousClock.now
        summary.received += 1
        metrics.batchesIn.increment()
        metrics.bytesIn.increment(by: Int64(message.count))
        let noised: NoisedMessage
        do {
            noised = try noiser.noise(message.bytes, settings: settings, state: &state)
        } catch {
            rejects.record(error, logger: logger)
            metrics.rejects(reason: error.reason.rawValue).increment()
            return
        }
        metrics.samplesIn.increment(by: Int64(noised.sampleCount))
        metrics.kernelLatency.recordNanoseconds(noised.kernelNanoseconds)
        let buffers = noiser.buffers
        let outgoing = try ZMQOutgoingMessage(zeroCopy: noised.buffer.pointer, count: noised.byteCount) {
            [buffer = noised.buffer] in buffers.recycle(buffer)
        }
        var deadline = deadline
        while try !sockets.output.send(outgoing) {
            beat()
            if deadline == nil && stopping { deadline = ContinuousClock.now + .seconds(config.shutdown.drainSeconds) }
            if let deadline, ContinuousClock.now >= deadline {
                summary.undelivered += 1
                return
            }
        }
        summary.sent += 1
        sentCount.store(summary.sent, ordering: .relaxed)
        currentStep.store(settings.step(for: state), ordering: .relaxed)
        record(noised, arrival: arrival)
    }

    private func record(_ noised: NoisedMessage, arrival: ContinuousClock.Instant) {
        let elapsed = (ContinuousClock.now - arrival).components
        metrics.endToEndLatency.recordNanoseconds(elapsed.seconds * 1_000_000_000 + elapsed.attoseconds / 1_000_000_000)
        metrics.batchesOut.increment()
        metrics.samplesOut.increment(by: Int64(noised.sampleCount))
        metrics.bytesOut.increment(by: Int64(noised.byteCount))
        for sigma in noised.sigmas { metrics.sigma.record(Double(sigma)) }
        metrics.step.set(Double(step))
        metrics.pendingOutput.set(Double(noiser.buffers.allocatedCount - noiser.buffers.idleCount))
        if let weights = noised.binWeights {
            for (bin, weight) in weights.enumerated() { metrics.binWeight(bin).set(weight) }
        }
    }

    /// ZeroMQ closes a producer's connection, without reading the frame, when it sends one over
    /// `input.max_message_bytes`; the monitor is how the daemon gets to say so.
    private func takeInputEvents() throws {
        while let parts = try sockets.inputEvents.receiveMultipart(dontWait: true) {
            guard let event = ZMQSocketEvent(parts: parts), event.kind == .disconnected else { continue }
            summary.inputDisconnects += 1
            metrics.inputDisconnects.increment()
            disconnectLog.record(
                reason: "input_disconnect",
                detail: "a producer's connection closed (\(event.address)); ZeroMQ closes it, without reading the frame, "
                    + "when a frame is over input.max_message_bytes (\(config.input.maxMessageBytes))",
                logger: logger)
        }
    }

    /// Applies every report already queued on the feedback socket.
    private func takeReports() throws {
        guard let feedback = sockets.feedback else { return }
        while let message = try feedback.receive(dontWait: true) {
            summary.reports += 1
            metrics.feedbackReports.increment()
            do {
                let report = try FeedbackReport(message: message.bytes)
                state.apply(report, settings: settings)
                currentStep.store(settings.step(for: state), ordering: .relaxed)
            } catch {
                summary.reportsRejected += 1
                metrics.feedbackReportsRejected.increment()
                reportRejects.record(reason: "bad_report", detail: error.detail, logger: logger)
            }
        }
    }

    private func applyPendingReload() {
        guard let new = pendingConfig.withLock({ config in defer { config = nil }; return config }) else { return }
        do {
            let changed = try apply(new)
            metrics.reloads.increment()
            onReloadApplied(.success((changed, config)))
        } catch {
            metrics.reloadFailures.increment()
            onReloadApplied(.failure(error))
        }
    }

    /// Takes a new config: settings at once, sockets re-made where their endpoints changed (the old
    /// input is drained first, the old output lingers so queued batches still go out).
    private func apply(_ new: NoisedConfig) throws -> [String] {
        var changed = config.changedKeys(to: new)
        var kept = new
        for key in NoisedConfig.restartOnlyKeys where changed.contains(key) {
            logger.warning("config key needs a restart to change; keeping the running value", metadata: ["key": "\(key)"])
            changed.removeAll { $0 == key }
        }
        kept.keepRestartOnlyValues(from: config)
        let security = try SocketSecurity(kept.security.curve)
        if let security { try authenticator?.updateAllowedKeys(security.authorizedKeys) }
        if config.sockets != kept.sockets {
            let fresh = try PipelineSockets(context: context, config: kept, security: security)
            while let message = try sockets.input.receive(dontWait: true) { try handle(message, deadline: nil) }
            sockets.close(outputLingerMilliseconds: Int32(kept.shutdown.drainSeconds * 1000))
            sockets = fresh
        }
        if kept.workers != config.workers { noiser.resize(workers: kept.workers) }
        config = kept
        settings = NoisingSettings(kept)
        currentStep.store(settings.step(for: state), ordering: .relaxed)
        return changed
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

/// The pipeline's sockets, made from the config.
struct PipelineSockets {
    let input: ZMQSocket
    /// The input socket's disconnect events (its monitor).
    let inputEvents: ZMQSocket
    let output: ZMQSocket
    let feedback: ZMQSocket?
    private static let monitors = Atomic<Int>(0)

    init(context: ZMQContext, config: NoisedConfig, security: SocketSecurity?) throws {
        input = try ZMQSocket(context, type: .pull)
        try input.setHighWaterMarks(receive: Int32(clamping: config.input.highWaterMark))
        try input.setLinger(milliseconds: 0)
        // An oversized frame is refused by ZeroMQ's decoder before it is buffered, so it never
        // reaches memory; BatchNoiser checks again for transports without a decoder (inproc).
        try input.setMaxMessageSize(Int64(config.input.maxMessageBytes))
        let monitor = "inproc://noised-input-events-\(Self.monitors.add(1, ordering: .relaxed).newValue)"
        try input.startMonitor(monitor, events: [.disconnected])
        inputEvents = try ZMQSocket(context, type: .pair)
        try inputEvents.setLinger(milliseconds: 0)
        try inputEvents.connect(monitor)
        output = try ZMQSocket(context, type: .push)
        try output.setHighWaterMarks(send: Int32(clamping: config.output.highWaterMark))
        try output.setTimeouts(send: Pipeline.pollMilliseconds)
        if let endpoint = config.feedback.endpoint {
            let socket = try ZMQSocket(context, type: config.feedback.pattern == .sub ? .sub : .pull)
            if config.feedback.pattern == .sub { try socket.subscribe() }
            try socket.setLinger(milliseconds: 0)
            if let security { try socket.makeCurveServer(secretKey: security.secretKey) }
            try Self.attach(socket, endpoint, bind: config.feedback.bind)
            feedback = socket
        } else {
            feedback = nil
        }
        if let security {
            try input.makeCurveServer(secretKey: security.secretKey)
            try output.makeCurveServer(secretKey: security.secretKey)
        }
        try Self.attach(input, config.input.endpoint, bind: config.input.bind)
        try Self.attach(output, config.output.endpoint, bind: config.output.bind)
    }

    /// Sockets the loop waits on: the input, its events, then the feedback socket if any.
    var readable: [ZMQSocket] { [input, inputEvents] + (feedback.map { [$0] } ?? []) }

    func close(outputLingerMilliseconds: Int32) {
        try? output.setLinger(milliseconds: max(0, outputLingerMilliseconds))
        input.close()
        inputEvents.close()
        output.close()
        feedback?.close()
    }

    /// ipc and inproc stay on this machine; tcp on a loopback address does too.
    static func isLoopback(_ endpoint: String) -> Bool {
        guard endpoint.hasPrefix("tcp://") else { return true }
        let host = endpoint.dropFirst(6).split(separator: ":").dropLast().joined(separator: ":")
        return host == "localhost" || host.hasPrefix("127.") || host == "[::1]"
    }

    private static func attach(_ socket: ZMQSocket, _ endpoint: String, bind: Bool) throws {
        if bind { try socket.bind(endpoint) } else { try socket.connect(endpoint) }
    }
}
