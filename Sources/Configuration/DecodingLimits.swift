import Schedule
import Yams

/// Bounds on what a config may make the decoder do, so that checking or reloading any file ends
/// quickly: YAML aliases let a few hundred bytes stand for millions of nodes, and every node decoded
/// and every mixture component sampled costs time. docs/configuration.md lists them.
public enum DecodingLimits {
    /// The largest config file (and document) accepted, in bytes.
    public static let maxBytes = 1 << 20
    /// YAML nodes, keys included, with every alias counted each time it is used.
    public static let maxNodes = 100_000
    /// Nesting of YAML mappings and sequences (the deepest valid config needs about 22).
    public static let maxDepth = 32
    /// Mixtures inside mixtures: a keyframe's mixture is level 1.
    public static let maxMixtureDepth = 8
    /// Leaf components of one keyframe's mixture: a nested mixture counts as its own leaves.
    public static let maxComponents = 64
}

/// Walks a composed document with aliases expanded, stopping at the first node past a limit: the
/// composed tree shares aliased nodes, so the walk, not composing, is where expansion would cost.
struct NodeBudget {
    private var remaining = DecodingLimits.maxNodes

    static func check(_ node: Node) throws(ConfigError) {
        var budget = NodeBudget()
        var path: [ConfigKey] = []
        try budget.visit(node, path: &path)
    }

    private mutating func visit(_ node: Node, path: inout [ConfigKey]) throws(ConfigError) {
        remaining -= 1
        guard remaining >= 0 else {
            throw ConfigError(keyPath: dottedPath(path),
                              message: "the config expands to more than \(DecodingLimits.maxNodes) YAML nodes "
                                  + "(aliases counted each time they are used)")
        }
        switch node {
        case .scalar, .alias:
            return
        case let .mapping(mapping):
            try checkDepth(path)
            for (key, value) in mapping {
                remaining -= 1
                path.append(ConfigKey(key.scalar?.string ?? "?"))
                try visit(value, path: &path)
                path.removeLast()
            }
        case let .sequence(sequence):
            try checkDepth(path)
            for (index, element) in sequence.enumerated() {
                path.append(ConfigKey(intValue: index)!)
                try visit(element, path: &path)
                path.removeLast()
            }
        }
    }

    private func checkDepth(_ path: [ConfigKey]) throws(ConfigError) {
        guard path.count < DecodingLimits.maxDepth else {
            throw ConfigError(keyPath: dottedPath(path), message: "nested deeper than \(DecodingLimits.maxDepth) levels")
        }
    }
}

extension Distribution {
    /// The leaves a mixture counts against `DecodingLimits.maxComponents`.
    var componentCount: Int {
        guard case let .mixture(components) = self else { return 1 }
        return components.reduce(0) { $0 + $1.distribution.componentCount }
    }
}
