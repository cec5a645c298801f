import NoisedProtocol
import Schedule

/// How one input stream feeds several outputs (`fanout`).
public enum FanoutMode: String, Sendable, CaseIterable {
    /// Every input batch goes to every output, each noised with its own schedule and noise ids.
    case copy
    /// Each input batch goes to one output, the outputs taking turns in proportion to `weight`.
    case split
}

/// What a `copy` fan-out does with a batch for an output whose queue is full (`outputs[i].when_full`).
public enum WhenFull: String, Sendable, CaseIterable {
    /// Wait for room: the output misses nothing, and once its queue is full it holds back the others.
    case block
    /// Skip this output's copy, count it (`noised_fanout_copies_total{result="dropped"}`), go on.
    case drop
}

/// One entry of `outputs`: a trainer (or a data-parallel group of them) with its own endpoint,
/// schedule, step counter, state and feedback.
public struct OutputTarget: Sendable, Equatable {
    /// Names the output in metadata (`noised.output`), metrics (`output=`) and its state directory.
    public var name: String
    public var output: OutputConfig
    public var schedule: SigmaSchedule
    public var adaptive: AdaptiveSettings
    public var stratified: Bool
    public var frames: FrameSampling?
    public var coupling: BatchCoupling
    public var feedback: FeedbackConfig
    public var steps: StepsConfig
    /// The output's share of batches under `fanout: split`.
    public var weight: Double
    public var whenFull: WhenFull

    /// The most outputs one daemon feeds: an output's index is folded into its noise ids' top four bits.
    public static let maxCount = 16
}

extension NoisedConfig {
    /// The configuration of output `index`'s own pipeline: this one with that output's endpoint,
    /// schedule, feedback and steps, its state in `state_dir/<name>`, and no `outputs`. The caller
    /// decides where that pipeline's input comes from.
    public func config(ofOutput index: Int) -> NoisedConfig {
        let target = outputs[index]
        var derived = self
        derived.outputs = []
        derived.output = target.output
        derived.schedule = target.schedule
        derived.adaptive = target.adaptive
        derived.stratified = target.stratified
        derived.frames = target.frames
        derived.coupling = target.coupling
        derived.feedback = target.feedback
        derived.steps = target.steps
        derived.stateDir = stateDir.map { $0.hasSuffix("/") ? $0 + target.name : $0 + "/" + target.name }
        return derived
    }
}

/// One `outputs` entry as written: what it leaves out comes from the top-level `output`,
/// `schedule` and `steps` sections.
struct OutputEntry: Decodable {
    let name: String
    let endpoint: String
    let bind: Bool?
    let highWaterMark: Int?
    let dtype: OutputDType?
    let includeClean: Bool?
    let schedule: ScheduleSection?
    let feedback: FeedbackConfig?
    let steps: StepsConfig?
    let weight: Double?
    let whenFull: WhenFull?
    let codingPath: [any CodingKey]

    init(from decoder: any Decoder) throws {
        let keys = try decoder.strictContainer(known: [
            "name", "endpoint", "bind", "high_water_mark", "dtype", "include_clean", "schedule", "feedback", "steps",
            "weight", "when_full",
        ])
        codingPath = keys.codingPath
        name = try keys.requiredValue("name", missing: "missing; each output needs a name (metadata, metrics, state directory)")
        if let problem = Self.nameProblem(name) { throw keys.issue("name", problem) }
        endpoint = try keys.requiredValue("endpoint", missing: "missing; the ZeroMQ endpoint this output's trainers connect to")
        if let problem = endpointProblem(endpoint) { throw keys.issue("endpoint", problem) }
        func optional<T: Decodable>(_ key: String, problem: (T) -> String? = { _ in nil }) throws -> T? {
            guard keys.contains(ConfigKey(key)) else { return nil }
            let value: T = try keys.requiredValue(key, missing: "")
            if let problem = problem(value) { throw keys.issue(key, problem) }
            return value
        }
        bind = try optional("bind")
        highWaterMark = try optional("high_water_mark", problem: outside(1...Int(Int32.max)))
        dtype = keys.contains(ConfigKey("dtype")) ? try keys.choice("dtype", default: OutputDType.input) : nil
        includeClean = try optional("include_clean")
        schedule = try keys.section("schedule", default: ScheduleSection?.none)
        feedback = try keys.section("feedback", default: FeedbackConfig?.none)
        steps = try keys.section("steps", default: StepsConfig?.none)
        weight = try optional("weight") { (weight: Double) in
            weight > 0 && weight.isFinite ? nil : "must be > 0 and finite, got \(weight)"
        }
        whenFull = keys.contains(ConfigKey("when_full")) ? try keys.choice("when_full", default: WhenFull.block) : nil
    }

