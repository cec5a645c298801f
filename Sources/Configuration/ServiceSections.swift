/// Where the curriculum's step comes from.
public enum StepSource: String, Sendable, CaseIterable {
    /// Emitted batches / steps.batches_per_step.
    case batches
    /// The largest step trainers reported on the feedback socket (batches count until the first report).
    case feedback
}

/// The socket trainers report (step, sigma, loss) on.
public struct FeedbackConfig: Sendable, Equatable {
    /// nil: no feedback socket.
    public var endpoint: String? = nil
    /// Bind (true) or connect (false).
    public var bind = true
    public var pattern = FeedbackPattern.pull

    public init() {}
}

public enum FeedbackPattern: String, Sendable, CaseIterable {
    /// A PULL socket: each report reaches one daemon.
    case pull
    /// A SUB socket subscribed to everything: trainers PUBlish and every daemon sees every report.
    case sub
}

/// The Prometheus metrics endpoint.
public struct MetricsConfig: Sendable, Equatable {
    /// host:port of the HTTP listener; nil: no metrics.
    public var listen: String? = "127.0.0.1:9464"

    public init() {}
}

public struct SecurityConfig: Sendable, Equatable {
    /// CurveZMQ on every socket; nil: plain TCP.
    public var curve: CurveConfig? = nil

    public init() {}
}

/// CurveZMQ keys: the daemon's secret key and the directory of the public keys it accepts.
public struct CurveConfig: Sendable, Equatable {
    public var secretKeyFile: String
    public var authorizedKeysDir: String

    public init(secretKeyFile: String, authorizedKeysDir: String) {
        self.secretKeyFile = secretKeyFile
        self.authorizedKeysDir = authorizedKeysDir
    }
}

extension FeedbackConfig: Decodable {
    public init(from decoder: any Decoder) throws {
        let keys = try decoder.strictContainer(known: ["endpoint", "bind", "pattern"])
        let defaults = FeedbackConfig()
        endpoint = try keys.optionalValue("endpoint", problem: endpointProblem)
        bind = try keys.value("bind", default: defaults.bind)
        pattern = try keys.choice("pattern", default: defaults.pattern)
    }
}

extension MetricsConfig: Decodable {
    public init(from decoder: any Decoder) throws {
        let keys = try decoder.strictContainer(known: ["listen"])
        guard keys.contains(ConfigKey("listen")) else { return }
        listen = try keys.optionalValue("listen", problem: listenProblem)
    }
}

extension SecurityConfig: Decodable {
    public init(from decoder: any Decoder) throws {
        let keys = try decoder.strictContainer(known: ["curve"])
        let key = ConfigKey("curve")
        if keys.contains(key), try !keys.decodeNil(forKey: key) {
            curve = try keys.decode(CurveConfig.self, forKey: key)
        }
    }
}

extension CurveConfig: Decodable {
    public init(from decoder: any Decoder) throws {
        let keys = try decoder.strictContainer(known: ["secret_key_file", "authorized_keys_dir"])
        func path(_ key: String, _ what: String) throws -> String {
            let value: String = try keys.requiredValue(key, missing: "missing; expected the path of \(what)")
            if let problem = emptyString(value) { throw keys.issue(key, problem) }
            return value
        }
        secretKeyFile = try path("secret_key_file", "the daemon's CurveZMQ secret key file")
        authorizedKeysDir = try path("authorized_keys_dir", "the directory of accepted public keys")
    }
}

extension KeyedDecodingContainer<ConfigKey> {
    /// A string that may be null (off); absent is nil too, so callers with another default check first.
    func optionalValue(_ key: String, problem: (String) -> String?) throws -> String? {
        let codingKey = ConfigKey(key)
        guard contains(codingKey), try !decodeNil(forKey: codingKey) else { return nil }
        return try value(key, default: "", problem: problem)
    }
}

/// Why `listen` is not a host:port the metrics listener can bind, or nil if it is.
func listenProblem(_ listen: String) -> String? {
    guard !listen.contains(where: \.isWhitespace), let address = HostPort(listen) else {
        return "must be host:port (e.g. 127.0.0.1:9464, IPv6 hosts in brackets), or null for no metrics; got '\(listen)'"
    }
    // Port 0 picks a free port (the daemon logs the one it got): tests and several daemons per host.
    guard UInt16(address.port) != nil else { return "port must be 0...65535, got '\(address.port)'" }
    return nil
}

/// An address a socket or listener of the daemon uses, named by its key path.
struct UsedAddress {
    let keyPath: String
    let endpoint: String
    let bind: Bool
}

/// Why `later` collides with `earlier`, or nil: the same address, or two TCP binds on one port
/// where either binds every interface (or both bind the same host).
func addressConflict(_ earlier: UsedAddress, _ later: UsedAddress) -> String? {
    if earlier.endpoint == later.endpoint { return "is the same address as \(earlier.keyPath)" }
    guard earlier.bind, later.bind, let first = HostPort(tcpEndpoint: earlier.endpoint),
          let second = HostPort(tcpEndpoint: later.endpoint), first.port == second.port, second.port != "*" else { return nil }
    if first.host == second.host || first.isWildcard || second.isWildcard {
        return "binds port \(second.port), which \(earlier.keyPath) (\(earlier.endpoint)) also binds"
    }
    return nil
}
