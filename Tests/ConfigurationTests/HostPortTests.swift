import Configuration
import XCTest

final class HostPortTests: XCTestCase {
    func testAddressesSplitAtTheLastColon() throws {
        let v4 = try XCTUnwrap(HostPort("127.0.0.1:9464"))
        XCTAssertEqual([v4.host, v4.port, v4.bareHost], ["127.0.0.1", "9464", "127.0.0.1"])
        XCTAssertTrue(v4.isLoopback)
        let v6 = try XCTUnwrap(HostPort(tcpEndpoint: "tcp://[::1]:5555"))
        XCTAssertEqual([v6.host, v6.port, v6.bareHost], ["[::1]", "5555", "::1"])
        XCTAssertTrue(v6.isLoopback)
        let any = try XCTUnwrap(HostPort(tcpEndpoint: "tcp://*:*"))
        XCTAssertTrue(any.isWildcard)
        XCTAssertFalse(any.isLoopback)
        XCTAssertTrue(try XCTUnwrap(HostPort("[::]:1")).isWildcard)
        XCTAssertFalse(try XCTUnwrap(HostPort(tcpEndpoint: "tcp://10.0.0.2:7000")).isLoopback)
    }

    func testWhatIsNotHostAndPort() {
        for bad in ["9464", ":9464", "::1:9464"] { XCTAssertNil(HostPort(bad), bad) }
        XCTAssertNil(HostPort(tcpEndpoint: "ipc:///tmp/x:1"))
        XCTAssertNil(HostPort(tcpEndpoint: "tcp://host"))
    }
}