    /// Names become a directory, a metrics label and metadata: short, and nothing to escape.
    static func nameProblem(_ name: String) -> String? {
        let allowed = name.utf8.allSatisfy { byte in
            (byte >= 0x30 && byte <= 0x39) || (byte >= 0x41 && byte <= 0x5A) || (byte >= 0x61 && byte <= 0x7A)
                || byte == UInt8(ascii: "_") || byte == UInt8(ascii: "-")
        }
        guard !name.isEmpty, name.utf8.count <= 64, allowed, name != "-", !name.hasPrefix("-") else {
            return "must be 1 to 64 letters, digits, '_' or '-' (not starting with '-'), got '\(name)'"
        }
        return nil
    }

    func target(output defaults: OutputConfig, schedule fallback: ScheduleSection, steps defaultSteps: StepsConfig,
                fanout: FanoutMode) throws -> OutputTarget {
        var output = defaults
        output.endpoint = endpoint
        output.bind = bind ?? defaults.bind
        output.highWaterMark = highWaterMark ?? defaults.highWaterMark
        output.dtype = dtype ?? defaults.dtype
        output.includeClean = includeClean ?? defaults.includeClean
        let section = schedule ?? fallback
        let steps = self.steps ?? defaultSteps
        let feedback = self.feedback ?? FeedbackConfig()
        if steps.source == .feedback, feedback.endpoint == nil {
            throw issue("steps.source", "feedback needs this output's feedback.endpoint to take steps from (set one, or use batches)")
        }
        if weight != nil, fanout == .copy {
            throw issue("weight", "applies to fanout: split only (a copy fan-out sends every batch to every output)")
        }
        if whenFull == .drop, fanout == .split {
            throw issue("when_full", "drop applies to fanout: copy only (a split batch dropped would reach no output)")
        }
        return OutputTarget(name: name, output: output, schedule: section.schedule, adaptive: section.adaptive,
                            stratified: section.stratified, frames: section.frames, coupling: section.coupling, feedback: feedback, steps: steps,
                            weight: weight ?? 1, whenFull: whenFull ?? .block)
    }

    func issue(_ keyPath: String, _ message: String) -> ConfigIssue {
        ConfigIssue(codingPath: codingPath + keyPath.split(separator: ".").map { ConfigKey(String($0)) }, message: message)
    }
}

extension NoisedConfig {
    /// Decodes `outputs` and `fanout`, once `output`, `schedule`, `steps` and `feedback` are known.
    mutating func decodeOutputs(_ keys: KeyedDecodingContainer<ConfigKey>, schedule: ScheduleSection) throws {
        let fanoutGiven = keys.contains(ConfigKey("fanout"))
        fanout = try keys.choice("fanout", default: FanoutMode.copy)
        let outputsKey = ConfigKey("outputs")
        guard keys.contains(outputsKey), try !keys.decodeNil(forKey: outputsKey) else {
            if fanoutGiven { throw keys.issue("fanout", "needs an outputs list to share the input between") }
            return
        }
        let entries = try keys.value("outputs", default: [OutputEntry]())
        guard !entries.isEmpty else { throw keys.issue("outputs", "must list at least one output (or leave it out and use output)") }
        guard entries.count <= OutputTarget.maxCount else {
            throw keys.issue("outputs", "lists \(entries.count) outputs; at most \(OutputTarget.maxCount)")
        }
        if feedback.endpoint != nil {
            throw ConfigIssue(codingPath: keys.codingPath + [ConfigKey("feedback"), ConfigKey("endpoint")],
                              message: "with outputs, each output has its own feedback socket: set outputs[i].feedback instead")
        }
        var names = Set<String>()
        for entry in entries where !names.insert(entry.name).inserted {
            throw entry.issue("name", "'\(entry.name)' names another output too; names must differ")
        }
        outputs = try entries.map { try $0.target(output: output, schedule: schedule, steps: steps, fanout: fanout) }
        if !outputs.contains(where: { $0.whenFull == .block }) {
            throw keys.issue("outputs", "at least one output must keep when_full: block: producers are acknowledged once "
                + "the block outputs have their batch, and a drop output's copy may be dropped")
        }
    }
}
