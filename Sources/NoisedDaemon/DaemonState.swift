import Foundation
import Glibc
import Schedule

/// What must survive a restart so that no noise id is used twice and the curriculum goes on.
public struct DaemonState: Codable, Equatable, Sendable {
    public var version = 1
    /// Batches emitted: the curriculum's step is this over `steps.batches_per_step`.
    public var batches: UInt64 = 0
    /// Samples emitted: the `n` of default noise ids `(instance << 48) | n`.
    public var samples: UInt64 = 0
    /// The next output message's `noised.seq`.
    public var seq: UInt64 = 0
    /// The largest step trainers reported on the feedback socket; nil before the first report.
    public var reportedStep: Int64?
    /// The adaptive proposal's per-bin loss history; nil until the first loss report.
    public var lossHistory: LossHistory?

    public init() {}

    // Files written before these fields existed lack them: optional fields decode with
    // decodeIfPresent (synthesised), so version 1 stays readable both ways.
    private enum CodingKeys: String, CodingKey {
        case version, batches, samples, seq
        case reportedStep = "reported_step", lossHistory = "loss_history"
    }

    public func step(batchesPerStep: Int) -> Int64 {
        Int64(clamping: batches / UInt64(max(1, batchesPerStep)))
    }
}

public struct StateError: Error, CustomStringConvertible {
    public let path: String
    public let reason: String
    public var description: String { "state file \(path): \(reason)" }
}

/// Reads and writes `state.json` in the state directory, atomically (temp file, fsync, rename).
public struct StateStore: Sendable {
    public let directory: String
    public var path: String { directory + "/state.json" }

    public init(directory: String) { self.directory = directory }

    /// The saved state, or a fresh one when there is none yet. A damaged file is an error, not a
    /// silent reset: starting over would repeat noise ids already sent to trainers.
    public func load() throws(StateError) -> DaemonState {
        guard FileManager.default.fileExists(atPath: path) else { return DaemonState() }
        guard let data = FileManager.default.contents(atPath: path) else {
            throw StateError(path: path, reason: "cannot be read")
        }
        let state: DaemonState
        do { state = try JSONDecoder().decode(DaemonState.self, from: data) } catch {
            throw StateError(path: path, reason: "is not valid noised state (\(error)); move it away to start over")
        }
        guard state.version == 1 else { throw StateError(path: path, reason: "has unknown version \(state.version)") }
        return state
    }

    public func save(_ state: DaemonState) throws(StateError) {
        do {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        } catch { throw StateError(path: directory, reason: "cannot create directory: \(error)") }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        guard let data = try? encoder.encode(state) else { throw StateError(path: path, reason: "cannot encode") }
        let temp = path + ".tmp"
        let fd = open(temp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw StateError(path: temp, reason: String(cString: strerror(errno))) }
        let written = data.withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
        let synced = fsync(fd) == 0
        close(fd)
        guard written == data.count, synced else {
            unlink(temp)
            throw StateError(path: temp, reason: "write failed: \(String(cString: strerror(errno)))")
        }
        guard rename(temp, path) == 0 else { throw StateError(path: path, reason: String(cString: strerror(errno))) }
        // The rename is durable only once the directory entry is.
        let dir = open(directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if dir >= 0 { fsync(dir); close(dir) }
    }
}
