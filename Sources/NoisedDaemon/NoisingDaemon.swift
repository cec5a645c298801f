import Configuration
import Foundation
import Logging
import NoisedRuntime
import Prometheus
import ServiceLifecycle
import Synchronization
import UnixSignals

/// The running service: the pipeline thread plus the services around it (reload on SIGHUP, the
/// systemd watchdog and status, the metrics endpoint), run as one swift-service-lifecycle group.
/// SIGTERM and SIGINT shut the group down gracefully: the pipeline drains and saves its state.
public final class NoisingDaemon: Sendable {
    let configPath: String
    let dataPath: DataPath
    let logger: Logger
    let logLevel: LogfmtLogHandler.Level
    let systemd: SystemdChannel
    let metricsServer: MetricsServer?

    init(configPath: String, config: NoisedConfig, logger: Logger, logLevel: LogfmtLogHandler.Level,
         environment: [String: String]) async throws {
        self.configPath = configPath
        self.logger = logger
        self.logLevel = logLevel
        systemd = SystemdChannel(notifier: try SystemdNotifier(environment: environment), logger: logger)
        // One registry; with several outputs each output's metrics carry its name.
        let registry = PrometheusCollectorRegistry()
        let metrics = config.outputs.isEmpty
            ? [NoisedMetrics(registry: registry)]
            : config.outputs.map { NoisedMetrics(registry: registry, labels: [("output", $0.name)]) }
        // The data path is made after the server binds, so READY=1 means every listener is up; the
        // health check reads it through a box filled in just below.
        let box = DataPathBox()
        metricsServer = try await config.metrics.listen.asyncMap { listen in
            try await MetricsServer.bind(listen: listen, metrics: metrics[0], health: { box.dataPath.withLock { $0 }?.healthProblem },
                                         limits: .standard(descriptorLimit: DescriptorLimit.current().soft))
        }
        let metricsAddress = metricsServer.map { "\($0.localAddress.ipAddress ?? "?"):\($0.port)" }
        if config.outputs.isEmpty {
            dataPath = .single(try Pipeline(config: config, logger: logger, metrics: metrics[0], metricsAddress: metricsAddress))
        } else {
            dataPath = .fanout(try Fanout(config: config, logger: logger, metrics: metrics, metricsAddress: metricsAddress))
        }
        box.dataPath.withLock { [dataPath] in $0 = dataPath }
    }

