import Schedule

/// The `schedule` section, decoded into a validated SigmaSchedule.
struct ScheduleSection: Decodable {
    static let defaultSchedule: SigmaSchedule = {
        do {
            return try SigmaSchedule(
                sigmaMin: 0, sigmaMax: 1, interpolation: .linear,
                keyframes: [Keyframe(atStep: 0, distribution: .logitNormal(mean: 1, std: 1)),
                            Keyframe(atStep: 1000, distribution: .logitNormal(mean: 0, std: 1))])
        } catch {
            fatalError("the built-in default schedule is invalid: \(error)")
        }
    }()

    let schedule: SigmaSchedule
    let adaptive: AdaptiveSettings
    let stratified: Bool
    let frames: FrameSampling?
    let coupling: BatchCoupling

    init(_ schedule: SigmaSchedule) {
        self.schedule = schedule
        adaptive = AdaptiveSettings()
        stratified = false
        frames = nil
        coupling = .none
    }

    init(from decoder: any Decoder) throws {
        let keys = try decoder.strictContainer(known: [
            "sigma_min", "sigma_max", "interpolation", "curriculum", "adaptive", "stratified", "frames", "coupling",
        ])
        let defaults = Self.defaultSchedule
        let sigmaMin = try keys.value("sigma_min", default: defaults.sigmaMin)
        let sigmaMax = try keys.value("sigma_max", default: defaults.sigmaMax)
        let interpolation = try keys.choice("interpolation", default: defaults.interpolation)
        let keyframes = try keys.value("curriculum", default: defaults.keyframes.map(KeyframeEntry.init))
        do {
            schedule = try SigmaSchedule(sigmaMin: sigmaMin, sigmaMax: sigmaMax, interpolation: interpolation,
                                         keyframes: keyframes.map(\.keyframe))
        } catch {
            // ScheduleError names the key below `schedule` (e.g. curriculum[1].std).
            throw ConfigError(keyPath: dottedPath(decoder.codingPath) + "." + error.keyPath, message: error.message)
        }
        adaptive = try keys.section("adaptive", default: AdaptiveEntry(AdaptiveSettings())).settings
        stratified = try keys.value("stratified", default: false)
        frames = try keys.section("frames", default: FramesEntry?.none)?.frames
        coupling = try keys.section("coupling", default: CouplingEntry?.none)?.coupling ?? .none
    }
}

/// `schedule.coupling: {method, reg, iterations, candidates}`; each method reads only its own keys.
struct CouplingEntry: Decodable {
    let coupling: BatchCoupling

    init(from decoder: any Decoder) throws {
        let keys = try decoder.strictContainer(known: ["method", "reg", "iterations", "candidates"])
        let method: String = try keys.value("method", default: "none")
        let owners = ["reg": "sinkhorn", "iterations": "sinkhorn", "candidates": "knn"]
        for (key, owner) in owners.sorted(by: { $0.key < $1.key }) where keys.contains(ConfigKey(key)) && method != owner {
            throw keys.issue(key, "applies to method: \(owner) only (method is \(method))")
        }
        switch method {
        case "none": coupling = .none
        case "assignment": coupling = .assignment
        case "sinkhorn":
            let minimum = BatchCoupling.minimumRegularization
            let reg = try keys.value("reg", default: 0.05) { (reg: Double) in
                reg >= minimum && reg.isFinite ? nil : "must be >= \(minimum) and finite, got \(reg)"
            }
            let iterations = try keys.value("iterations", default: 100, problem: outside(1...BatchCoupling.maxIterations))
            coupling = .sinkhorn(regularization: reg, iterations: iterations)
        case "knn":
            coupling = .knn(candidates: try keys.value("candidates", default: 4, problem: outside(2...BatchCoupling.maxCandidates)))
        default:
            throw keys.issue("method", "must be one of none, assignment, sinkhorn, knn; got '\(method)'")
        }
    }
}

/// `schedule.frames: {axis, mode, chunk, condition: [{weight, first, last}]}`.
struct FramesEntry: Decodable {
    let frames: FrameSampling

