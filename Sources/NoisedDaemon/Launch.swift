import Configuration
import Foundation
import Logging
import NoisedRuntime

extension NoisingDaemon {
    /// `noised run`: logging, then the service group until SIGTERM or SIGINT.
    /// `stateDirectory` overrides the file's `state_dir` (the demo keeps its state apart).
    public static func launch(configPath: String, stateDirectory: String? = nil) async throws {
        HeapPolicy.keepFreedMemory()
        // Before any socket exists: the limit also sizes the metrics listener's connection cap.
        let descriptors = DescriptorLimit.raiseToHard()
        var config = try ConfigFile.load(configPath)
        if let stateDirectory { config.stateDir = stateDirectory }
        let environment = ProcessInfo.processInfo.environment
        let level = LogfmtLogHandler.Level(Logger.Level(rawValue: config.logLevel.rawValue) ?? .info)
        LoggingSystem.bootstrap { label in LogfmtLogHandler(label: label, level: level, environment: environment) }
        let logger = Logger(label: "noised")
        // The `ready` line reports the limit in force; say so here only when the raise was refused.
        if descriptors.after.soft < descriptors.before.hard {
            logger.warning("cannot raise the descriptor limit to its hard limit", metadata: [
                "soft": "\(descriptors.after.soft)", "hard": "\(descriptors.before.hard)"])
        }
        let daemon = try await NoisingDaemon(configPath: configPath, config: config, logger: logger, logLevel: level,
                                       environment: environment)
        try await daemon.run()
    }
}
