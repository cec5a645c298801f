import Configuration

/// What a reload may change while the daemon runs, and what it may not.
extension NoisedConfig {
    /// Keys whose change needs a restart: the noise stream's identity, where state and metrics
    /// live, and the server's key pair (`security.curve` itself: turning CURVE on or off).
    package static let restartOnlyKeys = [
        "seed", "instance", "state_dir", "metrics.listen", "security.curve", "security.curve.secret_key_file",
    ]

    /// The running values of the restart-only keys, kept across a reload.
    package mutating func keepRestartOnlyValues(from running: NoisedConfig) {
        seed = running.seed
        instance = running.instance
        stateDir = running.stateDir
        metrics = running.metrics
        // The key pair stays; the authorized keys directory is read again on every reload.
        if let running = running.security.curve, security.curve != nil {
            security.curve?.secretKeyFile = running.secretKeyFile
        } else {
            security = running.security
        }
    }

    /// Every ZeroMQ endpoint the daemon binds or connects.
    var allEndpoints: [String] { [input.endpoint] + [input.ackedEndpoint, feedback.endpoint].compactMap(\.self) + [output.endpoint] }

    /// Dotted key paths (as in the YAML file) whose values differ, leaves first found per section.
    /// Optionals set on both sides are compared field by field, so a change inside one is named
    /// by its own key.
    package func changedKeys(to new: NoisedConfig) -> [String] {
        Self.differences(Mirror(reflecting: self), Mirror(reflecting: new), prefix: "")
    }

    private static func differences(_ a: Mirror, _ b: Mirror, prefix: String) -> [String] {
        var keys: [String] = []
        for (left, right) in zip(a.children, b.children) {
            guard let label = left.label else { continue }
            let key = prefix + snakeCase(label)
            var l = Mirror(reflecting: left.value), r = Mirror(reflecting: right.value)
            if l.displayStyle == .optional, r.displayStyle == .optional,
               let someLeft = l.children.first, let someRight = r.children.first {
                (l, r) = (Mirror(reflecting: someLeft.value), Mirror(reflecting: someRight.value))
            }
            if l.displayStyle == .struct, r.displayStyle == .struct, !l.children.isEmpty, key != "schedule" {
                keys += differences(l, r, prefix: key + ".")
            } else if String(reflecting: left.value) != String(reflecting: right.value) {
                keys.append(key)
            }
        }
        return keys
    }

    private static func snakeCase(_ name: String) -> String {
        var out = ""
        for c in name {
            if c.isUppercase { out += "_" + c.lowercased() } else { out.append(c) }
        }
        return out
    }
}
