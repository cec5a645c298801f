import Foundation
import XCTest
import ZeroMQ

final class CurveKeyTests: XCTestCase {
    // The keypair from libzmq's zmq_curve documentation.
    private let documentedPublic = "Yne@$w-vo<fVvi]a<NY6T1ed:M$fCG*[IaLV{hID"
    private let documentedSecret = "D:)Q[IlAW!ahhC2ac:9*A}h:p?([4%wOTJ%JR%cs"

    func testPublicKeyDerivesFromTheDocumentedSecret() throws {
        XCTAssertEqual(try ZMQCurve.publicKey(forSecret: documentedSecret), documentedPublic)
    }

    func testGeneratedKeypairsAreValidDistinctAndMatch() throws {
        let first = try ZMQCurve.generateKeypair()
        let second = try ZMQCurve.generateKeypair()
        XCTAssertTrue(ZMQCurve.isValid(first.publicKey))
        XCTAssertTrue(ZMQCurve.isValid(first.secretKey))
        XCTAssertNotEqual(first.secretKey, second.secretKey)
        XCTAssertEqual(try ZMQCurve.publicKey(forSecret: first.secretKey), first.publicKey)
    }

    func testDecodeAndEncodeRoundTrip() throws {
        let raw = try ZMQCurve.decode(documentedPublic)
        XCTAssertEqual(raw.count, 32)
        XCTAssertEqual(try ZMQCurve.encode(raw), documentedPublic)
    }

    func testInvalidKeysAreNamed() {
        func reason(_ key: String) -> String {
            do { try ZMQCurve.validate(key); return "valid" } catch { return error.reason }
        }
        XCTAssertEqual(reason(String(documentedPublic.dropLast())), "expected 40 Z85 characters, got 39")
        XCTAssertEqual(reason("\"" + documentedPublic.dropFirst()), "'\"' at position 1 is not a Z85 character")
        // "#####" is 85^5 - 1 > 2^32 - 1.
        XCTAssertEqual(reason("#####" + documentedPublic.dropFirst(5)), "characters 1-5 overflow 32 bits")
        XCTAssertThrowsError(try ZMQCurve.publicKey(forSecret: "not a key"))
        XCTAssertThrowsError(try ZMQCurve.encode([1, 2, 3]))
    }
}

final class CurveSocketTests: XCTestCase {
    private var directory: URL!
    private var server: (publicKey: String, secretKey: String)!
    private var client: (publicKey: String, secretKey: String)!

    override func setUpWithError() throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("zmq-curve-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        server = try ZMQCurve.generateKeypair()
        client = try ZMQCurve.generateKeypair()
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(at: directory)
    }

    private func endpoint(_ name: String) -> String { "ipc://\(directory.path)/\(name)" }

    private func socket(_ context: ZMQContext, _ type: ZMQSocketType, timeout: Int32 = 5000) throws -> ZMQSocket {
        let socket = try ZMQSocket(context, type: type)
        try socket.setLinger(milliseconds: 0)
        try socket.setTimeouts(send: timeout, receive: timeout)
        return socket
    }

    private func curveServer(_ context: ZMQContext, _ type: ZMQSocketType, at name: String) throws -> ZMQSocket {
        let socket = try socket(context, type)
        try socket.makeCurveServer(secretKey: server.secretKey)
        try socket.bind(endpoint(name))
        return socket
    }

    private func curveClient(_ context: ZMQContext, _ type: ZMQSocketType, at name: String,
                             keys: (publicKey: String, secretKey: String), timeout: Int32 = 5000) throws -> ZMQSocket {
        let socket = try socket(context, type, timeout: timeout)
        try socket.makeCurveClient(serverKey: server.publicKey, publicKey: keys.publicKey, secretKey: keys.secretKey)
        try socket.connect(endpoint(name))
        return socket
    }

    /// Waits a bounded time for the authenticator's thread to record what the test expects.
    private func eventually(_ condition: () -> Bool) -> Bool {
        for _ in 0..<500 where !condition() { usleep(10_000) }
        return condition()
    }

