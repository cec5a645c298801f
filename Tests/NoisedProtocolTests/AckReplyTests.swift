import NoisedProtocol
import XCTest

final class AckReplyTests: XCTestCase {
    private func decode(_ text: String) throws -> AckReply {
        try Array(text.utf8).withUnsafeBytes { try AckReply(status: $0) }
    }

    func testEveryReplyRoundTrips() throws {
        let replies: [AckReply] = [
            .ok(seq: 0), .ok(seq: UInt64.max),
            .rejected(reason: "bad_header", detail: "at header byte 3: \"quoted\" \\ and\nnewline, ünïcode"),
            .unsent(detail: "the daemon stopped before the output could be queued"),
        ]
        for reply in replies {
            XCTAssertEqual(try decode(String(decoding: reply.encoded, as: UTF8.self)), reply)
        }
    }

    func testTheFormIsTheDocumentedOne() {
        XCTAssertEqual(String(decoding: AckReply.ok(seq: 42).encoded, as: UTF8.self), #"{"status":"ok","seq":42}"#)
        XCTAssertEqual(String(decoding: AckReply.rejected(reason: "empty_batch", detail: "B = 0").encoded, as: UTF8.self),
                       #"{"status":"rejected","reason":"empty_batch","detail":"B = 0"}"#)
        XCTAssertEqual(String(decoding: AckReply.unsent(detail: "stopped").encoded, as: UTF8.self),
                       #"{"status":"unsent","detail":"stopped"}"#)
    }

    func testMalformedRepliesAreNamed() {
        for (text, fragment) in [
            ("", "not a JSON object"), ("[1]", "not a JSON object"), (#"{"seq":1}"#, #"no string "status""#),
            (#"{"status":"ok"}"#, #"no integer "seq""#), (#"{"status":"maybe"}"#, #"unknown reply status "maybe""#),
            (#"{"status":"rejected","reason":"x"}"#, #"no string "detail""#),
        ] {
            XCTAssertThrowsError(try decode(text), text) { error in
                let error = error as! ProtocolError
                XCTAssertEqual(error.reason, .badEnvelope)
                XCTAssertTrue(error.detail.contains(fragment), "\(error.detail) lacks \(fragment)")
            }
        }
    }
}
