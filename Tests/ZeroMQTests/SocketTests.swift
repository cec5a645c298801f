import Foundation
import Synchronization
import XCTest
import ZeroMQ

final class SocketTests: XCTestCase {
    private var directory: URL!

    override func setUpWithError() throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("zmq-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(at: directory)
    }

    private func endpoint(_ name: String) -> String { "ipc://\(directory.path)/\(name)" }

    private func pair(_ context: ZMQContext) throws -> (push: ZMQSocket, pull: ZMQSocket) {
        let pull = try ZMQSocket(context, type: .pull)
        try pull.bind(endpoint("pair"))
        try pull.setTimeouts(receive: 5000)
        let push = try ZMQSocket(context, type: .push)
        try push.connect(endpoint("pair"))
        return (push, pull)
    }

    func testCopySendArrivesIntact() throws {
        let context = try ZMQContext()
        let (push, pull) = try pair(context)
        let payload = (0..<100_000).map { UInt8(truncatingIfNeeded: $0 &* 31) }
        XCTAssertTrue(try push.send(copying: payload))
        let message = try XCTUnwrap(try pull.receive())
        XCTAssertEqual(message.array, payload)
        XCTAssertFalse(message.hasMore)
        push.close(); pull.close()
    }

    func testASharedMessageGoesToSeveralSocketsAndStaysReadable() throws {
        let context = try ZMQContext()
        let (push, pull) = try pair(context)
        let payload = (0..<100_000).map { UInt8(truncatingIfNeeded: $0 &* 7) }
        XCTAssertTrue(try push.send(copying: payload))
        let received = try XCTUnwrap(try pull.receive())
        var relays: [(ZMQSocket, ZMQSocket)] = []
        for index in 0..<2 {
            let sink = try ZMQSocket(context, type: .pull)
            try sink.bind("inproc://shared-\(index)")
            try sink.setTimeouts(receive: 5000)
            let source = try ZMQSocket(context, type: .push)
            try source.connect("inproc://shared-\(index)")
            XCTAssertTrue(try source.send(prefix: [[UInt8(index)]], sharing: received))
            relays.append((source, sink))
        }
        for (index, (_, sink)) in relays.enumerated() {
            let parts = try XCTUnwrap(try sink.receiveMultipart())
            XCTAssertEqual(parts, [[UInt8(index)], payload])
        }
        XCTAssertEqual(received.array, payload, "the sender's message is still its own")
        // No peer room: a dontWait send reports false and queues nothing.
        let lonely = try ZMQSocket(context, type: .push)
        XCTAssertFalse(try lonely.send(prefix: [[1]], sharing: received, dontWait: true))
        lonely.close()
        for (source, sink) in relays { source.close(); sink.close() }
        push.close(); pull.close()
    }

    func testRouterReceivesFramesInPlaceAndRepliesToItsDealer() throws {
        let context = try ZMQContext()
        let router = try ZMQSocket(context, type: .router)
        try router.bind(endpoint("router"))
        try router.setTimeouts(receive: 5000)
        let dealer = try ZMQSocket(context, type: .dealer)
        try dealer.setTimeouts(receive: 5000)
        try dealer.connect(endpoint("router"))
        XCTAssertTrue(try dealer.send(parts: [[1, 2], [3], [4], [5, 6]]))
        let (frames, dropped) = try XCTUnwrap(try router.receiveFrames(maxFrames: 3))
        // The identity the ROUTER prefixed, then the first two frames the DEALER sent.
        XCTAssertEqual(frames.count, 3)
        XCTAssertEqual(frames[1...].map { $0.array }, [[1, 2], [3]])
        XCTAssertEqual(dropped, 2, "the frames beyond maxFrames are received and counted")
        XCTAssertTrue(try router.send(parts: [frames[0].array, [7, 7]]))
        XCTAssertEqual(try XCTUnwrap(try dealer.receiveMultipart()), [[7, 7]])
        XCTAssertNil(try router.receiveFrames(maxFrames: 3, dontWait: true))
        dealer.close(); router.close()
    }

    func testZeroCopySendReleasesBufferOnceAfterDelivery() throws {
        let context = try ZMQContext()
        let (push, pull) = try pair(context)
        let released = Atomic<Int>(0)
        let count = 1 << 20
        let buffer = UnsafeMutableRawPointer.allocate(byteCount: count, alignment: 64)
        for i in 0..<count { buffer.storeBytes(of: UInt8(truncatingIfNeeded: i), toByteOffset: i, as: UInt8.self) }
        XCTAssertTrue(try push.send(ZMQOutgoingMessage(zeroCopy: buffer, count: count) { released.add(1, ordering: .relaxed) }))
        let message = try XCTUnwrap(try pull.receive())
        XCTAssertEqual(message.count, count)
        XCTAssertTrue(message.withUnsafeBytes { $0.elementsEqual(UnsafeRawBufferPointer(start: buffer, count: count)) })
        // Release happens on libzmq's I/O thread after the bytes left; wait a bounded time.
        for _ in 0..<500 where released.load(ordering: .relaxed) == 0 { usleep(2000) }
        XCTAssertEqual(released.load(ordering: .relaxed), 1)
        buffer.deallocate()
        push.close(); pull.close()
    }

