import Foundation
import NoisedRuntime

/// Two bench daemons that differ in one setting (A and B), with the same transport, dtype,
/// messages, workers and high-water marks, saturated in turn, `rounds` times each (A, B, A, B, ...),
/// so that load from other jobs on a shared machine falls on both alike. What `noised bench
/// pipeline --fanout` and `--coupling` share; each reads its own figures from the rounds.
struct DaemonComparison {
    /// What sets one side's daemon apart.
    struct Variant {
        /// 1: the ordinary `output`; more: `fanout: copy` to that many `outputs`.
        var outputs = 1
        /// `schedule.coupling.method`; nil leaves the key out (no coupling).
        var coupling: CouplingMethod?
    }

    /// Of the pipeline bench's options this reads the binary, warm-up, seconds per case, rounds,
    /// minimum messages per round, workers and high-water mark.
    let options: PipelineBench.Options
    let a: Variant
    let b: Variant

    /// Checks the options, keeps freed memory (as the daemon does) and runs `body` with a scratch
    /// directory for sockets, configs and logs, removed afterwards.
    static func withScratchDirectory<T>(_ options: PipelineBench.Options, prefix: String,
                                        _ body: (String) throws -> T) throws -> T {
        try PipelineBench.validate(options)
        HeapPolicy.keepFreedMemory()
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("\(prefix)-\(getpid())").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        return try body(directory)
    }

    /// Starts both daemons for one case and returns each side's rounds, in order.
    func measure(_ transport: PipelineBench.Transport, _ messages: BenchMessages, directory: String, name: String)
        throws -> (a: [DaemonUnderTest.Round], b: [DaemonUnderTest.Round]) {
        let first = try DaemonUnderTest(options, transport, messages, a, directory: directory, name: name + "-a")
        defer { first.stop() }
        let second = try DaemonUnderTest(options, transport, messages, b, directory: directory, name: name + "-b")
        defer { second.stop() }
        var rounds: (a: [DaemonUnderTest.Round], b: [DaemonUnderTest.Round]) = ([], [])
        for _ in 0..<options.rounds {
            rounds.a.append(try first.saturate(options))
            rounds.b.append(try second.saturate(options))
        }
        return rounds
    }
}
