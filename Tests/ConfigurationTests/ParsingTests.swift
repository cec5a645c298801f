import Foundation
import Schedule
import XCTest
import Configuration

final class ParsingTests: XCTestCase {
    func testEveryKeyOverridden() throws {
        let config = try NoisedConfig.parse(yaml: """
            seed: 18446744073709551615
            instance: 65535
            workers: 8
            log_level: debug
            state_dir: /tmp/noised-state
            input:
              endpoint: ipc:///run/noised/in.sock
              bind: false
              tensor: z
              high_water_mark: 4
              max_message_bytes: 2048
              max_batch: 64
              reject_nonfinite: false
            output:
              endpoint: inproc://out
              bind: false
              high_water_mark: 64
              dtype: bf16
              include_clean: true
            steps:
              batches_per_step: 4
            shutdown:
              drain_seconds: 2.5
            schedule:
              sigma_min: 0.1
              sigma_max: 0.9
              interpolation: cosine
              curriculum:
                - {at_step: 100, distribution: uniform}
                - at_step: 200
                  distribution: logit_normal
                  std: 0.5
            """)
        XCTAssertEqual(config.seed, UInt64.max)
        XCTAssertEqual(config.instance, 65535)
        XCTAssertEqual(config.workers, 8)
        XCTAssertEqual(config.logLevel, .debug)
        XCTAssertEqual(config.stateDir, "/tmp/noised-state")
        XCTAssertEqual(config.input.endpoint, "ipc:///run/noised/in.sock")
        XCTAssertFalse(config.input.bind)
        XCTAssertEqual(config.input.tensor, "z")
        XCTAssertEqual(config.input.highWaterMark, 4)
        XCTAssertEqual(config.input.maxMessageBytes, 2048)
        XCTAssertEqual(config.input.maxBatch, 64)
        XCTAssertFalse(config.input.rejectNonfinite)
        XCTAssertEqual(config.output.endpoint, "inproc://out")
        XCTAssertFalse(config.output.bind)
        XCTAssertEqual(config.output.highWaterMark, 64)
        XCTAssertEqual(config.output.dtype, .fixed(.bf16))
        XCTAssertTrue(config.output.includeClean)
        XCTAssertEqual(config.steps.batchesPerStep, 4)
        XCTAssertEqual(config.shutdown.drainSeconds, 2.5)
        XCTAssertEqual(config.schedule, try SigmaSchedule(
            sigmaMin: 0.1, sigmaMax: 0.9, interpolation: .cosine,
            keyframes: [Keyframe(atStep: 100, distribution: .uniform),
                        Keyframe(atStep: 200, distribution: .logitNormal(mean: 0, std: 0.5))]))
    }

    func testPartialSectionsKeepTheOtherDefaults() throws {
        let config = try NoisedConfig.parse(yaml: "input:\n  tensor: x\nschedule:\n  sigma_max: 0.5\n")
        var expected = NoisedConfig()
        expected.input.tensor = "x"
        expected.schedule = try SigmaSchedule(sigmaMin: 0, sigmaMax: 0.5, interpolation: expected.schedule.interpolation,
                                              keyframes: expected.schedule.keyframes)
        XCTAssertEqual(config, expected)
    }

    func testNullStateDirDisablesPersistence() throws {
        XCTAssertNil(try NoisedConfig.parse(yaml: "state_dir: null").stateDir)
        XCTAssertNil(try NoisedConfig.parse(yaml: "state_dir: ~").stateDir)
    }

    func testEndpointsAccepted() throws {
        for endpoint in ["tcp://*:7000", "tcp://[::1]:7000", "tcp://eth0:7000", "tcp://127.0.0.1:*", "ipc://@abstract"] {
            XCTAssertEqual(try NoisedConfig.parse(yaml: "input: {endpoint: '\(endpoint)'}").input.endpoint, endpoint)
        }
        // Binding one port on all interfaces and connecting to it elsewhere is fine.
        XCTAssertNoThrow(try NoisedConfig.parse(yaml: """
            input: {endpoint: 'tcp://*:7000'}
            output: {endpoint: 'tcp://10.0.0.2:7000', bind: false}
            """))
    }

    func testDocumentErrors() {
        for yaml in ["seed: [1,\n", "a: b\n  c: d\n", "seed: 1\nseed: 2\n"] {
            XCTAssertThrowsError(try NoisedConfig.parse(yaml: yaml)) { error in
                XCTAssertEqual((error as? ConfigError)?.keyPath, "", "\(error)")
                XCTAssertTrue((error as? ConfigError)?.message.hasPrefix("invalid YAML") ?? false, "\(error)")
            }
        }
        XCTAssertThrowsError(try NoisedConfig.parse(yaml: "- 1\n- 2\n")) { error in
            XCTAssertTrue((error as? ConfigError)?.message.hasPrefix("expected a mapping") ?? false, "\(error)")
        }
    }
}
