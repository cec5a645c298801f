import Configuration
import Foundation

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
