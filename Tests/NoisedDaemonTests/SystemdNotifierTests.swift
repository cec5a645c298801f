import Foundation
import Glibc
import NoisedDaemon
import NoisedRuntime
import XCTest

/// A datagram socket standing in for systemd's notification socket.
private final class NotifySocketListener {
    let descriptor: Int32

    /// `name` is a path, or an abstract name with a leading "@".
    init(name: String) throws {
        descriptor = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue), 0)
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        var bytes = Array(name.utf8)
        if bytes.first == UInt8(ascii: "@") { bytes[0] = 0 } else { bytes.append(0) }
        withUnsafeMutableBytes(of: &address.sun_path) { $0.copyBytes(from: bytes) }
        let length = socklen_t(MemoryLayout<sockaddr_un>.offset(of: \.sun_path)! + bytes.count)
        let rc = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(descriptor, $0, length) }
        }
        guard rc == 0 else { throw POSIXError(POSIXErrorCode(rawValue: errno)!) }
        var timeout = timeval(tv_sec: 5, tv_usec: 0)
        setsockopt(descriptor, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
    }

    deinit { close(descriptor) }

    /// The next datagram, or nil after the 5 s receive timeout.
    func receive() -> String? {
        var buffer = [UInt8](repeating: 0, count: 4096)
        let count = recv(descriptor, &buffer, buffer.count, 0)
        return count < 0 ? nil : String(decoding: buffer.prefix(count), as: UTF8.self)
    }
}

final class SystemdNotifierTests: XCTestCase {
    private func exerciseEveryMessage(socketName: String) throws {
        let listener = try NotifySocketListener(name: socketName)
        let notifier = try XCTUnwrap(try SystemdNotifier(environment: ["NOTIFY_SOCKET": socketName]))
        try notifier.ready()
        try notifier.status("step 12\nrate 3.5 batches/s")
        try notifier.watchdog()
        try notifier.reloading()
        try notifier.ready()
        try notifier.stopping()

        XCTAssertEqual(listener.receive(), "READY=1")
        XCTAssertEqual(listener.receive(), "STATUS=step 12 rate 3.5 batches/s")
        XCTAssertEqual(listener.receive(), "WATCHDOG=1")
        let reloading = try XCTUnwrap(listener.receive()).split(separator: "\n").map(String.init)
        XCTAssertEqual(reloading.count, 2)
        XCTAssertEqual(reloading.first, "RELOADING=1")
        let stamp = try XCTUnwrap(UInt64(try XCTUnwrap(reloading.last?.split(separator: "=").last)))
        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC, &now)
        let nowMicroseconds = UInt64(now.tv_sec) * 1_000_000 + UInt64(now.tv_nsec) / 1_000
        XCTAssertTrue(reloading.last!.hasPrefix("MONOTONIC_USEC="))
        XCTAssertLessThanOrEqual(stamp, nowMicroseconds)
        XCTAssertGreaterThan(stamp, 0)
        XCTAssertEqual(listener.receive(), "READY=1")
        XCTAssertEqual(listener.receive(), "STOPPING=1")
    }

    func testMessagesArriveInOrderAtAPathSocket() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("notify-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        try exerciseEveryMessage(socketName: directory.appendingPathComponent("notify").path)
    }

    func testMessagesArriveInOrderAtAnAbstractSocket() throws {
        try exerciseEveryMessage(socketName: "@noised-test-\(UUID().uuidString)")
    }

    func testUnsetOrEmptySocketMeansNoNotifier() throws {
        XCTAssertNil(try SystemdNotifier(environment: [:]))
        XCTAssertNil(try SystemdNotifier(environment: ["NOTIFY_SOCKET": ""]))
    }

    func testMalformedSocketNamesAreRejected() {
        XCTAssertThrowsError(try SystemdNotifier(environment: ["NOTIFY_SOCKET": "relative/path"])) {
            XCTAssertTrue("\($0)".contains("neither a path nor an @abstract name"))
        }
        XCTAssertThrowsError(try SystemdNotifier(environment: ["NOTIFY_SOCKET": "/" + String(repeating: "x", count: 200)])) {
            XCTAssertTrue("\($0)".contains("longer than"))
        }
    }

    func testSendingToAMissingSocketFails() throws {
        let notifier = try XCTUnwrap(try SystemdNotifier(environment: ["NOTIFY_SOCKET": "/nonexistent/noised-notify"]))
        XCTAssertThrowsError(try notifier.ready()) { XCTAssertTrue("\($0)".contains("/nonexistent/noised-notify")) }
    }

    func testWatchdogIntervalAndPingPeriod() throws {
        let socket = "@unused"
        let ours = try XCTUnwrap(try SystemdNotifier(environment: [
            "NOTIFY_SOCKET": socket, "WATCHDOG_USEC": "30000000", "WATCHDOG_PID": "\(getpid())",
        ]))
        XCTAssertEqual(ours.watchdogInterval, .seconds(30))
        XCTAssertEqual(ours.watchdogPingPeriod, .seconds(15))
        let noPID = try XCTUnwrap(try SystemdNotifier(environment: ["NOTIFY_SOCKET": socket, "WATCHDOG_USEC": "2000000"]))
        XCTAssertEqual(noPID.watchdogPingPeriod, .seconds(1))
        let anotherProcess = try XCTUnwrap(try SystemdNotifier(environment: [
            "NOTIFY_SOCKET": socket, "WATCHDOG_USEC": "30000000", "WATCHDOG_PID": "\(getpid() + 1)",
        ]))
        XCTAssertNil(anotherProcess.watchdogInterval)
        for bad in ["0", "-5", "soon"] {
            let notifier = try XCTUnwrap(try SystemdNotifier(environment: ["NOTIFY_SOCKET": socket, "WATCHDOG_USEC": bad]))
            XCTAssertNil(notifier.watchdogInterval, bad)
        }
        XCTAssertNil(try XCTUnwrap(try SystemdNotifier(environment: ["NOTIFY_SOCKET": socket])).watchdogInterval)
    }
}