    func testUnsentMessageStaysOursUntilDropped() throws {
        let context = try ZMQContext()
        let push = try ZMQSocket(context, type: .push)  // no peer yet: the send cannot be queued
        try push.setLinger(milliseconds: 0)
        try push.bind(endpoint("late"))
        let released = Atomic<Int>(0)
        let buffer = UnsafeMutableRawPointer.allocate(byteCount: 64, alignment: 8)
        defer { buffer.deallocate() }
        for i in 0..<64 { buffer.storeBytes(of: UInt8(i), toByteOffset: i, as: UInt8.self) }
        var message: ZMQOutgoingMessage? = try ZMQOutgoingMessage(zeroCopy: buffer, count: 64) { released.add(1, ordering: .relaxed) }
        XCTAssertFalse(try push.send(message!, dontWait: true))
        XCTAssertEqual(released.load(ordering: .relaxed), 0, "a message that was not sent is still the caller's")
        // A peer arrives: the same message goes out on retry.
        let pull = try ZMQSocket(context, type: .pull)
        try pull.setTimeouts(receive: 5000)
        try pull.connect(endpoint("late"))
        try push.setTimeouts(send: 5000)
        XCTAssertTrue(try push.send(message!))
        XCTAssertEqual(try XCTUnwrap(try pull.receive()).withUnsafeBytes { $0.elementsEqual(UnsafeRawBufferPointer(start: buffer, count: 64)) }, true)
        message = nil
        for _ in 0..<500 where released.load(ordering: .relaxed) == 0 { usleep(2000) }
        XCTAssertEqual(released.load(ordering: .relaxed), 1)
    }

    func testDroppedMessageReleasesOnce() throws {
        let released = Atomic<Int>(0)
        let buffer = UnsafeMutableRawPointer.allocate(byteCount: 8, alignment: 8)
        defer { buffer.deallocate() }
        var message: ZMQOutgoingMessage? = try ZMQOutgoingMessage(zeroCopy: buffer, count: 8) { released.add(1, ordering: .relaxed) }
        XCTAssertNotNil(message)
        message = nil
        XCTAssertEqual(released.load(ordering: .relaxed), 1)
    }

    func testReceiveTimesOutWithNil() throws {
        let context = try ZMQContext()
        let pull = try ZMQSocket(context, type: .pull)
        try pull.bind(endpoint("idle"))
        try pull.setTimeouts(receive: 20)
        XCTAssertNil(try pull.receive())
        XCTAssertNil(try pull.receive(dontWait: true))
        XCTAssertFalse(try pull.waitReadable(milliseconds: 10))
    }

    func testWildcardPortIsReported() throws {
        let context = try ZMQContext()
        let pull = try ZMQSocket(context, type: .pull)
        try pull.bind("tcp://127.0.0.1:*")
        let bound = try pull.lastEndpoint
        XCTAssertTrue(bound.hasPrefix("tcp://127.0.0.1:"), bound)
        XCTAssertNotEqual(bound, "tcp://127.0.0.1:*")
    }

    func testBadEndpointNamesTheOperation() throws {
        let context = try ZMQContext()
        let pull = try ZMQSocket(context, type: .pull)
        XCTAssertThrowsError(try pull.bind("nonsense://x")) { error in
            XCTAssertTrue("\(error)".contains("bind nonsense://x"), "\(error)")
        }
    }

    func testUseAfterCloseThrows() throws {
        let context = try ZMQContext()
        let pull = try ZMQSocket(context, type: .pull)
        pull.close()
        XCTAssertThrowsError(try pull.receive(dontWait: true))
    }

    func testPubSubDeliversToSubscriber() throws {
        let context = try ZMQContext()
        let pub = try ZMQSocket(context, type: .pub)
        try pub.bind(endpoint("pub"))
        let sub = try ZMQSocket(context, type: .sub)
        try sub.subscribe()
        try sub.setTimeouts(receive: 50)
        try sub.connect(endpoint("pub"))
        // PUB drops messages until the subscription has propagated: retry a bounded number of times.
        var received: ZMQMessage?
        for _ in 0..<100 where received == nil {
            try pub.send(copying: [1, 2, 3])
            received = try sub.receive()
        }
        XCTAssertEqual(received.map { $0.array }, [1, 2, 3])
    }

    func testCurveIsAvailable() {
        XCTAssertTrue(ZMQContext.has("curve"))
        XCTAssertGreaterThanOrEqual(ZMQContext.version.0, 4)
    }
}

final class MonitorTests: XCTestCase {
    func testDisconnectOfAPeerIsReported() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("zmq-monitor-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let context = try ZMQContext()
        let pull = try ZMQSocket(context, type: .pull)
        try pull.setLinger(milliseconds: 0)
        try pull.startMonitor("inproc://monitor-test", events: [.accepted, .disconnected])
        let events = try ZMQSocket(context, type: .pair)
        try events.setLinger(milliseconds: 0)
        try events.setTimeouts(receive: 5000)
        try events.connect("inproc://monitor-test")
        try pull.bind("ipc://\(directory.path)/m.sock")

        let push = try ZMQSocket(context, type: .push)
        try push.setLinger(milliseconds: 0)
        try push.connect("ipc://\(directory.path)/m.sock")
        let accepted = try XCTUnwrap(try events.receiveMultipart().flatMap(ZMQSocketEvent.init(parts:)))
        XCTAssertEqual(accepted.kind, .accepted)
        XCTAssertTrue(accepted.address.hasSuffix("m.sock"), accepted.address)
        push.close()
        let disconnected = try XCTUnwrap(try events.receiveMultipart().flatMap(ZMQSocketEvent.init(parts:)))
        XCTAssertEqual(disconnected.kind, .disconnected)
    }

    func testMalformedEventFramesAreNotEvents() {
        XCTAssertNil(ZMQSocketEvent(parts: [[1, 2, 3]]))
        XCTAssertNil(ZMQSocketEvent(parts: [[1, 2, 3], [4]]))
        XCTAssertEqual(ZMQSocketEvent(parts: [[0x00, 0x02, 7, 0, 0, 0], Array("tcp://x".utf8)])?.kind, .disconnected)
    }
}
