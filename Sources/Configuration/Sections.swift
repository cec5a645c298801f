import NoisedProtocol

/// The ZeroMQ socket that latent batches arrive on.
public struct InputConfig: Sendable, Equatable {
    /// The PULL socket plain PUSH producers send to.
    public var endpoint = "tcp://127.0.0.1:5555"
    /// The ROUTER socket DEALER producers send to, each batch acknowledged (docs/protocol.md);
    /// nil: none.
    public var ackedEndpoint: String? = "tcp://127.0.0.1:5554"
    /// Bind (true) or connect (false) both input sockets.
    public var bind = true
    /// The name of the latent tensor in each input message.
    public var tensor = "latents"
    /// A VAE posterior's tensors instead of latents: z_0 is sampled by the daemon (nil: latents).
    public var posterior: PosteriorTensors?
    /// ZeroMQ receive high-water mark, in messages.
    public var highWaterMark = 16
    /// Larger messages are rejected (reason `message_too_large`).
    public var maxMessageBytes = 1 << 30
    /// Batches of more samples are rejected (reason `batch_too_large`); bounds per-sample work.
    public var maxBatch = 4096
    /// Drop batches whose latents hold NaN or infinity.
    public var rejectNonfinite = true

    /// The largest `max_batch` accepted.
    public static let maxBatchLimit = 1 << 20

    public init() {}
}

/// The ZeroMQ socket that noised batches are pushed to.
public struct OutputConfig: Sendable, Equatable {
    public var endpoint = "tcp://127.0.0.1:5556"
    /// Bind (true) or connect (false) the PUSH socket.
    public var bind = true
    /// ZeroMQ send high-water mark, in messages.
    public var highWaterMark = 16
    public var dtype = OutputDType.input
    /// Also send the clean latents z_0.
    public var includeClean = false

    public init() {}
}

/// How training steps are counted from emitted batches (the schedule is indexed by step).
public struct StepsConfig: Sendable, Equatable {
    /// step = emitted batches / batchesPerStep (e.g. gradient accumulation or data-parallel ranks).
    public var batchesPerStep = 1
    /// Count steps from batches, or take them from the trainers' feedback reports.
    public var source = StepSource.batches

    public init() {}
}

public struct ShutdownConfig: Sendable, Equatable {
    /// The longest SIGTERM waits for queued batches to drain before exiting.
    public var drainSeconds = 10.0

    public init() {}
}

/// Log verbosity, in swift-log's level names.
public enum LogLevel: String, Sendable, CaseIterable {
    case trace, debug, info, notice, warning, error, critical
}

extension InputConfig: Decodable {
    public init(from decoder: any Decoder) throws {
        let keys = try decoder.strictContainer(known: [
            "endpoint", "acked_endpoint", "bind", "tensor", "posterior", "high_water_mark", "max_message_bytes", "max_batch",
            "reject_nonfinite",
        ])
        let defaults = InputConfig()
        endpoint = try keys.value("endpoint", default: defaults.endpoint, problem: endpointProblem)
        ackedEndpoint = keys.contains(ConfigKey("acked_endpoint"))
            ? try keys.optionalValue("acked_endpoint", problem: endpointProblem) : defaults.ackedEndpoint
        bind = try keys.value("bind", default: defaults.bind)
        tensor = try keys.value("tensor", default: defaults.tensor, problem: emptyString)
        // With a posterior, `tensor` is not read: the shipped file sets it, and it may stay.
        posterior = try keys.section("posterior", default: PosteriorEntry?.none)?.tensors
        highWaterMark = try keys.value("high_water_mark", default: defaults.highWaterMark,
                                       problem: outside(1...Int(Int32.max)))
        maxMessageBytes = try keys.value("max_message_bytes", default: defaults.maxMessageBytes,
                                         problem: below(1024))
        maxBatch = try keys.value("max_batch", default: defaults.maxBatch, problem: outside(1...InputConfig.maxBatchLimit))
        rejectNonfinite = try keys.value("reject_nonfinite", default: defaults.rejectNonfinite)
    }
}

extension OutputConfig: Decodable {
    public init(from decoder: any Decoder) throws {
        let keys = try decoder.strictContainer(known: [
            "endpoint", "bind", "high_water_mark", "dtype", "include_clean",
        ])
        let defaults = OutputConfig()
        endpoint = try keys.value("endpoint", default: defaults.endpoint, problem: endpointProblem)
        bind = try keys.value("bind", default: defaults.bind)
        highWaterMark = try keys.value("high_water_mark", default: defaults.highWaterMark,
                                       problem: outside(1...Int(Int32.max)))
        dtype = try keys.choice("dtype", default: defaults.dtype)
        includeClean = try keys.value("include_clean", default: defaults.includeClean)
    }
}

extension StepsConfig: Decodable {
    public init(from decoder: any Decoder) throws {
        let keys = try decoder.strictContainer(known: ["batches_per_step", "source"])
        let defaults = StepsConfig()
        batchesPerStep = try keys.value("batches_per_step", default: defaults.batchesPerStep, problem: below(1))
        source = try keys.choice("source", default: defaults.source)
    }
}

extension ShutdownConfig: Decodable {
    public init(from decoder: any Decoder) throws {
        let keys = try decoder.strictContainer(known: ["drain_seconds"])
        drainSeconds = try keys.value("drain_seconds", default: ShutdownConfig().drainSeconds) { seconds in
            seconds > 0 && seconds.isFinite ? nil : "must be > 0 and finite, got \(seconds)"
        }
    }
}

/// Why `endpoint` is not a ZeroMQ endpoint noised can use, or nil if it is.
func endpointProblem(_ endpoint: String) -> String? {
    let schemes = ["tcp://", "ipc://", "inproc://"]
    guard let scheme = schemes.first(where: { endpoint.hasPrefix($0) }) else {
        return "must start with tcp://, ipc:// or inproc://, got '\(endpoint)'"
    }
    let address = endpoint.dropFirst(scheme.count)
    if address.isEmpty { return "needs an address after \(scheme)" }
    if address.contains(where: \.isWhitespace) { return "must not contain whitespace, got '\(endpoint)'" }
    if scheme == "tcp://" {
        guard let address = HostPort(tcpEndpoint: endpoint) else {
            return "must be tcp://host:port (IPv6 hosts in brackets), got '\(endpoint)'"
        }
        if address.port != "*", !(UInt16(address.port).map { $0 > 0 } ?? false) {
            return "port must be 1...65535 or *, got '\(address.port)'"
        }
    }
    return nil
}

/// `input.posterior: {mean, logvar}`: two distinct, non-empty tensor names.
struct PosteriorEntry: Decodable {
    let tensors: PosteriorTensors

    init(from decoder: any Decoder) throws {
        let keys = try decoder.strictContainer(known: ["mean", "logvar"])
        let mean: String = try keys.requiredValue("mean", missing: "missing; the name of the posterior's mean tensor")
        let logvar: String = try keys.requiredValue("logvar", missing: "missing; the name of the posterior's log-variance tensor")
        if let problem = emptyString(mean) { throw keys.issue("mean", problem) }
        if let problem = emptyString(logvar) { throw keys.issue("logvar", problem) }
        guard mean != logvar else { throw keys.issue("logvar", "must differ from mean ('\(mean)')") }
        tensors = PosteriorTensors(mean: mean, logvar: logvar)
    }
}
