import NIOCore
import NIOHTTP1
import NIOPosix
import ServiceLifecycle

/// A `metrics.listen` value that is not `host:port`.
public struct MetricsListenError: Error, CustomStringConvertible, Sendable {
    public let description: String
}

/// The Prometheus endpoint: GET /metrics (the registry's text) and GET /healthz, over plain HTTP/1.1.
///
/// `bind` opens the listening socket at once, so a taken port fails startup rather than later;
/// `run` serves until graceful shutdown (or cancellation) and then closes it.
public final class MetricsServer: Service, Sendable {
    /// Nil when healthy; otherwise why not (served with status 503).
    public typealias HealthCheck = @Sendable () -> String?

    private let channel: any Channel
    /// The address actually bound (its port is the chosen one when `listen` asked for port 0).
    public let localAddress: SocketAddress

    public var port: Int { localAddress.port ?? 0 }

    private init(channel: any Channel) throws {
        self.channel = channel
        guard let address = channel.localAddress else {
            throw MetricsListenError(description: "metrics server: the listening socket has no local address")
        }
        self.localAddress = address
    }

    /// Binds `listen` ("host:port", "[v6]:port"; port 0 picks a free port).
    public static func bind(listen: String, metrics: NoisedMetrics, health: @escaping HealthCheck,
                            group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton) async throws -> MetricsServer {
        let (host, port) = try parseListen(listen)
        let channel = try await ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 64)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline(withErrorHandling: true)
                    try channel.pipeline.syncOperations.addHandler(MetricsHTTPHandler(metrics: metrics, health: health))
                }
            }
            .bind(host: host, port: port)
            .get()
        return try MetricsServer(channel: channel)
    }

    /// Splits "host:port" (IPv6 hosts in brackets) and checks the port.
    public static func parseListen(_ listen: String) throws -> (host: String, port: Int) {
        guard let colon = listen.lastIndex(of: ":") else {
            throw MetricsListenError(description: "metrics.listen '\(listen)' must be host:port")
        }
        var host = String(listen[..<colon])
        let portText = listen[listen.index(after: colon)...]
        if host.hasPrefix("[") && host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        guard !host.isEmpty, !host.contains(":") || listen.hasPrefix("[") else {
            throw MetricsListenError(description: "metrics.listen '\(listen)' must be host:port (IPv6 hosts in brackets)")
        }
        guard let port = Int(portText), (0...65535).contains(port) else {
            throw MetricsListenError(description: "metrics.listen '\(listen)': port '\(portText)' is not 0-65535")
        }
        return (host, port)
    }

    public func run() async throws {
        // Cancellation ends the service just as a graceful shutdown does.
        try? await gracefulShutdown()
        try await close()
    }

    /// Stops listening (connections already accepted finish their request); safe to call more than once.
    public func close() async throws {
        do { try await channel.close() } catch ChannelError.alreadyClosed {}
    }
}

/// Answers one request at a time per connection (the pipeline handler orders pipelined ones).
private final class MetricsHTTPHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private let metrics: NoisedMetrics
    private let health: MetricsServer.HealthCheck
    private var request: HTTPRequestHead?

    init(metrics: NoisedMetrics, health: @escaping MetricsServer.HealthCheck) {
        self.metrics = metrics
        self.health = health
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head): request = head
        case .body: break
        case .end:
            guard let head = request else { return }
            request = nil
            respond(to: head, context: context)
        }
    }

    private func respond(to head: HTTPRequestHead, context: ChannelHandlerContext) {
        let path = head.uri.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false).first.map(String.init) ?? ""
        let (status, contentType, body): (HTTPResponseStatus, String, String)
        switch (head.method, path) {
        case (.GET, "/metrics"):
            (status, contentType, body) = (.ok, "text/plain; version=0.0.4; charset=utf-8", metrics.render())
        case (.GET, "/healthz"):
            if let problem = health() {
                (status, contentType, body) = (.serviceUnavailable, "text/plain; charset=utf-8", problem + "\n")
            } else {
                (status, contentType, body) = (.ok, "text/plain; charset=utf-8", "ok\n")
            }
        case (.GET, _):
            (status, contentType, body) = (.notFound, "text/plain; charset=utf-8", "not found: \(path) (try /metrics or /healthz)\n")
        default:
            (status, contentType, body) = (.methodNotAllowed, "text/plain; charset=utf-8", "method \(head.method) not allowed; use GET\n")
        }
        var headers = HTTPHeaders()
        headers.add(name: "Content-Type", value: contentType)
        headers.add(name: "Content-Length", value: String(body.utf8.count))
        if status == .methodNotAllowed { headers.add(name: "Allow", value: "GET") }
        let keepAlive = head.isKeepAlive
        if !keepAlive { headers.add(name: "Connection", value: "close") }

        context.write(wrapOutboundOut(.head(HTTPResponseHead(version: head.version, status: status, headers: headers))), promise: nil)
        context.write(wrapOutboundOut(.body(.byteBuffer(context.channel.allocator.buffer(string: body)))), promise: nil)
        let written = context.writeAndFlush(wrapOutboundOut(.end(nil)))
        if !keepAlive {
            let boundContext = NIOLoopBound(context, eventLoop: context.eventLoop)
            written.whenComplete { _ in boundContext.value.close(promise: nil) }
        }
    }
}
