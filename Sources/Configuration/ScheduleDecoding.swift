import Schedule

/// The `schedule` section, decoded into a validated SigmaSchedule.
struct ScheduleSection: Decodable {
    static let defaultSchedule: SigmaSchedule = {
        do {
            return try SigmaSchedule(
                sigmaMin: 0, sigmaMax: 1, interpolation: .linear,
                keyframes: [Keyframe(atStep: 0, distribution: .logitNormal(mean: 0.5, std: 1)),
                            Keyframe(atStep: 20_000, distribution: .logitNormal(mean: 0, std: 1))])
        } catch {
            fatalError("the built-in default schedule is invalid: \(error)")
        }
    }()

    let schedule: SigmaSchedule

    init(_ schedule: SigmaSchedule) {
        self.schedule = schedule
    }

    init(from decoder: any Decoder) throws {
        let keys = try decoder.strictContainer(known: ["sigma_min", "sigma_max", "interpolation", "curriculum"])
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
    }
}

/// One curriculum entry: `{at_step, distribution, ...that distribution's parameters}`.
struct KeyframeEntry: Decodable {
    let keyframe: Keyframe

    init(_ keyframe: Keyframe) {
        self.keyframe = keyframe
    }

    init(from decoder: any Decoder) throws {
        // Read the distribution first: it decides which parameter keys are allowed.
        let probe = try decoder.mapping(of: ["at_step", "distribution", "..."])
        guard probe.contains(ConfigKey("distribution")) else {
            throw probe.issue("distribution", "missing; expected one of \(Self.distributionNames)")
        }
        let name = try probe.value("distribution", default: "")
        let parameters: [String]
        switch name {
        case "uniform": parameters = []
        case "logit_normal": parameters = ["mean", "std"]
        default:
            throw probe.issue("distribution", "must be one of \(Self.distributionNames); got '\(name)'")
        }
        let keys = try decoder.strictContainer(known: ["at_step", "distribution"] + parameters)
        guard keys.contains(ConfigKey("at_step")) else { throw keys.issue("at_step", "missing") }
        let atStep = try keys.value("at_step", default: Int64(0))
        let distribution: Distribution = switch name {
        case "logit_normal":
            .logitNormal(mean: try keys.value("mean", default: 0.0), std: try keys.value("std", default: 1.0))
        default:
            .uniform
        }
        keyframe = Keyframe(atStep: atStep, distribution: distribution)
    }

    private static let distributionNames = "uniform, logit_normal"
}
