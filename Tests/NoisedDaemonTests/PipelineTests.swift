import Configuration
import Foundation
import Logging
import NoisedDaemon
import Safetensors
import Synchronization
import XCTest
import ZeroMQ

/// The pipeline in this process: its sockets and the test's share one ZeroMQ context and speak
/// inproc://, so reload and drain are tested without a daemon, a port or a file.
final class PipelineTests: XCTestCase {
    private var context: ZMQContext!

    override func setUpWithError() throws { context = try ZMQContext() }

    private func config(_ name: String) -> NoisedConfig {
        var config = NoisedConfig()
        config.input.endpoint = "inproc://\(name)-in"
        config.input.ackedEndpoint = nil
        config.output.endpoint = "inproc://\(name)-out"
        config.metrics.listen = nil
        config.stateDir = nil
        config.workers = 1
        config.shutdown.drainSeconds = 1
        return config
    }

    private func socket(_ type: ZMQSocketType, connect endpoint: String) throws -> ZMQSocket {
        let socket = try ZMQSocket(context, type: type)
        try socket.setLinger(milliseconds: 0)
        try socket.setTimeouts(send: 10_000, receive: 10_000)
        try socket.connect(endpoint)
        return socket
    }

    /// The probe and seq of the next output, or nil after the receive timeout.
    private func receive(_ socket: ZMQSocket) throws -> (probe: String, seq: String)? {
        guard let message = try socket.receive() else { return nil }
        return try message.withUnsafeBytes { bytes in
            let reader = try SafetensorsReader(bytes)
            return (reader.metadata["probe"] ?? "", reader.metadata["noised.seq"] ?? "")
        }
    }

    func testAReloadMovesTheOutputAndLosesOrRepeatsNothing() throws {
        let first = config("reload")
        let pipeline = try Pipeline(config: first, logger: Logger(label: "test"), metrics: NoisedMetrics(), context: context)
        let applied = Mutex<[String]?>(nil)
        pipeline.onReloadApplied = { result in
            if case .success(let (changed, _)) = result { applied.withLock { $0 = changed } }
        }
        let finished = PipelineHarness.start(pipeline)
        let producer = try socket(.push, connect: first.input.endpoint)
        let consumer = try socket(.pull, connect: first.output.endpoint)
        defer { producer.close(); consumer.close() }

        XCTAssertTrue(try producer.send(copying: try PipelineHarness.batch("a")))
        let a = try XCTUnwrap(try receive(consumer))
        XCTAssertEqual(a.probe, "a")
        XCTAssertEqual(a.seq, "0")

        var moved = first
        moved.output.endpoint = "inproc://reload-out-2"
        pipeline.requestReload(moved)
        _ = PipelineHarness.wait { applied.withLock { $0 } != nil }
        XCTAssertEqual(applied.withLock { $0 }, ["output.endpoint"])

        let newConsumer = try socket(.pull, connect: moved.output.endpoint)
        defer { newConsumer.close() }
        XCTAssertTrue(try producer.send(copying: try PipelineHarness.batch("b")))
        let b = try XCTUnwrap(try receive(newConsumer))
        XCTAssertEqual(b.probe, "b")
        XCTAssertEqual(b.seq, "1", "seq continues across the reload")

        pipeline.requestStop()
        let summary = try XCTUnwrap(finished(20), "the pipeline did not stop")
        XCTAssertEqual([summary.received, summary.sent, summary.undelivered], [2, 2, 0])
    }

    func testTheDrainEndsWithinItsBoundAndCountsWhatItCouldNotSend() throws {
        var stalled = config("drain")
        stalled.output.highWaterMark = 1
        stalled.shutdown.drainSeconds = 0.5
        let metrics = NoisedMetrics()
        let pipeline = try Pipeline(config: stalled, logger: Logger(label: "test"), metrics: metrics, context: context)
        let finished = PipelineHarness.start(pipeline)
        let producer = try socket(.push, connect: stalled.input.endpoint)
        defer { producer.close() }
        // No consumer ever connects: the first batch waits in send, the rest wait in the input.
        for probe in ["a", "b", "c"] { XCTAssertTrue(try producer.send(copying: try PipelineHarness.batch(probe))) }
        XCTAssertTrue(PipelineHarness.wait { metrics.render().contains("noised_batches_received_total 1") },
                      "the first batch never arrived")
        pipeline.requestStop()
        let summary = try XCTUnwrap(finished(20), "the drain did not end")
        XCTAssertEqual(summary.sent, 0)
        XCTAssertGreaterThanOrEqual(summary.undelivered, 1, "the batch held in send is counted")
        XCTAssertLessThanOrEqual(summary.received, 3)
    }

    func testTheDrainBoundAndTheHeartbeatReadTheInjectedClock() throws {
        var stalled = config("clock")
        stalled.output.highWaterMark = 1
        stalled.shutdown.drainSeconds = 3600
        let clock = ManualClock()
        let metrics = NoisedMetrics()
        let pipeline = try Pipeline(config: stalled, logger: Logger(label: "test"), metrics: metrics, context: context,
                                    clock: clock.pipelineClock)
        clock.advance(by: .seconds(30))
        XCTAssertEqual(pipeline.secondsSinceHeartbeat, 30, accuracy: 1e-9)
        XCTAssertEqual(pipeline.healthProblem, "pipeline has not come round for 30 s")

        let finished = PipelineHarness.start(pipeline)
        let producer = try socket(.push, connect: stalled.input.endpoint)
        defer { producer.close() }
        // No consumer: the batch waits in send until the hour-long drain bound passes on the clock.
        XCTAssertTrue(try producer.send(copying: try PipelineHarness.batch("held")))
        XCTAssertTrue(PipelineHarness.wait { metrics.render().contains("noised_batches_received_total 1") })
        XCTAssertLessThan(pipeline.secondsSinceHeartbeat, 1, "the running loop beats on the injected clock")
        XCTAssertNil(pipeline.healthProblem)
        pipeline.requestStop()
        clock.advance(by: .seconds(3599))
        XCTAssertNil(finished(0.3), "the drain ended before its bound on the injected clock")
        clock.advance(by: .seconds(2))
        let summary = try XCTUnwrap(finished(20), "the drain did not end once the injected clock passed its bound")
        XCTAssertEqual([summary.received, summary.sent, summary.undelivered], [1, 0, 1])
    }
}

/// A clock the test moves by hand.
final class ManualClock: Sendable {
    private let start = ContinuousClock.now
    private let offset = Mutex<Duration>(.zero)

    func advance(by duration: Duration) { offset.withLock { $0 += duration } }

    var pipelineClock: PipelineClock { PipelineClock { [self] in start + offset.withLock { $0 } } }
}
