import Schedule
import XCTest
import Configuration

/// schedule.adaptive, schedule.stratified, steps.source, feedback, metrics and security.
final class ServiceSectionsTests: XCTestCase {
    func testDefaults() {
        let config = NoisedConfig()
        XCTAssertEqual(config.adaptive, AdaptiveSettings(enabled: false, bins: 20, history: 10, mix: 0.5, uniformFloor: 0.01))
        XCTAssertFalse(config.stratified)
        XCTAssertEqual(config.steps.source, .batches)
        XCTAssertNil(config.feedback.endpoint)
        XCTAssertTrue(config.feedback.bind)
        XCTAssertEqual(config.feedback.pattern, .pull)
        XCTAssertEqual(config.metrics.listen, "127.0.0.1:9464")
        XCTAssertNil(config.security.curve)
    }

    func testEveryNewKeyOverridden() throws {
        let config = try NoisedConfig.parse(yaml: """
            steps: {source: feedback}
            feedback: {endpoint: 'tcp://127.0.0.1:5557', bind: false, pattern: sub}
            metrics: {listen: '0.0.0.0:9100'}
            security:
              curve: {secret_key_file: /etc/noised/curve.key, authorized_keys_dir: /etc/noised/authorized}
            schedule:
              stratified: true
              adaptive: {enabled: true, bins: 8, history: 4, mix: 1, uniform_floor: 0}
            """)
        XCTAssertEqual(config.steps.source, .feedback)
        XCTAssertEqual(config.feedback.endpoint, "tcp://127.0.0.1:5557")
        XCTAssertFalse(config.feedback.bind)
        XCTAssertEqual(config.feedback.pattern, .sub)
        XCTAssertEqual(config.metrics.listen, "0.0.0.0:9100")
        XCTAssertEqual(config.security.curve, CurveConfig(secretKeyFile: "/etc/noised/curve.key",
                                                          authorizedKeysDir: "/etc/noised/authorized"))
        XCTAssertTrue(config.stratified)
        XCTAssertEqual(config.adaptive, AdaptiveSettings(enabled: true, bins: 8, history: 4, mix: 1, uniformFloor: 0))
        // The curriculum keeps its default beside the new schedule keys.
        XCTAssertEqual(config.schedule, NoisedConfig().schedule)
    }

    func testNullsTurnThingsOff() throws {
        XCTAssertNil(try NoisedConfig.parse(yaml: "metrics: {listen: null}").metrics.listen)
        XCTAssertNil(try NoisedConfig.parse(yaml: "feedback: {endpoint: null}").feedback.endpoint)
        XCTAssertNil(try NoisedConfig.parse(yaml: "input: {acked_endpoint: null}").input.ackedEndpoint)
        XCTAssertEqual(try NoisedConfig.parse(yaml: "input: {acked_endpoint: 'ipc:///run/a'}").input.ackedEndpoint, "ipc:///run/a")
        XCTAssertNil(try NoisedConfig.parse(yaml: "security: {curve: null}").security.curve)
        XCTAssertEqual(try NoisedConfig.parse(yaml: "metrics:\nfeedback:\nsecurity:\n"), NoisedConfig())
        XCTAssertEqual(try NoisedConfig.parse(yaml: "metrics: {listen: '[::1]:9464'}").metrics.listen, "[::1]:9464")
    }

    func testBadAdaptiveSettings() {
        assertRejected("schedule: {adaptive: {bins: 1}}", "schedule.adaptive.bins", "must be in 2...1000, got 1")
        assertRejected("schedule: {adaptive: {history: 0}}", "schedule.adaptive.history", "must be in 1...1000, got 0")
        assertRejected("schedule: {adaptive: {mix: 1.5}}", "schedule.adaptive.mix", "must be in 0.0...1.0, got 1.5")
        assertRejected("schedule: {adaptive: {mix: .nan}}", "schedule.adaptive.mix", "must be in 0.0...1.0")
        assertRejected("schedule: {adaptive: {uniform_floor: 1}}", "schedule.adaptive.uniform_floor", "must be in [0, 1), got 1.0")
        assertRejected("schedule: {adaptive: {uniform_floor: -0.1}}", "schedule.adaptive.uniform_floor", "must be in [0, 1)")
        assertRejected("schedule: {adaptive: {enabled: yes please}}", "schedule.adaptive.enabled", "expected true or false")
        assertRejected("schedule: {adaptive: {bin: 4}}", "schedule.adaptive.bin",
                       "unknown key (expected one of: enabled, bins, history, mix, uniform_floor)")
        assertRejected("schedule: {stratified: 2}", "schedule.stratified", "expected true or false")
    }

    func testBadFeedbackStepsMetricsAndSecurity() {
        assertRejected("steps: {source: trainer}", "steps.source", "must be one of batches, feedback; got 'trainer'")
        assertRejected("steps: {source: feedback}", "steps.source", "feedback needs a feedback.endpoint")
        assertRejected("feedback: {endpoint: 'udp://x:1'}", "feedback.endpoint", "must start with tcp://")
        assertRejected("feedback: {pattern: pub}", "feedback.pattern", "must be one of pull, sub; got 'pub'")
        assertRejected("feedback: {port: 1}", "feedback.port", "unknown key")
        assertRejected("metrics: {listen: '9464'}", "metrics.listen", "must be host:port")
        XCTAssertEqual(try NoisedConfig.parse(yaml: "metrics: {listen: 'localhost:0'}").metrics.listen, "localhost:0")
        assertRejected("metrics: {listen: 'localhost:65536'}", "metrics.listen", "port must be 0...65535, got '65536'")
        assertRejected("metrics: {listen: 'localhost:*'}", "metrics.listen", "port must be 0...65535, got '*'")
        assertRejected("metrics: {listen: ':9464'}", "metrics.listen", "must be host:port")
        assertRejected("security: {curve: {secret_key_file: /k}}", "security.curve.authorized_keys_dir", "missing")
        assertRejected("security: {curve: {secret_key_file: '', authorized_keys_dir: /d}}", "security.curve.secret_key_file",
                       "must not be empty")
        assertRejected("security: {curve: true}", "security.curve", "expected a mapping")
        assertRejected("security: {tls: {}}", "security.tls", "unknown key")
    }

    func testAddressesMustNotCollide() {
        assertRejected("feedback: {endpoint: 'tcp://127.0.0.1:5555'}", "feedback.endpoint", "same address as input.endpoint")
        assertRejected("feedback: {endpoint: 'tcp://127.0.0.1:5556', bind: false}", "feedback.endpoint",
                       "same address as output.endpoint")
        assertRejected("feedback: {endpoint: 'tcp://*:5556'}", "feedback.endpoint",
                       "binds port 5556, which output.endpoint (tcp://127.0.0.1:5556) also binds")
        assertRejected("metrics: {listen: '0.0.0.0:5555'}", "metrics.listen", "binds port 5555, which input.endpoint")
        assertRejected("feedback: {endpoint: 'tcp://127.0.0.1:9464'}", "metrics.listen", "same address as feedback.endpoint")
        assertRejected("output: {endpoint: 'tcp://127.0.0.1:5555'}", "output.endpoint", "same address as input.endpoint")
        XCTAssertNoThrow(try NoisedConfig.parse(yaml: "feedback: {endpoint: 'tcp://10.0.0.2:5555', bind: false}"))
    }
}