    func run() async throws {
        for pipeline in dataPath.pipelines {
            var logger = logger
            if let output = pipeline.settings.output { logger[metadataKey: "output_name"] = "\(output.name)" }
            pipeline.onReloadApplied = { [logger, systemd, logLevel, dataPath] result in
                switch result {
                case .success(let (changed, config)):
                    logLevel.current = Logger.Level(rawValue: config.logLevel.rawValue) ?? .info
                    logger.info("reloaded", metadata: ["changed": "\(changed.isEmpty ? "nothing" : changed.joined(separator: ","))"])
                    systemd.send("READY=1\nSTATUS=reloaded; step \(dataPath.progress.step)")
                case .failure(let error):
                    logger.error("reload failed; keeping the running config", metadata: ["error": "\(error)"])
                    systemd.send("READY=1\nSTATUS=reload failed: \(error)")
                }
            }
        }
        // SIGHUP is trapped before the pipeline starts, so a reload sent as soon as "ready" is
        // logged is queued, not the signal's default action (which ends the process).
        let hangups = await UnixSignalsSequence(trapping: .sighup)
        // Graceful shutdown runs in reverse order: the data path, last here, starts draining first.
        var services: [ServiceGroupConfiguration.ServiceConfiguration] = [
            .init(service: ReloadService(daemon: self, hangups: hangups)),
            .init(service: WatchdogService(progress: dataPath.progress, watchdogInterval: systemd.watchdogInterval,
                                           send: { [systemd] in systemd.send($0) })),
        ]
        if let metricsServer { services.append(.init(service: metricsServer)) }
        services.append(.init(service: DataPathService(dataPath: dataPath, systemd: systemd),
                              successTerminationBehavior: .gracefullyShutdownGroup,
                              failureTerminationBehavior: .gracefullyShutdownGroup))
        let group = ServiceGroup(configuration: .init(
            services: services, gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
        try await group.run()
    }

    /// SIGHUP: re-read and validate the file; a valid one goes to the data path, which applies it
    /// before its next batch. An invalid one changes nothing and says why.
    func reload() {
        systemd.reloading()
        do {
            try dataPath.requestReload(try ConfigFile.load(configPath))
        } catch {
            for pipeline in dataPath.pipelines { pipeline.metrics.reloadFailures.increment() }
            logger.error("reload failed; keeping the running config", metadata: ["error": "\(error)"])
            systemd.send("READY=1\nSTATUS=reload failed: \(error)")
        }
    }
}

/// Lets the health check, on NIO's threads, find the data path, which is made after the metrics server.
private final class DataPathBox: Sendable {
    let dataPath = Mutex<DataPath?>(nil)
}

extension Optional {
    fileprivate func asyncMap<T>(_ transform: (Wrapped) async throws -> T) async rethrows -> T? {
        guard let self else { return nil }
        return try await transform(self)
    }
}

/// sd_notify when systemd asked for it (`NOTIFY_SOCKET`); a failed send is logged, never fatal.
struct SystemdChannel: Sendable {
    let notifier: SystemdNotifier?
    let logger: Logger

    var watchdogInterval: Duration? { notifier?.watchdogInterval }

    func send(_ fields: String) {
        guard let notifier else { return }
        do { try notifier.send(fields) } catch {
            logger.debug("sd_notify failed", metadata: ["error": "\(error)", "fields": "\(fields)"])
        }
    }

    func reloading() {
        guard let notifier else { return }
        do { try notifier.reloading() } catch { logger.debug("sd_notify failed", metadata: ["error": "\(error)"]) }
    }
}

/// Runs the data path on its own thread (its ZeroMQ calls block) and stops it on graceful shutdown.
struct DataPathService: Service {
    let dataPath: DataPath
    let systemd: SystemdChannel

    func run() async throws {
        try await withGracefulShutdownHandler {
            try await withCheckedThrowingContinuation { (done: CheckedContinuation<Void, Error>) in
                let thread = Thread { [dataPath, systemd] in
                    // Sockets are bound and state is loaded: the data path was made before this.
                    systemd.send("READY=1\nSTATUS=step \(dataPath.progress.step)")
                    do {
                        try dataPath.run()
                        done.resume()
                    } catch { done.resume(throwing: error) }
                }
                thread.name = "noised-pipeline"
                thread.start()
            }
        } onGracefulShutdown: { [dataPath, systemd] in
            dataPath.logger.info("stopping")
            systemd.send("STOPPING=1")
            dataPath.requestStop()
        }
    }
}

/// SIGHUP → reload.
struct ReloadService: Service {
    let daemon: NoisingDaemon
    /// Trapped by the caller before any service starts.
    let hangups: UnixSignalsSequence

    func run() async throws {
        for await _ in hangups.cancelOnGracefulShutdown() {
            daemon.reload()
        }
    }
}

/// What the watchdog reads of the pipeline, from another thread.
package protocol PipelineProgress: Sendable {
    var step: Int64 { get }
    var batchesSent: UInt64 { get }
    /// Seconds since the pipeline loop last came round (processing or idle-waiting).
    var secondsSinceHeartbeat: Double { get }
}

extension Pipeline: PipelineProgress {}
extension Fanout: PipelineProgress {}

/// Pings systemd's watchdog at half its interval, but only while the pipeline loop keeps coming
/// round (processing or idle-waiting): a stuck pipeline lets the watchdog fire. Also keeps STATUS=
/// current with the step and rate.
package struct WatchdogService: Service {
    let progress: any PipelineProgress
    /// systemd's `WATCHDOG_USEC`; nil: no watchdog, STATUS= only.
    let watchdogInterval: Duration?
    let send: @Sendable (String) -> Void

    package init(progress: any PipelineProgress, watchdogInterval: Duration?, send: @escaping @Sendable (String) -> Void) {
        self.progress = progress
        self.watchdogInterval = watchdogInterval
        self.send = send
    }

    /// How often the service wakes: half the watchdog interval, so one late wake is not a miss.
    package var period: Duration { watchdogInterval.map { $0 / 2 } ?? .seconds(5) }

    /// The rule: ping only if the loop came round within the last period.
    package static func shouldPing(secondsSinceHeartbeat: Double, period: Duration) -> Bool {
        secondsSinceHeartbeat < period.seconds
    }

    package func run() async throws {
        var lastBatches = progress.batchesSent
        var lastTime = ContinuousClock.now
        while !Task.isShuttingDownGracefully {
            do { try await cancelWhenGracefulShutdown { try await Task.sleep(for: period) } } catch { return }
            let now = ContinuousClock.now
            let batches = progress.batchesSent
            let rate = Double(batches &- lastBatches) / max((now - lastTime).seconds, 1e-9)
            var fields = String(format: "STATUS=step %lld, %.1f batches/s", progress.step, rate)
            if watchdogInterval != nil, Self.shouldPing(secondsSinceHeartbeat: progress.secondsSinceHeartbeat, period: period) {
                fields = "WATCHDOG=1\n" + fields
            }
            send(fields)
            (lastBatches, lastTime) = (batches, now)
        }
    }
}
