import Foundation
import Glibc

/// A `noised run` child process on a generated config, for the pipeline bench.
final class BenchDaemon {
    struct Settings {
        var input: String
        var output: String
        var workers: Int
        var highWaterMark: Int
        /// 127.0.0.1 port of the metrics endpoint.
        var metricsPort: Int
    }

    let process = Process()
    let settings: Settings
    private let logPath: String

    var pid: Int32 { process.processIdentifier }

    /// The YAML config of a bench daemon: no state kept, quick shutdown, the shipped defaults for
    /// everything else (so the non-finite check and the schedule run as they would in service).
    static func config(_ settings: Settings) -> String {
        """
        seed: 1
        workers: \(settings.workers)
        log_level: info
        state_dir: null
        input: {endpoint: "\(settings.input)", bind: true, high_water_mark: \(settings.highWaterMark)}
        output: {endpoint: "\(settings.output)", bind: true, high_water_mark: \(settings.highWaterMark)}
        shutdown: {drain_seconds: 1}
        metrics: {listen: "127.0.0.1:\(settings.metricsPort)"}

        """
    }

    /// Starts `binary run` in `directory` and waits until it logs that it is ready.
    init(binary: String, settings: Settings, directory: String, name: String) throws {
        self.settings = settings
        let configPath = directory + "/\(name).yaml"
        logPath = directory + "/\(name).log"
        try Self.config(settings).write(toFile: configPath, atomically: true, encoding: .utf8)
        _ = FileManager.default.createFile(atPath: logPath, contents: nil)
        process.executableURL = URL(fileURLWithPath: binary)
        process.arguments = ["run", "--config", configPath]
        process.standardOutput = FileHandle.nullDevice
        process.standardError = try FileHandle(forWritingTo: URL(fileURLWithPath: logPath))
        do { try process.run() } catch { throw BenchError("cannot start the daemon \(binary): \(error)") }
        let deadline = Date().addingTimeInterval(15)
        while !log.contains("msg=ready") {
            guard process.isRunning else {
                throw BenchError("the daemon exited (status \(process.terminationStatus)) before it was ready:\n\(logTail)")
            }
            guard Date() < deadline else {
                stop()
                throw BenchError("the daemon was not ready within 15 s:\n\(logTail)")
            }
            Thread.sleep(forTimeInterval: 0.02)
        }
    }

    deinit { stop() }

    var log: String { (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? "" }
    var logTail: String { log.split(separator: "\n").suffix(8).joined(separator: "\n") }

    /// SIGTERM, then SIGKILL if it has not exited within 10 s.
    func stop() {
        guard process.isRunning else { return }
        process.terminate()
        let deadline = Date().addingTimeInterval(10)
        while process.isRunning && Date() < deadline { Thread.sleep(forTimeInterval: 0.02) }
        if process.isRunning { kill(pid, SIGKILL) }
        process.waitUntilExit()
    }
}
