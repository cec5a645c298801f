import Configuration
import Foundation
import Logging

/// Reads the one config file. File errors and schema errors both name the file.
public enum ConfigFile {
    public static func load(_ path: String) throws -> NoisedConfig {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw ConfigFileError(path: path, message: FileManager.default.fileExists(atPath: path) ? "cannot be read" : "does not exist")
        }
        guard let text = String(data: data, encoding: .utf8) else {
            throw ConfigFileError(path: path, message: "is not UTF-8 text")
        }
        do { return try NoisedConfig.parse(yaml: text) } catch {
            throw ConfigFileError(path: path, message: "\(error)")
        }
    }
}

public struct ConfigFileError: Error, CustomStringConvertible {
    public let path: String
    public let message: String
    public var description: String { "\(path): \(message)" }
}

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
