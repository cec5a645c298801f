import Foundation
import Glibc
import Logging
import NoisedDaemon
import NoisedRuntime
import ServiceLifecycle
import Synchronization
import XCTest

/// One HTTP/1.1 exchange over a plain TCP socket to 127.0.0.1 (Connection: close, read to EOF).
private struct HTTPResponse {
    let status: Int
    let headers: [String: String]
    let body: String
}

private enum TestHTTPError: Error { case connect(Int32), malformed(String) }

/// A TCP connection to 127.0.0.1:port whose reads give up after `timeoutSeconds`.
private func connectTo(port: Int, timeoutSeconds: Int = 5) throws -> Int32 {
    let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    var timeout = timeval(tv_sec: timeoutSeconds, tv_usec: 0)
    setsockopt(descriptor, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_port = in_port_t(UInt16(port).bigEndian)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    let connected = withUnsafePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
    }
    guard connected == 0 else {
        let error = errno
        close(descriptor)
        throw TestHTTPError.connect(error)
    }
    return descriptor
}

/// What a read on an idle connection ends with: the peer closed it, or nothing came in time.
private enum ReadOutcome: Equatable { case closed, timedOut, data }

private func awaitClose(_ descriptor: Int32) -> ReadOutcome {
    var byte: UInt8 = 0
    let count = recv(descriptor, &byte, 1, 0)
    if count == 0 || (count < 0 && errno == ECONNRESET) { return .closed }
    return count < 0 ? .timedOut : .data
}

/// Polls `condition` every 10 ms for at most `seconds`.
private func eventually(within seconds: Double = 5, _ condition: () -> Bool) -> Bool {
    let deadline = ContinuousClock.now + .milliseconds(Int(seconds * 1000))
    while ContinuousClock.now < deadline {
        if condition() { return true }
        usleep(10_000)
    }
    return condition()
}

