import Foundation
import Glibc

/// A child process of the pipeline bench (`noised run`, or the relay) that logs `msg=ready` on
/// stderr once its sockets are bound.
final class BenchChild {
    struct DaemonSettings {
        var input: String
        /// One endpoint: the ordinary `output`. Several: `outputs` named `out0`, `out1`, ... behind
        /// `fanout: copy`.
        var outputs: [String]
        var workers: Int
        var highWaterMark: Int
        /// 127.0.0.1 port of the metrics endpoint.
        var metricsPort: Int
        /// `schedule.coupling.method`, with the daemon's defaults for its parameters; nil: no
        /// `schedule` key, so no coupling.
        var coupling: CouplingMethod? = nil
    }

    let process = Process()
    private let logPath: String

    var pid: Int32 { process.processIdentifier }

    /// The YAML config of a bench daemon: no state kept, quick shutdown, the shipped defaults for
    /// everything else (so the non-finite check and the schedule run as they would in service).
    static func daemonConfig(_ settings: DaemonSettings) -> String {
        let outputs: String
        if settings.outputs.count == 1 {
            outputs = """
                output: {endpoint: "\(settings.outputs[0])", bind: true, high_water_mark: \(settings.highWaterMark)}
                """
        } else {
            // The outputs take bind and high-water mark from `output`, whose endpoint is then unused.
            outputs = """
                output: {bind: true, high_water_mark: \(settings.highWaterMark)}
                fanout: copy
                outputs:
                \(settings.outputs.enumerated().map { "  - {name: out\($0), endpoint: \"\($1)\"}" }.joined(separator: "\n"))
                """
        }
        let schedule = settings.coupling.map { "schedule: {coupling: {method: \($0.rawValue)}}\n" } ?? ""
        return """
            seed: 1
            workers: \(settings.workers)
            log_level: info
            state_dir: null
            input: {endpoint: "\(settings.input)", acked_endpoint: null, bind: true, high_water_mark: \(settings.highWaterMark)}
            \(outputs)
            shutdown: {drain_seconds: 1}
            metrics: {listen: "127.0.0.1:\(settings.metricsPort)"}
            \(schedule)
            """
    }

    /// `binary run` on a config written to `directory`.
    static func daemon(binary: String, settings: DaemonSettings, directory: String, name: String) throws -> BenchChild {
        let configPath = directory + "/\(name).yaml"
        try daemonConfig(settings).write(toFile: configPath, atomically: true, encoding: .utf8)
        return try BenchChild(binary: binary, arguments: ["run", "--config", configPath], logPath: directory + "/\(name).log")
    }

    /// Starts `binary arguments` and waits until it logs that it is ready.
    init(binary: String, arguments: [String], logPath: String) throws {
        self.logPath = logPath
        _ = FileManager.default.createFile(atPath: logPath, contents: nil)
        process.executableURL = URL(fileURLWithPath: binary)
        process.arguments = arguments
        process.standardOutput = FileHandle.nullDevice
        process.standardError = try FileHandle(forWritingTo: URL(fileURLWithPath: logPath))
        do { try process.run() } catch { throw BenchError("cannot start \(binary): \(error)") }
        let deadline = Date().addingTimeInterval(15)
        while !log.contains("msg=ready") {
            guard process.isRunning else {
                throw BenchError("\(binary) \(arguments.first ?? "") exited (status \(process.terminationStatus)) before it was ready:\n\(logTail)")
            }
            guard Date() < deadline else {
                stop()
                throw BenchError("\(binary) \(arguments.first ?? "") was not ready within 15 s:\n\(logTail)")
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
