import Configuration
import Foundation
import Logging

/// Reads the one config file (`NoisedConfig.parse` decodes it; `Configuration` touches no file).
/// Problems with the file as a whole name the path; schema problems name the key path.
public enum ConfigFile {
    public static func load(_ path: String) throws(ConfigError) -> NoisedConfig {
        func fileProblem(_ message: String) -> ConfigError { ConfigError(keyPath: "", message: message, file: path) }
        guard let file = FileHandle(forReadingAtPath: path) else {
            throw fileProblem(FileManager.default.fileExists(atPath: path) ? "cannot be read" : "does not exist")
        }
        defer { try? file.close() }
        let data: Data
        // One byte past the limit is enough to refuse a larger file without reading it all.
        do { data = try file.read(upToCount: DecodingLimits.maxBytes + 1) ?? Data() } catch {
            throw fileProblem("cannot be read: \(error.localizedDescription)")
        }
        guard data.count <= DecodingLimits.maxBytes else {
            throw fileProblem("larger than the \(DecodingLimits.maxBytes / (1 << 20)) MiB limit for a config")
        }
        guard let text = String(data: data, encoding: .utf8) else { throw fileProblem("is not UTF-8 text") }
        do { return try NoisedConfig.parse(yaml: text) } catch {
            var named = error
            named.file = path
            throw named
        }
    }
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
