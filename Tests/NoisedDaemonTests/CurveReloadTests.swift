import Configuration
import Foundation
import Logging
import NoisedDaemon
import Safetensors
import Synchronization
import XCTest
import ZeroMQ

/// A CURVE pipeline in this process, over ipc in a temporary directory: a reload that changes only
/// `security.curve.authorized_keys_dir` lets in exactly the new directory's clients.
final class CurveReloadTests: XCTestCase {
    private var directory: URL!
    private var context: ZMQContext!

    override func setUpWithError() throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("noised-curve-\(UUID().uuidString)")
        for sub in ["", "keys-a", "keys-b", "clients"] {
            try FileManager.default.createDirectory(at: directory.appendingPathComponent(sub), withIntermediateDirectories: true)
        }
        context = try ZMQContext()
    }

    override func tearDownWithError() throws {
        context.terminate()
        try? FileManager.default.removeItem(at: directory)
    }

    private func path(_ name: String) -> String { directory.appendingPathComponent(name).path }

    private struct Client { let publicKey: String, secretKey: String }

    /// A client keypair whose public half is authorized in `keysDir`.
    private func client(_ name: String, authorizedIn keysDir: String) throws -> Client {
        let written = try KeyFiles.generate(name: name, directory: path("clients"))
        try FileManager.default.copyItem(atPath: written.publicKeyPath, toPath: path("\(keysDir)/\(name).pub"))
        return Client(publicKey: written.publicKey, secretKey: try KeyFiles.loadSecretKey(path: written.secretKeyPath).secretKey)
    }

    private func socket(_ type: ZMQSocketType, _ endpoint: String, as client: Client, server: String) throws -> ZMQSocket {
        let socket = try ZMQSocket(context, type: type)
        try socket.setLinger(milliseconds: 0)
        try socket.setTimeouts(send: 5_000, receive: 5_000)
        try socket.makeCurveClient(serverKey: server, publicKey: client.publicKey, secretKey: client.secretKey)
        try socket.connect(endpoint)
        return socket
    }

    private func unauthorized(_ metrics: NoisedMetrics) -> Int {
        let line = metrics.render().split(separator: "\n").first { $0.hasPrefix("noised_rejected_batches_total{reason=\"unauthorized\"}") }
        return line.flatMap { $0.split(separator: " ").last }.flatMap { Int($0) } ?? 0
    }

    /// Sends one batch as `client` and returns the probe `client` receives, or nil if either side
    /// was refused (a refused handshake never connects, so the send or the receive times out).
    private func roundTrip(_ probe: String, as client: Client, config: NoisedConfig, server: String) throws -> String? {
        let producer = try socket(.push, config.input.endpoint, as: client, server: server)
        let consumer = try socket(.pull, config.output.endpoint, as: client, server: server)
        defer { producer.close(); consumer.close() }
        try producer.setTimeouts(send: 3_000, receive: 3_000)
        try consumer.setTimeouts(send: 3_000, receive: 3_000)
        guard try producer.send(copying: try PipelineHarness.batch(probe)) else { return nil }
        guard let message = try consumer.receive() else { return nil }
        return try message.withUnsafeBytes { try SafetensorsReader($0).metadata["probe"] }
    }

    func testChangingOnlyTheAuthorizedKeysDirLetsInExactlyTheNewClients() throws {
        let server = try KeyFiles.generate(name: "server", directory: path(""))
        let alice = try client("alice", authorizedIn: "keys-a")
        let bob = try client("bob", authorizedIn: "keys-b")
        var first = NoisedConfig()
        first.input.endpoint = "ipc://\(path("in"))"
        first.input.ackedEndpoint = nil
        first.output.endpoint = "ipc://\(path("out"))"
        first.metrics.listen = nil
        first.stateDir = nil
        first.workers = 1
        first.shutdown.drainSeconds = 1
        first.security.curve = CurveConfig(secretKeyFile: server.secretKeyPath, authorizedKeysDir: path("keys-a"))
        let metrics = NoisedMetrics()
        let pipeline = try Pipeline(config: first, logger: Logger(label: "test"), metrics: metrics, context: context)
        let applied = Mutex<[String]?>(nil)
        pipeline.onReloadApplied = { result in
            if case .success(let (changed, _)) = result { applied.withLock { $0 = changed } }
        }
        let finished = PipelineHarness.start(pipeline)

        XCTAssertEqual(try roundTrip("alice-1", as: alice, config: first, server: server.publicKey), "alice-1")
        XCTAssertNil(try roundTrip("bob-1", as: bob, config: first, server: server.publicKey), "bob is not authorized yet")
        XCTAssertTrue(PipelineHarness.wait { unauthorized(metrics) >= 1 }, "bob's refusal is counted")

        var moved = first
        moved.security.curve?.authorizedKeysDir = path("keys-b")
        pipeline.requestReload(moved)
        XCTAssertTrue(PipelineHarness.wait { applied.withLock { $0 } != nil }, "the reload was not applied")
        XCTAssertEqual(applied.withLock { $0 }, ["security.curve.authorized_keys_dir"],
                       "the change is applied and reported, not kept back as restart-only")

        let refusedBefore = unauthorized(metrics)
        XCTAssertEqual(try roundTrip("bob-2", as: bob, config: first, server: server.publicKey), "bob-2")
        XCTAssertNil(try roundTrip("alice-2", as: alice, config: first, server: server.publicKey),
                     "alice's key left with the old directory")
        XCTAssertTrue(PipelineHarness.wait { unauthorized(metrics) > refusedBefore }, "alice's refusal is counted")

        pipeline.requestStop()
        let summary = try XCTUnwrap(finished(20), "the pipeline did not stop")
        XCTAssertEqual(summary.sent, 2, "exactly the two authorized batches went out")
    }
}
