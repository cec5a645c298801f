import Configuration
import CoreMetrics
import Glibc
import NIOCore
import NIOHTTP1
import NIOPosix
import ServiceLifecycle
import Synchronization

/// A `metrics.listen` value that is not `host:port`, or an address that cannot be bound.
public struct MetricsListenError: Error, CustomStringConvertible, Sendable {
    public let description: String
}

/// How many connections the metrics listener holds open at once, and how long an idle one stays.
public struct MetricsConnectionLimits: Sendable, Equatable {
    public var maxConnections: Int
    public var idleTimeout: TimeAmount

    public init(maxConnections: Int, idleTimeout: TimeAmount) {
        self.maxConnections = max(1, maxConnections)
        self.idleTimeout = idleTimeout
    }

    /// Enough for a few scrapers and a curl; the listener is unauthenticated, so it stays small.
    public static let standard = MetricsConnectionLimits(maxConnections: 64, idleTimeout: .seconds(10))

    /// The standard limits, with the cap lowered to a sixteenth of the descriptor limit when that
    /// is smaller: the listener can never hold the descriptors ZeroMQ's listeners need (libzmq
    /// aborts on EMFILE).
    public static func standard(descriptorLimit: Int) -> MetricsConnectionLimits {
        MetricsConnectionLimits(maxConnections: min(standard.maxConnections, descriptorLimit / 16),
                                idleTimeout: standard.idleTimeout)
    }
}

/// The Prometheus endpoint: GET /metrics (the registry's text) and GET /healthz, over plain HTTP/1.1.
///
/// `bind` opens the listening socket at once, so a taken port fails startup rather than later;
/// `run` serves until graceful shutdown (or cancellation) and then closes it. At most
/// `limits.maxConnections` connections are open at once (the ones beyond are closed as soon as they
/// are accepted), and a connection idle for `limits.idleTimeout` is closed.
public final class MetricsServer: Service, Sendable {
    /// Nil when healthy; otherwise why not (served with status 503).
    public typealias HealthCheck = @Sendable () -> String?

    private let channel: any Channel
    private let open: OpenConnections
    /// The address actually bound (its port is the chosen one when `listen` asked for port 0).
    public let localAddress: SocketAddress

    public var port: Int { localAddress.port ?? 0 }

    private init(channel: any Channel, open: OpenConnections) throws {
        self.channel = channel
        self.open = open
        guard let address = channel.localAddress else {
            throw MetricsListenError(description: "metrics server: the listening socket has no local address")
        }
        self.localAddress = address
    }

    /// Binds `listen` ("host:port", "[v6]:port"; port 0 picks a free port). A failure names
    /// `metrics.listen`, the address and the reason.
    public static func bind(listen: String, metrics: NoisedMetrics, health: @escaping HealthCheck,
                            limits: MetricsConnectionLimits = .standard,
                            group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton) async throws -> MetricsServer {
        let (host, port) = try parseListen(listen)
        let open = OpenConnections(limit: limits.maxConnections)
        let channel: any Channel
        do {
            channel = try await ServerBootstrap(group: group)
                .serverChannelOption(.backlog, value: 64)
                .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
                .serverChannelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        // Out of descriptors, accepting pauses for a second instead of spinning.
                        try channel.pipeline.syncOperations.addHandler(AcceptBackoffHandler(shouldForwardIOErrorCaught: false))
                        try channel.pipeline.syncOperations.addHandler(ConnectionCap(open: open, refused: metrics.metricsConnectionsRefused))
                    }
                }
                .childChannelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.addHandler(IdleStateHandler(allTimeout: limits.idleTimeout))
                        try channel.pipeline.syncOperations.addHandler(IdleConnectionCloser())
                        try channel.pipeline.syncOperations.configureHTTPServerPipeline(withErrorHandling: true)
                        try channel.pipeline.syncOperations.addHandler(MetricsHTTPHandler(metrics: metrics, health: health))
                    }
                }
                .bind(host: host, port: port)
                .get()
        } catch {
            throw MetricsListenError(description: "metrics.listen \(listen): cannot bind: \(reason(error))")
        }
        return try MetricsServer(channel: channel, open: open)
    }

    /// The system's words for a socket error ("Address already in use"), not NIO's call site.
    private static func reason(_ error: any Error) -> String {
        if let error = error as? IOError { return String(cString: strerror(error.errnoCode)) }
        return "\(error)"
    }

    /// Connections open now (for tests and diagnostics).
    public var openConnections: Int { open.count }

    /// Splits "host:port" (IPv6 hosts in brackets) and checks the port.
    public static func parseListen(_ listen: String) throws -> (host: String, port: Int) {
        guard let address = HostPort(listen) else {
            throw MetricsListenError(description: "metrics.listen '\(listen)' must be host:port (IPv6 hosts in brackets)")
        }
        guard let port = Int(address.port), (0...65535).contains(port) else {
            throw MetricsListenError(description: "metrics.listen '\(listen)': port '\(address.port)' is not 0-65535")
        }
        return (address.bareHost, port)
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

/// The count of accepted connections not yet closed, shared by the event loops that serve them.
private final class OpenConnections: Sendable {
    let limit: Int
    private let open = Atomic<Int>(0)

    init(limit: Int) { self.limit = limit }

    var count: Int { open.load(ordering: .relaxed) }

    /// Takes a place if one is free.
    func admit() -> Bool {
        if open.wrappingAdd(1, ordering: .relaxed).newValue <= limit { return true }
        open.wrappingSubtract(1, ordering: .relaxed)
        return false
    }

    func release() { open.wrappingSubtract(1, ordering: .relaxed) }
}

/// On the listening channel, before NIO's accept handler: a connection beyond the cap is closed
/// before it gets a pipeline, so a flood of connections holds no more than the cap's descriptors.
private final class ConnectionCap: ChannelInboundHandler {
    typealias InboundIn = any Channel
    typealias InboundOut = any Channel

    private let open: OpenConnections
    private let refused: CoreMetrics.Counter

    init(open: OpenConnections, refused: CoreMetrics.Counter) {
        self.open = open
        self.refused = refused
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let connection = unwrapInboundIn(data)
        guard open.admit() else {
            refused.increment()
            connection.close(promise: nil)
            return
        }
        connection.closeFuture.whenComplete { [open] _ in open.release() }
        context.fireChannelRead(data)
    }
}

/// Closes a connection on which nothing was read or written for the idle timeout.
private final class IdleConnectionCloser: ChannelInboundHandler {
    typealias InboundIn = NIOAny

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if event is IdleStateHandler.IdleStateEvent {
            context.close(promise: nil)
        } else {
            context.fireUserInboundEventTriggered(event)
        }
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