    func testAuthorizedClientSendsAndReceivesMultipart() throws {
        let context = try ZMQContext()
        let zap = try ZAPAuthenticator(context: context, allowedKeys: [client.publicKey])
        defer { zap.stop() }
        let rep = try curveServer(context, .rep, at: "rep")
        let req = try curveClient(context, .req, at: "rep", keys: client)

        XCTAssertTrue(try req.send(parts: [Array("hello".utf8), [0, 1, 2]]))
        XCTAssertEqual(try rep.receiveMultipart(), [Array("hello".utf8), [0, 1, 2]])
        XCTAssertTrue(try rep.send(parts: [Array("world".utf8)]))
        XCTAssertEqual(try req.receiveMultipart(), [Array("world".utf8)])
        XCTAssertEqual(zap.approvals, 1)
        XCTAssertEqual(zap.denials, 0)
        rep.close(); req.close()
    }

    func testAuthorizedClientPullsFromCurvePushServer() throws {
        let context = try ZMQContext()
        let zap = try ZAPAuthenticator(context: context, allowedKeys: [client.publicKey])
        defer { zap.stop() }
        let push = try curveServer(context, .push, at: "out")
        let pull = try curveClient(context, .pull, at: "out", keys: client)
        XCTAssertTrue(try push.send(copying: [7, 8, 9]))
        XCTAssertEqual(try pull.receive().map { $0.array }, [7, 8, 9])
        push.close(); pull.close()
    }

    func testUnauthorizedKeyGetsNothingAndIsCountedAsDenied() throws {
        let context = try ZMQContext()
        let denials = DenialLog()
        let zap = try ZAPAuthenticator(context: context, allowedKeys: [client.publicKey]) { denials.append($0) }
        defer { zap.stop() }
        let intruderKeys = try ZMQCurve.generateKeypair()

        let pull = try curveServer(context, .pull, at: "in")
        try pull.setTimeouts(receive: 300)
        let intruder = try curveClient(context, .push, at: "in", keys: intruderKeys, timeout: 300)
        // A connecting socket queues at once; the frame is simply never delivered.
        _ = try intruder.send(copying: [1])
        XCTAssertNil(try pull.receive())

        let push = try curveServer(context, .push, at: "out")
        try push.setTimeouts(send: 300)
        let listener = try curveClient(context, .pull, at: "out", keys: intruderKeys, timeout: 300)
        // The bound side gets a peer only once a handshake completes: nothing to send to.
        XCTAssertFalse(try push.send(copying: [2]))
        XCTAssertNil(try listener.receive())

        XCTAssertTrue(eventually { zap.denials >= 2 })
        XCTAssertEqual(zap.approvals, 0)
        XCTAssertTrue(denials.reasons.allSatisfy { $0.contains("client key \(intruderKeys.publicKey) is not authorized") },
                      "\(denials.reasons)")
        pull.close(); intruder.close(); push.close(); listener.close()
    }

    func testPlainClientGetsNothing() throws {
        let context = try ZMQContext()
        let zap = try ZAPAuthenticator(context: context, allowedKeys: [client.publicKey])
        defer { zap.stop() }
        let pull = try curveServer(context, .pull, at: "in")
        try pull.setTimeouts(receive: 300)
        let plain = try socket(context, .push, timeout: 300)
        try plain.connect(endpoint("in"))
        _ = try plain.send(copying: [1])
        XCTAssertNil(try pull.receive())
        XCTAssertEqual(zap.approvals, 0)
        pull.close(); plain.close()
    }

    func testUpdatedKeysLetANewClientIn() throws {
        let context = try ZMQContext()
        let zap = try ZAPAuthenticator(context: context, allowedKeys: [])
        defer { zap.stop() }
        let pull = try curveServer(context, .pull, at: "in")
        try zap.updateAllowedKeys([client.publicKey])
        let push = try curveClient(context, .push, at: "in", keys: client)
        XCTAssertTrue(try push.send(copying: [42]))
        XCTAssertEqual(try pull.receive().map { $0.array }, [42])
        XCTAssertThrowsError(try zap.updateAllowedKeys(["short"]))
        pull.close(); push.close()
    }
}

/// Denials recorded from the authenticator's thread.
private final class DenialLog: @unchecked Sendable {
    private let lock = NSLock()
    private var stored: [String] = []
    func append(_ denial: ZAPAuthenticator.Denial) { lock.withLock { stored.append(denial.reason) } }
    var reasons: [String] { lock.withLock { stored } }
}
