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
    /// The trainers' generation (see `FeedbackReport`); nil until a report names one above 0.
    public var generation: UInt64?
    /// The adaptive proposal's per-bin loss history; nil until the first loss report.
    public var lossHistory: LossHistory?
    /// Counters spoken for ahead of use; nil in files written before reservations existed.
    public var reserved: Reservation?

    public init() {}

    // Files written before these fields existed lack them: optional fields decode with
    // decodeIfPresent (synthesised), so version 1 stays readable both ways.
    private enum CodingKeys: String, CodingKey {
        case version, batches, samples, seq, reserved, generation
        case reportedStep = "reported_step", lossHistory = "loss_history"
    }

    public func step(batchesPerStep: Int) -> Int64 {
        Int64(clamping: batches / UInt64(max(1, batchesPerStep)))
    }
}

/// Default noise ids and seq numbers spoken for ahead of use. The daemon writes the reservation
/// (fsync'd) before it hands out any id or seq below it, so a restart after any crash begins at or
/// above it: a crash leaves a gap of at most one block in `n` and in seq, never a repeat.
public struct Reservation: Codable, Equatable, Sendable {
    /// Default noise ids `(instance << 48) | n` with n below this are spoken for.
    public var samples: UInt64
    /// Output seq numbers below this are spoken for.
    public var seq: UInt64

    public init(samples: UInt64, seq: UInt64) {
        self.samples = samples
        self.seq = seq
    }

    /// Samples reserved by one write: a crash skips at most this many ids (or four batches of
    /// `input.max_batch`, when that is more), and a daemon writes once per this many samples.
    public static let sampleBlock: UInt64 = 1 << 16
    /// Seq numbers reserved by one write.
    public static let seqBlock: UInt64 = 1 << 12
}

extension DaemonState {
    /// Whether ids and a seq for one more batch of up to `maxBatch` samples are already reserved.
    public func isReserved(forBatchOf maxBatch: Int) -> Bool {
        guard let reserved, reserved.samples >= samples, reserved.seq > seq else { return false }
        return reserved.samples - samples >= UInt64(maxBatch)
    }

    /// This state with a reservation a block ahead of its counters.
    public func reservingAhead(forBatchOf maxBatch: Int) -> DaemonState {
        var next = self
        let samplesAhead = max(Reservation.sampleBlock, 4 * UInt64(maxBatch))
        next.reserved = Reservation(samples: samples.addingSaturating(samplesAhead), seq: seq.addingSaturating(Reservation.seqBlock))
        return next
    }

    /// The state a restart resumes from: its counters raised to the reservation, which a crash
    /// leaves ahead of them. After a clean stop (`released`) nothing is skipped.
    public var resumed: DaemonState {
        var next = self
        if let reserved {
            next.samples = max(samples, reserved.samples)
            next.seq = max(seq, reserved.seq)
        }
        return next
    }

    /// The state to save at a clean stop: reserved exactly up to what was used, so the next start
    /// continues without a gap.
    public var released: DaemonState {
        var next = self
        next.reserved = Reservation(samples: samples, seq: seq)
        return next
    }
}

extension UInt64 {
    fileprivate func addingSaturating(_ other: UInt64) -> UInt64 {
        let (sum, overflow) = addingReportingOverflow(other)
        return overflow ? .max : sum
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
            let problem = Self.counterProblem(in: data) ?? Self.describe(error)
            throw StateError(path: path, reason: "is not valid noised state (\(problem)); move it away to start over")
        }
        guard state.version == 1 else { throw StateError(path: path, reason: "has unknown version \(state.version)") }
        return state
    }

    /// A counter that is valid JSON but no UInt64 (negative, fractional): Foundation's decoder
    /// calls that "not valid JSON", which would send an operator looking in the wrong place.
    private static func counterProblem(in data: Data) -> String? {
        guard let root = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] else { return nil }
        var counters: [(String, Any?)] = ["version", "batches", "samples", "seq"].map { ($0, root[$0]) }
        if let reserved = root["reserved"] as? [String: Any] {
            counters += ["samples", "seq"].map { ("reserved.\($0)", reserved[$0]) }
        }
        for case let (key, number as NSNumber) in counters {
            let value = number.doubleValue
            if value < 0 || value != value.rounded() || value >= 0x1p64 {
                return "\(key): \(number) is not an integer in 0...\(UInt64.max)"
            }
        }
        return nil
    }

    /// What is wrong with the file, by key: `seq: expected an integer in 0...18446744073709551615`.
    private static func describe(_ error: any Error) -> String {
        func at(_ context: DecodingError.Context) -> String {
            let path = context.codingPath.map { $0.intValue.map { "[\($0)]" } ?? $0.stringValue }.joined(separator: ".")
            return path.isEmpty ? "" : path + ": "
        }
        switch error {
        case DecodingError.dataCorrupted(let context) where context.codingPath.isEmpty:
            return "not JSON: \(context.debugDescription)"
        case DecodingError.dataCorrupted(let context):
            return at(context) + context.debugDescription
        case DecodingError.typeMismatch(let type, let context):
            let expected = type == UInt64.self ? "an integer in 0...\(UInt64.max)" : "\(type)"
            return at(context) + "expected \(expected)"
        case DecodingError.keyNotFound(let key, let context):
            return at(context) + "missing key \(key.stringValue)"
        case DecodingError.valueNotFound(let type, let context):
            return at(context) + "expected \(type), got null"
        default:
            return "\(error)"
        }
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
