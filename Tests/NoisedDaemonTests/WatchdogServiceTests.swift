import NoisedDaemon
import Synchronization
import XCTest

/// A pipeline whose heartbeat age the test sets: fresh while it runs, old once it "hangs".
private final class FakeProgress: PipelineProgress {
    let heartbeatAge = Mutex(0.0)
    let step: Int64 = 7
    let batchesSent: UInt64 = 0
    var secondsSinceHeartbeat: Double { heartbeatAge.withLock { $0 } }
}

private final class Sent: Sendable {
    let messages = Mutex<[String]>([])
    var all: [String] { messages.withLock { $0 } }

    /// Waits (bounded) until `count` messages arrived after the first `after`.
    func wait(for count: Int, after: Int, timeout: Duration = .seconds(10)) async throws -> [String] {
        let deadline = ContinuousClock.now + timeout
        while all.count < after + count {
            guard ContinuousClock.now < deadline else {
                XCTFail("\(all.count - after) of \(count) messages within \(timeout)")
                return Array(all.dropFirst(after))
            }
            try await Task.sleep(for: .milliseconds(10))
        }
        return Array(all.dropFirst(after).prefix(count))
    }
}

final class WatchdogServiceTests: XCTestCase {
    func testTheRulePingsOnlyForAHeartbeatWithinThePeriod() {
        XCTAssertTrue(WatchdogService.shouldPing(secondsSinceHeartbeat: 0.01, period: .milliseconds(100)))
        XCTAssertFalse(WatchdogService.shouldPing(secondsSinceHeartbeat: 0.1, period: .milliseconds(100)))
        XCTAssertFalse(WatchdogService.shouldPing(secondsSinceHeartbeat: 30, period: .seconds(15)))
    }

    func testPingsStopWhenThePipelineHangsAndStatusGoesOn() async throws {
        let progress = FakeProgress(), sent = Sent()
        let service = WatchdogService(progress: progress, watchdogInterval: .milliseconds(100)) { message in
            sent.messages.withLock { $0.append(message) }
        }
        XCTAssertEqual(service.period, .milliseconds(50))
        let running = Task { try await service.run() }
        defer { running.cancel() }
        let healthy = try await sent.wait(for: 3, after: 0)
        XCTAssertTrue(healthy.allSatisfy { $0.hasPrefix("WATCHDOG=1\nSTATUS=step 7,") }, "\(healthy)")

        progress.heartbeatAge.withLock { $0 = 10 }
        // A message composed before the hang may still be on its way: skip one.
        let hung = try await sent.wait(for: 3, after: sent.all.count + 1)
        XCTAssertTrue(hung.allSatisfy { $0.hasPrefix("STATUS=step 7,") && !$0.contains("WATCHDOG=1") }, "\(hung)")

        progress.heartbeatAge.withLock { $0 = 0 }
        let recovered = try await sent.wait(for: 2, after: sent.all.count + 1)
        XCTAssertTrue(recovered.allSatisfy { $0.hasPrefix("WATCHDOG=1\n") }, "\(recovered)")
    }
}
