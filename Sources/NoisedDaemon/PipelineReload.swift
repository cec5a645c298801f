import Configuration
import Logging
import ZeroMQ

extension Pipeline {
    /// Applies a config handed over by `requestReload`, if any.
    ///
    /// While a batch waits to be sent (`holdingBatch`), the output, feedback and settings change at
    /// once, so a new output endpoint takes the waiting batch; a change of the input sockets waits
    /// until the batch is out (their queued batches are drained through the output), and is
    /// applied, and reported, as a second step.
    func applyPendingReload(holdingBatch: Bool) {
        guard !applyingReload, let new = pendingConfig.withLock({ config in defer { config = nil }; return config }) else {
            return
        }
        applyingReload = true
        defer { applyingReload = false }
        var now = new
        if holdingBatch, config.inputSocket != new.inputSocket || config.ackedSocket != new.ackedSocket {
            now.input = config.input
            // Unless a newer config came meanwhile, the input part follows once the batch is out.
            pendingConfig.withLock { pending in if pending == nil { pending = new } }
        }
        do {
            let changed = try apply(now)
            metrics.reloads.increment()
            onReloadApplied(.success((changed, config)))
        } catch {
            metrics.reloadFailures.increment()
            onReloadApplied(.failure(error))
        }
    }

    /// Takes a new config: settings at once, each socket re-made only where its own settings
    /// changed (an old input is drained first, an old output lingers so queued batches still go
    /// out). A socket that cannot be made fails the reload, naming its key and address; the
    /// sockets already switched stay switched, and the config reported is what runs.
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

        try sockets.updateOutput(from: config, to: kept, lingerMilliseconds: Int32(kept.shutdown.drainSeconds * 1000))
        config.output = kept.output
        try sockets.updateFeedback(from: config, to: kept)
        config.feedback = kept.feedback
        let retired = try sockets.updateInputs(from: config, to: kept)
        config.input = kept.input
        for socket in retired {
            try drain(socket)
            socket.close()
        }
        if kept.workers != config.workers { noiser.resize(workers: kept.workers) }
        config = kept
        settings = NoisingSettings(kept, output: settings.output)
        shiftsLogged.removeAll()  // the new schedule may read shapes differently
        ids.maxBatch = settings.maxBatch
        currentStep.store(settings.step(for: state), ordering: .relaxed)
        return changed
    }

    /// Takes every batch already queued on an input socket that is about to close (with the
    /// settings it was received under).
    private func drain(_ socket: ZMQSocket) throws {
        while ids.reserve() {
            if socket.type == .router {
                guard try takeAcked(from: socket) else { return }
            } else {
                guard let message = try socket.receive(dontWait: true) else { return }
                beat()
                if case .rejected(let error) = try handle(message) { record(error) }
            }
        }
    }
}
