import Glibc

/// The process's limit on open descriptors (RLIMIT_NOFILE).
public enum DescriptorLimit {
    public struct Limits: Sendable, Equatable {
        public var soft: Int
        public var hard: Int
    }

    /// The current soft and hard limits (`Int.max` for unlimited).
    public static func current() -> Limits {
        var limit = rlimit()
        guard getrlimit(__rlimit_resource_t(RLIMIT_NOFILE.rawValue), &limit) == 0 else { return Limits(soft: 1024, hard: 1024) }
        return Limits(soft: count(limit.rlim_cur), hard: count(limit.rlim_max))
    }

    /// Raises the soft limit to the hard one: every ZeroMQ connection is a descriptor, and libzmq
    /// aborts when its ipc listener meets EMFILE, so the daemon takes all it is allowed. Returns
    /// the limits before and after; a refused raise leaves them as they were.
    @discardableResult
    public static func raiseToHard() -> (before: Limits, after: Limits) {
        var limit = rlimit()
        guard getrlimit(__rlimit_resource_t(RLIMIT_NOFILE.rawValue), &limit) == 0 else {
            let unknown = current()
            return (unknown, unknown)
        }
        let before = Limits(soft: count(limit.rlim_cur), hard: count(limit.rlim_max))
        if limit.rlim_cur != limit.rlim_max {
            var raised = limit
            raised.rlim_cur = limit.rlim_max
            _ = setrlimit(__rlimit_resource_t(RLIMIT_NOFILE.rawValue), &raised)
        }
        return (before, current())
    }

    private static func count(_ value: rlim_t) -> Int {
        value > rlim_t(Int.max) ? Int.max : Int(value)
    }
}