    init(from decoder: any Decoder) throws {
        let keys = try decoder.strictContainer(known: ["axis", "mode", "chunk", "condition"])
        let axis: Int = try keys.requiredValue("axis", missing: "missing; the latent axis that indexes frames, e.g. 2 for [B, C, T, H, W]")
        let conditions = try keys.value("condition", default: [ConditionEntry]()).map(\.condition)
        let mode = try keys.choice("mode", default: FrameSampling.Mode.independent)
        let chunk: Int = try keys.value("chunk", default: 1)
        do {
            frames = try FrameSampling(axis: axis, mode: mode, chunk: chunk, conditions: conditions)
        } catch {
            throw ConfigError(keyPath: dottedPath(decoder.codingPath) + "." + error.parameter, message: error.message)
        }
    }
}

/// One conditioning option: `{weight, first, last}`.
struct ConditionEntry: Decodable {
    let condition: FrameSampling.Condition

    init(from decoder: any Decoder) throws {
        let keys = try decoder.strictContainer(known: ["weight", "first", "last"])
        condition = FrameSampling.Condition(weight: try keys.value("weight", default: 1.0),
                                            first: try keys.value("first", default: 0), last: try keys.value("last", default: 0))
    }
}

/// `schedule.adaptive: {enabled, bins, history, mix, uniform_floor}`.
struct AdaptiveEntry: Decodable {
    let settings: AdaptiveSettings

    init(_ settings: AdaptiveSettings) {
        self.settings = settings
    }

    init(from decoder: any Decoder) throws {
        let keys = try decoder.strictContainer(known: ["enabled", "bins", "history", "mix", "uniform_floor"])
        let defaults = AdaptiveSettings()
        settings = AdaptiveSettings(
            enabled: try keys.value("enabled", default: defaults.enabled),
            bins: try keys.value("bins", default: defaults.bins, problem: outside(2...1000)),
            history: try keys.value("history", default: defaults.history, problem: outside(1...1000)),
            mix: try keys.value("mix", default: defaults.mix, problem: outside(0.0...1.0)),
            uniformFloor: try keys.value("uniform_floor", default: defaults.uniformFloor) { floor in
                floor >= 0 && floor < 1 ? nil : "must be in [0, 1), got \(floor)"
            })
    }
}

/// One curriculum entry: `{at_step, distribution, shift, ...that distribution's parameters}`.
struct KeyframeEntry: Decodable {
    let keyframe: Keyframe

    init(_ keyframe: Keyframe) {
        self.keyframe = keyframe
    }

    init(from decoder: any Decoder) throws {
        let (distribution, keys) = try decodeDistribution(decoder, alongside: ["at_step", "shift"])
        let atStep: Int64 = try keys.requiredValue("at_step", missing: "missing")
        let shift = try keys.value("shift", default: ShiftEntry?.none)?.shift
        keyframe = Keyframe(atStep: atStep, distribution: distribution, shift: shift)
    }
}

/// One mixture component: `{weight, distribution, ...that distribution's parameters}`.
struct ComponentEntry: Decodable {
    let component: MixtureComponent

    init(from decoder: any Decoder) throws {
        let (distribution, keys) = try decodeDistribution(decoder, alongside: ["weight"])
        component = MixtureComponent(weight: try keys.value("weight", default: 1.0), distribution: distribution)
    }
}

/// `shift: 3.0`, or `shift: {auto: sequence_length, base_shift, max_shift, base_seq_len, max_seq_len, patch, tokens}`.
struct ShiftEntry: Decodable {
    let shift: Shift