private func fetch(port: Int, method: String = "GET", path: String) throws -> HTTPResponse {
    let descriptor = try connectTo(port: port)
    defer { close(descriptor) }
    let request = Array("\(method) \(path) HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n".utf8)
    _ = request.withUnsafeBytes { Glibc.send(descriptor, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
    var received: [UInt8] = []
    var buffer = [UInt8](repeating: 0, count: 65536)
    while true {
        let count = recv(descriptor, &buffer, buffer.count, 0)
        if count <= 0 { break }
        received += buffer.prefix(count)
    }
    let text = String(decoding: received, as: UTF8.self)
    guard let split = text.range(of: "\r\n\r\n") else { throw TestHTTPError.malformed(text) }
    let lines = text[..<split.lowerBound].components(separatedBy: "\r\n")
    let statusParts = lines[0].split(separator: " ")
    guard statusParts.count >= 2, let status = Int(statusParts[1]) else { throw TestHTTPError.malformed(lines[0]) }
    var headers: [String: String] = [:]
    for line in lines.dropFirst() {
        guard let colon = line.firstIndex(of: ":") else { continue }
        headers[line[..<colon].lowercased()] = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
    }
    return HTTPResponse(status: status, headers: headers, body: String(text[split.upperBound...]))
}

/// Prometheus text exposition 0.0.4, strictly enough to catch malformed output:
/// `# HELP`/`# TYPE` comments and `name{label="value",...} number` samples.
private struct Exposition {
    var types: [String: String] = [:]
    var samples: [String: Double] = [:]  // keyed by the sample's name and labels as written

    init(_ text: String) throws {
        let sample = try Regex(#"^([a-zA-Z_:][a-zA-Z0-9_:]*(\{[a-zA-Z_][a-zA-Z0-9_]*="[^"]*"(,[a-zA-Z_][a-zA-Z0-9_]*="[^"]*")*\})?) (\S+)$"#)
        for line in text.split(separator: "\n") {
            if line.hasPrefix("# TYPE ") {
                let parts = line.split(separator: " ")
                guard parts.count == 4, ["counter", "gauge", "histogram"].contains(parts[3]) else {
                    throw TestHTTPError.malformed(String(line))
                }
                types[String(parts[2])] = String(parts[3])
            } else if line.hasPrefix("# HELP ") {
                continue
            } else {
                guard let match = try sample.wholeMatch(in: String(line)),
                      let key = match.output[1].substring, let valueText = match.output[4].substring,
                      let value = Double(valueText) ?? (valueText == "+Inf" ? .infinity : nil) else {
                    throw TestHTTPError.malformed(String(line))
                }
                samples[String(key)] = value
            }
        }
    }
}

final class MetricsServerTests: XCTestCase {
    private func withServer(metrics: NoisedMetrics, health: @escaping MetricsServer.HealthCheck = { nil },
                            limits: MetricsConnectionLimits = .standard,
                            _ body: (MetricsServer) throws -> Void) async throws {
        let server = try await MetricsServer.bind(listen: "127.0.0.1:0", metrics: metrics, health: health, limits: limits)
        XCTAssertGreaterThan(server.port, 0)
        let group = ServiceGroup(configuration: .init(services: [server], logger: Logger(label: "test")))
        let running = Task { try await group.run() }
        do { try body(server) } catch {
            await group.triggerGracefulShutdown()
            throw error
        }
        await group.triggerGracefulShutdown()
        try await running.value
        // Once the service has returned, the port no longer accepts connections.
        XCTAssertThrowsError(try fetch(port: server.port, path: "/metrics"))
    }

    func testMetricsParseAsPrometheusTextWithTheRecordedValues() async throws {
        let metrics = NoisedMetrics()
        metrics.batchesIn.increment(by: 3)
        metrics.samplesIn.increment(by: 12)
        metrics.bytesOut.increment(by: 4096)
        metrics.rejects(reason: "bad_header").increment()
        metrics.rejects(reason: "bad_header").increment()
        metrics.rejects(reason: "too_large").increment()
        metrics.step.set(7)
        metrics.pendingOutput.set(2)
        metrics.binWeight(3).set(0.25)
        metrics.sigma.record(0.12)
        metrics.sigma.record(0.97)
        metrics.kernelLatency.recordNanoseconds(2_000_000)
        metrics.reloadFailures.increment()

        try await withServer(metrics: metrics) { server in
            let response = try fetch(port: server.port, path: "/metrics")
            XCTAssertEqual(response.status, 200)
            XCTAssertEqual(response.headers["content-type"], "text/plain; version=0.0.4; charset=utf-8")
            let exposition = try Exposition(response.body)
            XCTAssertEqual(exposition.types["noised_batches_received_total"], "counter")
            XCTAssertEqual(exposition.types["noised_step"], "gauge")
            XCTAssertEqual(exposition.types["noised_sigma"], "histogram")
            XCTAssertEqual(exposition.types["noised_kernel_seconds"], "histogram")
            let expected: [String: Double] = [
                "noised_batches_received_total": 3,
                "noised_samples_received_total": 12,
                "noised_bytes_sent_total": 4096,
                "noised_batches_sent_total": 0,
                #"noised_rejected_batches_total{reason="bad_header"}"#: 2,
                #"noised_rejected_batches_total{reason="too_large"}"#: 1,
                "noised_step": 7,
                #"noised_queue_depth{queue="pending_output"}"#: 2,
                #"noised_adaptive_bin_weight{bin="3"}"#: 0.25,
                #"noised_sigma_bucket{le="0.1"}"#: 0,
                #"noised_sigma_bucket{le="0.15"}"#: 1,
                #"noised_sigma_bucket{le="0.95"}"#: 1,
                #"noised_sigma_bucket{le="1.0"}"#: 2,
                #"noised_sigma_bucket{le="+Inf"}"#: 2,
                "noised_sigma_count": 2,
                #"noised_kernel_seconds_bucket{le="0.001"}"#: 0,
                #"noised_kernel_seconds_bucket{le="0.0025"}"#: 1,
                "noised_kernel_seconds_count": 1,
                "noised_reloads_total": 0,
                "noised_reload_failures_total": 1,
            ]
            for (key, value) in expected {
                XCTAssertEqual(exposition.samples[key], value, key)
            }
            XCTAssertEqual(try XCTUnwrap(exposition.samples["noised_sigma_sum"]), 1.09, accuracy: 1e-12)
        }
    }

    func testHealthzReportsOkOrTheReason() async throws {
        let problem = Mutex<String?>(nil)
        try await withServer(metrics: NoisedMetrics(), health: { problem.withLock { $0 } }) { server in
            let healthy = try fetch(port: server.port, path: "/healthz")
            XCTAssertEqual(healthy.status, 200)
            XCTAssertEqual(healthy.body, "ok\n")
            problem.withLock { $0 = "pipeline stalled for 40 s" }
            let sick = try fetch(port: server.port, path: "/healthz")
            XCTAssertEqual(sick.status, 503)
            XCTAssertEqual(sick.body, "pipeline stalled for 40 s\n")
        }
    }

    func testOtherPathsAndMethodsAreRefused() async throws {
        try await withServer(metrics: NoisedMetrics()) { server in
            XCTAssertEqual(try fetch(port: server.port, path: "/").status, 404)
            XCTAssertEqual(try fetch(port: server.port, path: "/metrics/extra").status, 404)
            XCTAssertEqual(try fetch(port: server.port, path: "/metrics?name=x").status, 200)
            let post = try fetch(port: server.port, method: "POST", path: "/metrics")
            XCTAssertEqual(post.status, 405)
            XCTAssertEqual(post.headers["allow"], "GET")
        }
    }

    func testConnectionsBeyondTheCapAreClosedAtOnceAndTheRestServe() async throws {
        let metrics = NoisedMetrics()
        try await withServer(metrics: metrics, limits: MetricsConnectionLimits(maxConnections: 3, idleTimeout: .seconds(60))) { server in
            var idle: [Int32] = []
            defer { idle.forEach { close($0) } }
            for _ in 0..<3 { idle.append(try connectTo(port: server.port)) }
            XCTAssertTrue(eventually { server.openConnections == 3 }, "open: \(server.openConnections)")
            // The cap is reached: the next connection is accepted and closed without an answer.
            let over = try connectTo(port: server.port)
            defer { close(over) }
            XCTAssertEqual(awaitClose(over), .closed)
            XCTAssertThrowsError(try fetch(port: server.port, path: "/healthz"))
            XCTAssertTrue(metrics.render().contains("noised_metrics_connections_refused_total 2"), metrics.render())
            // A place freed is a place taken again.
            close(idle.removeLast())
            XCTAssertTrue(eventually { server.openConnections == 2 }, "open: \(server.openConnections)")
            XCTAssertEqual(try fetch(port: server.port, path: "/healthz").status, 200)
            XCTAssertTrue(eventually { server.openConnections == 2 }, "open: \(server.openConnections)")
        }
    }

    func testIdleConnectionsAreClosedAfterTheTimeout() async throws {
        try await withServer(metrics: NoisedMetrics(), limits: MetricsConnectionLimits(maxConnections: 8, idleTimeout: .milliseconds(200))) { server in
            let silent = try connectTo(port: server.port, timeoutSeconds: 10)
            defer { close(silent) }
            XCTAssertEqual(awaitClose(silent), .closed)
            XCTAssertTrue(eventually { server.openConnections == 0 }, "open: \(server.openConnections)")
            // A connection in use is answered as before.
            XCTAssertEqual(try fetch(port: server.port, path: "/metrics").status, 200)
        }
    }

    func testTheCapIsASixteenthOfTheDescriptorLimitAtMost() {
        XCTAssertEqual(MetricsConnectionLimits.standard.maxConnections, 64)
        XCTAssertEqual(MetricsConnectionLimits.standard(descriptorLimit: 65536).maxConnections, 64)
        XCTAssertEqual(MetricsConnectionLimits.standard(descriptorLimit: 1024).maxConnections, 64)
        XCTAssertEqual(MetricsConnectionLimits.standard(descriptorLimit: 256).maxConnections, 16)
        XCTAssertEqual(MetricsConnectionLimits.standard(descriptorLimit: 8).maxConnections, 1)
        XCTAssertEqual(MetricsConnectionLimits.standard(descriptorLimit: Int.max).maxConnections, 64)
    }

    func testABindFailureNamesTheKeyAndTheAddress() async throws {
        let first = try await MetricsServer.bind(listen: "127.0.0.1:0", metrics: NoisedMetrics(), health: { nil })
        let listen = "127.0.0.1:\(first.port)"
        do {
            let second = try await MetricsServer.bind(listen: listen, metrics: NoisedMetrics(), health: { nil })
            try await second.close()
            XCTFail("bound \(listen) twice")
        } catch {
            XCTAssertEqual("\(error)", "metrics.listen \(listen): cannot bind: Address already in use")
        }
        try await first.close()
    }

    func testFreshRegistriesDoNotShareCounts() {
        let first = NoisedMetrics(), second = NoisedMetrics()
        first.batchesOut.increment()
        XCTAssertTrue(first.render().contains("noised_batches_sent_total 1"))
        XCTAssertTrue(second.render().contains("noised_batches_sent_total 0"))
    }

    /// Fine enough to tell a batch's time in the daemon from its kernel time: steps of at most
    /// 28 % from 20 µs to 800 ms, and rendered as such.
    func testLatencyBucketsAreFineAndIncreasing() {
        let seconds = NoisedMetrics.latencyBuckets.map { Double($0.components.seconds) + Double($0.components.attoseconds) * 1e-18 }
        XCTAssertEqual(seconds.first!, 20e-6, accuracy: 1e-12)
        XCTAssertEqual(seconds.last, 10)
        for (lower, upper) in zip(seconds, seconds.dropFirst()) {
            XCTAssertGreaterThan(upper, lower)
            if upper <= 0.8 { XCTAssertLessThanOrEqual(upper / lower, 1.29, "\(lower) -> \(upper)") }
        }
        let metrics = NoisedMetrics()
        metrics.kernelLatency.recordNanoseconds(70_000)
        let text = metrics.render()
        XCTAssertTrue(text.contains(#"noised_kernel_seconds_bucket{le="0.000063"} 0"#), text)
        XCTAssertTrue(text.contains(#"noised_kernel_seconds_bucket{le="0.00008"} 1"#), text)
    }

    func testListenAddressesAreParsedOrNamedWhenWrong() throws {
        XCTAssertTrue(try MetricsServer.parseListen("127.0.0.1:9464") == ("127.0.0.1", 9464))
        XCTAssertTrue(try MetricsServer.parseListen("[::1]:0") == ("::1", 0))
        XCTAssertTrue(try MetricsServer.parseListen("localhost:80") == ("localhost", 80))
        for bad in ["9464", "127.0.0.1:http", "127.0.0.1:70000", ":9464", "::1:9464"] {
            XCTAssertThrowsError(try MetricsServer.parseListen(bad), bad) {
                XCTAssertTrue("\($0)".contains("metrics.listen '\(bad)'"), "\($0)")
            }
        }
    }
}
