import Schedule
import Yams

/// The daemon's whole configuration: one YAML file. Every key is optional and takes the default
/// shown here; unknown keys and bad values are errors naming the key path.
public struct NoisedConfig: Sendable, Equatable {
    /// The noise stream key.
    public var seed: UInt64 = 0
    /// Noise id = (instance << 48) | n when an input message carries no noise_id.
    public var instance: UInt16 = 0
    /// Noising kernel threads, 1...256.
    public var workers = 2
    public var logLevel = LogLevel.info
    /// Where state persists across restarts; nil for no persistence.
    public var stateDir: String? = "/var/lib/noised"
    public var input = InputConfig()
    public var output = OutputConfig()
    public var steps = StepsConfig()
    public var shutdown = ShutdownConfig()
    /// Defaults: sigma in [0, 1], logit-normal(1, 1) at step 0 moving linearly to
    /// logit-normal(0, 1) at step 1000 (a coarse-to-fine warm-up), which then holds.
    public var schedule = ScheduleSection.defaultSchedule
    /// `schedule.adaptive`: loss-aware resampling of sigma (off by default).
    public var adaptive = AdaptiveSettings()
    /// `schedule.stratified`: spread each batch's uniforms over [0, 1) in one stratum per sample.
    public var stratified = false
    /// `schedule.frames`: σ per frame and conditioning frames (nil: one σ per sample).
    public var frames: FrameSampling?
    /// `schedule.coupling`: which noise stream each sample of a batch gets (none: its own).
    public var coupling = BatchCoupling.none
    public var feedback = FeedbackConfig()
    /// `outputs`: several outputs fed from the one input, each with its own endpoint, schedule,
    /// step, state and feedback (empty: the one `output`).
    public var outputs: [OutputTarget] = []
    /// `fanout`: how `outputs` share the input batches.
    public var fanout = FanoutMode.copy
    public var metrics = MetricsConfig()
    public var security = SecurityConfig()

    /// Where `noised run` and the tools look when no `--config` is given.
    public static let defaultPath = "/etc/noised/noised.yaml"

    /// All defaults.
    public init() {}

    /// Parses a configuration document; an empty document (or only comments) gives all defaults.
    public static func parse(yaml: String) throws(ConfigError) -> NoisedConfig {
        guard yaml.utf8.count <= DecodingLimits.maxBytes else {
            throw ConfigError(keyPath: "", message: "larger than the \(DecodingLimits.maxBytes / (1 << 20)) MiB limit for a config")
        }
        do {
            guard let node = try Yams.compose(yaml: yaml) else { return NoisedConfig() }
            try NodeBudget.check(node)
            return try YAMLDecoder().decode(NoisedConfig.self, from: node)
        } catch let error as YamlError {
            throw ConfigError(keyPath: "", message: "invalid YAML: \(error)")
        } catch {
            throw ConfigError(decoding: error)
        }
    }
}

extension NoisedConfig: Decodable {
    public init(from decoder: any Decoder) throws {
        let keys = try decoder.strictContainer(known: [
            "seed", "instance", "workers", "log_level", "state_dir",
            "input", "output", "outputs", "fanout", "steps", "shutdown", "schedule", "feedback", "metrics", "security",
        ])
        let defaults = NoisedConfig()
        seed = try keys.value("seed", default: defaults.seed)
        instance = UInt16(try keys.value("instance", default: Int(defaults.instance), problem: outside(0...65535)))
        workers = try keys.value("workers", default: defaults.workers, problem: outside(1...256))
        logLevel = try keys.choice("log_level", default: defaults.logLevel)
        if keys.contains(ConfigKey("state_dir")), try keys.decodeNil(forKey: ConfigKey("state_dir")) {
            stateDir = nil
        } else {
            stateDir = try keys.value("state_dir", default: defaults.stateDir ?? "") { path in
                path.isEmpty ? "must be a directory path, or null for no persistence" : nil
            }
        }
        input = try keys.section("input", default: defaults.input)
        output = try keys.section("output", default: defaults.output)
        feedback = try keys.section("feedback", default: defaults.feedback)
        metrics = try keys.section("metrics", default: defaults.metrics)
        steps = try keys.section("steps", default: defaults.steps)
        shutdown = try keys.section("shutdown", default: defaults.shutdown)
        let scheduleSection = try keys.section("schedule", default: ScheduleSection(defaults.schedule))
        schedule = scheduleSection.schedule
        adaptive = scheduleSection.adaptive
        stratified = scheduleSection.stratified
        frames = scheduleSection.frames
        coupling = scheduleSection.coupling
        try decodeOutputs(keys, schedule: scheduleSection)
        try checkAddresses(at: keys.codingPath)
        if outputs.isEmpty, steps.source == .feedback, feedback.endpoint == nil {
            throw ConfigIssue(codingPath: keys.codingPath + [ConfigKey("steps"), ConfigKey("source")],
                              message: "feedback needs a feedback.endpoint to take steps from (set one, or use batches)")
        }
        security = try keys.section("security", default: defaults.security)
    }
}

extension NoisedConfig {
    /// Each socket and listener needs its own address; a clash is reported at the later key.
    private func checkAddresses(at codingPath: [any CodingKey]) throws {
        var used = [UsedAddress(keyPath: "input.endpoint", endpoint: input.endpoint, bind: input.bind)]
        if let endpoint = input.ackedEndpoint {
            used.append(UsedAddress(keyPath: "input.acked_endpoint", endpoint: endpoint, bind: input.bind))
        }
        if outputs.isEmpty {
            used.append(UsedAddress(keyPath: "output.endpoint", endpoint: output.endpoint, bind: output.bind))
            if let endpoint = feedback.endpoint {
                used.append(UsedAddress(keyPath: "feedback.endpoint", endpoint: endpoint, bind: feedback.bind))
            }
        }
        for (index, target) in outputs.enumerated() {
            used.append(UsedAddress(keyPath: "outputs[\(index)].endpoint", endpoint: target.output.endpoint, bind: target.output.bind))
            if let endpoint = target.feedback.endpoint {
                used.append(UsedAddress(keyPath: "outputs[\(index)].feedback.endpoint", endpoint: endpoint, bind: target.feedback.bind))
            }
        }
        if let listen = metrics.listen {
            used.append(UsedAddress(keyPath: "metrics.listen", endpoint: "tcp://" + listen, bind: true))
        }
        for (index, later) in used.enumerated() {
            for earlier in used[..<index] {
                if let conflict = addressConflict(earlier, later) {
                    throw ConfigIssue(codingPath: codingPath + Self.codingKeys(later.keyPath), message: conflict)
                }
            }
        }
    }

    /// `outputs[1].endpoint` as coding keys.
    private static func codingKeys(_ keyPath: String) -> [ConfigKey] {
        keyPath.split(separator: ".").flatMap { part -> [ConfigKey] in
            guard let open = part.firstIndex(of: "["), let index = Int(part[part.index(after: open)...].dropLast()) else {
                return [ConfigKey(String(part))]
            }
            return [ConfigKey(String(part[..<open]))] + [ConfigKey(intValue: index)].compactMap(\.self)
        }
    }
}
