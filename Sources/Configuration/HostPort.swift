/// An address written "host:port", split at the last colon: the one parser for tcp:// endpoints
/// and `metrics.listen`. IPv6 hosts are written in brackets ("[::1]:9464").
public struct HostPort: Equatable, Sendable {
    /// The host as written (brackets kept), e.g. "127.0.0.1", "*", "[::1]".
    public let host: String
    /// The port as written: digits, or "*" in a ZeroMQ endpoint.
    public let port: String

    public init?(_ address: some StringProtocol) {
        guard let colon = address.lastIndex(of: ":"), colon != address.startIndex else { return nil }
        let host = address[..<colon]
        // An IPv6 host without brackets cannot be told from its port.
        guard !host.contains(":") || (host.hasPrefix("[") && host.hasSuffix("]")) else { return nil }
        self.host = String(host)
        port = String(address[address.index(after: colon)...])
    }

    /// The host and port of a `tcp://` endpoint; nil for other transports or no port.
    public init?(tcpEndpoint endpoint: String) {
        guard endpoint.hasPrefix("tcp://") else { return nil }
        self.init(endpoint.dropFirst("tcp://".count))
    }

    /// The host without IPv6 brackets, as socket APIs take it.
    public var bareHost: String {
        host.hasPrefix("[") && host.hasSuffix("]") ? String(host.dropFirst().dropLast()) : host
    }

    /// Whether the host names this machine's loopback interface.
    public var isLoopback: Bool { bareHost == "localhost" || bareHost.hasPrefix("127.") || bareHost == "::1" }

    /// Any interface: ZeroMQ's "*" or the unspecified addresses.
    public var isWildcard: Bool { ["*", "0.0.0.0", "::"].contains(bareHost) }
}