    init(from decoder: any Decoder) throws {
        if let fixed = try? decoder.singleValueContainer().decode(Double.self) {
            shift = .fixed(fixed)
            return
        }
        let known = ["auto", "base_shift", "max_shift", "base_seq_len", "max_seq_len", "patch", "tokens"]
        guard (try? decoder.container(keyedBy: ConfigKey.self)) != nil else {
            throw ConfigIssue(codingPath: decoder.codingPath,
                              message: "expected a number or a mapping {auto: sequence_length, ...}")
        }
        let keys = try decoder.strictContainer(known: known)
        guard keys.contains(ConfigKey("auto")) else { throw keys.issue("auto", "missing; expected sequence_length") }
        let mode = try keys.value("auto", default: "")
        guard mode == "sequence_length" else { throw keys.issue("auto", "must be sequence_length; got '\(mode)'") }
        let defaults = SequenceLengthShift()
        let layout = try keys.choice("tokens", default: defaults.layout)
        if layout == .packed, keys.contains(ConfigKey("patch")) {
            throw keys.issue("patch", "does not apply with tokens: packed (the latents' second dim is the token count)")
        }
        shift = .sequenceLength(SequenceLengthShift(
            baseShift: try keys.value("base_shift", default: defaults.baseShift),
            maxShift: try keys.value("max_shift", default: defaults.maxShift),
            baseSequenceLength: try keys.value("base_seq_len", default: defaults.baseSequenceLength),
            maxSequenceLength: try keys.value("max_seq_len", default: defaults.maxSequenceLength),
            patch: try keys.value("patch", default: defaults.patch), layout: layout))
    }
}

/// Each distribution's parameter keys; a key of another distribution is an unknown key.
private let distributionParameters: [(name: String, parameters: [String])] = [
    ("uniform", []), ("logit_normal", ["mean", "std"]), ("mode", ["scale"]), ("cosmap", []),
    ("beta", ["a", "b"]), ("discrete", ["sigmas", "weights"]), ("mixture", ["components"]),
]

/// Decodes `distribution` and its parameters from a mapping that may also hold `alongside` keys;
/// returns the container (already checked for unknown keys) for the caller's own keys.
private func decodeDistribution(
    _ decoder: any Decoder, alongside: [String]
) throws -> (Distribution, KeyedDecodingContainer<ConfigKey>) {
    let names = distributionParameters.map(\.name).joined(separator: ", ")
    // Read the distribution first: it decides which parameter keys are allowed.
    let probe = try decoder.mapping(of: alongside + ["distribution", "..."])
    guard probe.contains(ConfigKey("distribution")) else {
        throw probe.issue("distribution", "missing; expected one of \(names)")
    }
    let name = try probe.value("distribution", default: "")
    guard let parameters = distributionParameters.first(where: { $0.name == name })?.parameters else {
        throw probe.issue("distribution", "must be one of \(names); got '\(name)'")
    }
    let keys = try decoder.strictContainer(known: alongside + ["distribution"] + parameters)
    func required<T: Decodable>(_ key: String, _ type: T.Type) throws -> T {
        try keys.requiredValue(key, missing: "missing; \(name) needs \(parameters.joined(separator: " and "))")
    }
    let distribution: Distribution
    switch name {
    case "logit_normal":
        distribution = .logitNormal(mean: try keys.value("mean", default: 0.0), std: try keys.value("std", default: 1.0))
    case "mode":
        distribution = .mode(scale: try keys.value("scale", default: 1.29))
    case "cosmap":
        distribution = .cosmap
    case "beta":
        distribution = .beta(a: try required("a", Double.self), b: try required("b", Double.self))
    case "discrete":
        let values = try required("sigmas", [Double].self)
        distribution = .discrete(values: values, weights: try keys.value("weights", default: Array(repeating: 1, count: values.count)))
    case "mixture":
        // Checked before the components are decoded, so a deep nest stops at its first level too many.
        let level = decoder.codingPath.filter { $0.stringValue == "components" }.count + 1
        guard level <= DecodingLimits.maxMixtureDepth else {
            throw keys.issue("components", "mixtures nest at most \(DecodingLimits.maxMixtureDepth) deep")
        }
        distribution = .mixture(try required("components", [ComponentEntry].self).map(\.component))
        let count = distribution.componentCount
        guard count <= DecodingLimits.maxComponents else {
            throw keys.issue("components", "\(count) components (nested mixtures counted by their own), "
                                 + "more than \(DecodingLimits.maxComponents)")
        }
    default:
        distribution = .uniform
    }
    return (distribution, keys)
}
