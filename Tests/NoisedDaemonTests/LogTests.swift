import Logging
import NoisedDaemon
import NoisedProtocol
import NoisedRuntime
import XCTest

final class LogTests: XCTestCase {
    func testLogfmtQuotesOnlyWhatNeedsIt() {
        XCTAssertEqual(LogfmtLogHandler.quote("plain"), "plain")
        XCTAssertEqual(LogfmtLogHandler.quote("two words"), "\"two words\"")
        XCTAssertEqual(LogfmtLogHandler.quote(""), "\"\"")
        XCTAssertEqual(LogfmtLogHandler.quote("a=b"), "\"a=b\"")
        XCTAssertEqual(LogfmtLogHandler.quote("say \"hi\"\n"), "\"say \\\"hi\\\"\\n\"")
    }

    func testJournalPriorities() {
        XCTAssertEqual(LogfmtLogHandler.syslogPriority(.error), 3)
        XCTAssertEqual(LogfmtLogHandler.syslogPriority(.warning), 4)
        XCTAssertEqual(LogfmtLogHandler.syslogPriority(.info), 6)
        XCTAssertEqual(LogfmtLogHandler.syslogPriority(.debug), 7)
    }

    func testTimestampIsRFC3339() {
        let ts = LogfmtLogHandler.timestamp()
        XCTAssertNotNil(ts.range(of: #"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$"#, options: .regularExpression), ts)
    }

    func testRejectLogCountsEveryRejectButRateLimitsLines() {
        let recorder = LineRecorder()
        let logger = Logger(label: "test") { _ in recorder }
        var log = RejectLog(interval: .seconds(1))
        let start = ContinuousClock.now
        for i in 0..<10 {
            log.record(ProtocolError(.truncated, "cut at \(i)"), logger: logger, now: start + .milliseconds(i))
        }
        log.record(ProtocolError(.badHeader, "x"), logger: logger, now: start)
        log.record(ProtocolError(.truncated, "later"), logger: logger, now: start + .seconds(2))
        XCTAssertEqual(log.counts["truncated"], 11)
        XCTAssertEqual(log.counts["bad_header"], 1)
        XCTAssertEqual(log.total, 12)
        XCTAssertEqual(recorder.lines.count, 3)
        XCTAssertEqual(recorder.lines.last?["suppressed"], "9")
        XCTAssertEqual(log.summary["rejected_truncated"], "11")
    }
}

/// Captures log events' metadata as plain strings.
private final class LineRecorder: LogHandler, @unchecked Sendable {
    var lines: [[String: String]] = []
    var logLevel: Logger.Level = .trace
    var metadata: Logger.Metadata = [:]
    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }
    func log(event: LogEvent) {
        lines.append((event.metadata ?? [:]).mapValues { "\($0)" })
    }
}
