import Foundation
import XCTest
import Configuration

/// Bad values and unknown keys are errors that name the key path.
final class RejectionTests: XCTestCase {
    func testBadTopLevelValues() {
        assertRejected("seed: -1", "seed", "expected an integer in 0...18446744073709551615, got '-1'")
        assertRejected("seed: 18446744073709551616", "seed", "got '18446744073709551616'")
        assertRejected("seed: abc", "seed", "got 'abc'")
        assertRejected("instance: 65536", "instance", "must be in 0...65535, got 65536")
        assertRejected("instance: -1", "instance", "must be in 0...65535, got -1")
        assertRejected("workers: 0", "workers", "must be in 1...256, got 0")
        assertRejected("workers: 257", "workers", "must be in 1...256, got 257")
        assertRejected("workers: 2.5", "workers", "expected an integer, got '2.5'")
        assertRejected("workers: [2]", "workers", "expected an integer, got a list")
        assertRejected("log_level: verbose", "log_level", "must be one of trace, debug, info, notice, warning, error, critical; got 'verbose'")
        assertRejected("state_dir: ''", "state_dir", "must be a directory path, or null")
        assertRejected("input: 5", "input", "expected a mapping")
    }

    func testBadInputAndOutputValues() {
        assertRejected("input: {endpoint: 'udp://1.2.3.4:5'}", "input.endpoint", "must start with tcp://, ipc:// or inproc://")
        assertRejected("input: {endpoint: 'tcp://'}", "input.endpoint", "needs an address after tcp://")
        assertRejected("input: {endpoint: 'tcp://localhost'}", "input.endpoint", "must be tcp://host:port")
        assertRejected("input: {endpoint: 'tcp://localhost:0'}", "input.endpoint", "port must be 1...65535 or *, got '0'")
        assertRejected("input: {endpoint: 'tcp://localhost:70000'}", "input.endpoint", "got '70000'")
        assertRejected("input: {endpoint: 'ipc://a b'}", "input.endpoint", "whitespace")
        assertRejected("input: {bind: maybe}", "input.bind", "expected true or false, got 'maybe'")
        assertRejected("input: {tensor: ''}", "input.tensor", "must not be empty")
        assertRejected("input: {high_water_mark: 0}", "input.high_water_mark", "must be in 1...2147483647, got 0")
        assertRejected("input: {max_message_bytes: 1023}", "input.max_message_bytes", "must be >= 1024, got 1023")
        assertRejected("input: {max_batch: 0}", "input.max_batch", "got 0")
        assertRejected("input: {max_batch: 1048577}", "input.max_batch", "got 1048577")
        assertRejected("input: {reject_nonfinite: 1.5}", "input.reject_nonfinite", "expected true or false")
        assertRejected("output: {endpoint: 'inproc://'}", "output.endpoint", "needs an address")
        assertRejected("output: {high_water_mark: -3}", "output.high_water_mark", "got -3")
        assertRejected("output: {dtype: f64}", "output.dtype", "must be one of input, f32, f16, bf16; got 'f64'")
        assertRejected("output: {include_clean: null}", "output.include_clean", "expected true or false, got null")
    }

    func testEndpointsMustNotCollide() {
        assertRejected("output: {endpoint: 'tcp://127.0.0.1:5555'}", "output.endpoint", "same address as input.endpoint")
        assertRejected("input: {endpoint: 'ipc:///tmp/x'}\noutput: {endpoint: 'ipc:///tmp/x', bind: false}",
                       "output.endpoint", "same address")
        assertRejected("output: {endpoint: 'tcp://127.0.0.1:5554'}", "output.endpoint", "same address as input.acked_endpoint")
        assertRejected("input: {acked_endpoint: 'tcp://127.0.0.1:5555'}", "input.acked_endpoint", "same address as input.endpoint")
        assertRejected("input: {acked_endpoint: 'udp://x:1'}", "input.acked_endpoint", "must start with tcp://")
        assertRejected("input: {endpoint: 'tcp://*:6000'}\noutput: {endpoint: 'tcp://127.0.0.1:6000'}",
                       "output.endpoint", "binds port 6000, which input.endpoint (tcp://*:6000) also binds")
    }

    func testBadStepsShutdownAndSchedule() {
        assertRejected("steps: {batches_per_step: 0}", "steps.batches_per_step", "must be >= 1, got 0")
        assertRejected("shutdown: {drain_seconds: 0}", "shutdown.drain_seconds", "must be > 0 and finite, got 0.0")
        assertRejected("shutdown: {drain_seconds: .inf}", "shutdown.drain_seconds", "must be > 0 and finite")
        assertRejected("shutdown: {drain_seconds: soon}", "shutdown.drain_seconds", "expected a number, got 'soon'")
        assertRejected("schedule: {sigma_min: -0.5}", "schedule.sigma_min", "must be in [0, 1], got -0.5")
        assertRejected("schedule: {sigma_max: 2}", "schedule.sigma_max", "must be in [0, 1], got 2.0")
        assertRejected("schedule: {sigma_min: 0.7, sigma_max: 0.6}", "schedule.sigma_max", "must be >= sigma_min (0.7)")
        assertRejected("schedule: {interpolation: step}", "schedule.interpolation", "must be one of linear, cosine, hold; got 'step'")
        assertRejected("schedule: {curriculum: []}", "schedule.curriculum", "at least one keyframe")
        assertRejected("schedule: {curriculum: {at_step: 0}}", "schedule.curriculum", "expected a list of keyframes, got a mapping")
        assertRejected("schedule: {curriculum: [5]}", "schedule.curriculum[0]", "expected a mapping")
    }

    func testBadKeyframes() {
        func curriculum(_ entries: String...) -> String {
            "schedule:\n  curriculum:\n" + entries.map { "    - \($0)\n" }.joined()
        }
        assertRejected(curriculum("{at_step: 0, distribution: uniform}", "{at_step: 10, distribution: logit_normal, std: -1}"),
                       "schedule.curriculum[1].std", "must be > 0 and finite, got -1.0")
        assertRejected(curriculum("{at_step: 0, distribution: logit_normal, mean: .nan}"),
                       "schedule.curriculum[0].mean", "must be finite")
        assertRejected(curriculum("{at_step: 0, distribution: logit_normal, mean: big}"),
                       "schedule.curriculum[0].mean", "expected a number, got 'big'")
        assertRejected(curriculum("{at_step: 10, distribution: uniform}", "{at_step: 10, distribution: uniform}"),
                       "schedule.curriculum[1].at_step", "greater than the previous keyframe's at_step (10), got 10")
        assertRejected(curriculum("{at_step: -5, distribution: uniform}"), "schedule.curriculum[0].at_step", "must be >= 0, got -5")
        assertRejected(curriculum("{at_step: 1.5, distribution: uniform}"), "schedule.curriculum[0].at_step", "expected an integer")
        assertRejected(curriculum("{distribution: uniform}"), "schedule.curriculum[0].at_step", "missing")
        assertRejected(curriculum("{at_step: 0}"), "schedule.curriculum[0].distribution", "missing; expected one of uniform, logit_normal")
        assertRejected(curriculum("{at_step: 0, distribution: gamma}"), "schedule.curriculum[0].distribution",
                       "must be one of uniform, logit_normal, mode, cosmap, beta, discrete, mixture; got 'gamma'")
    }

    func testUnknownKeysAtEveryLevel() {
        assertRejected("seeds: 1", "seeds", "unknown key")
        assertRejected("input: {hwm: 4}", "input.hwm", "unknown key (expected one of: endpoint, acked_endpoint, bind, tensor,")
        assertRejected("output: {tensor: x}", "output.tensor", "unknown key")
        assertRejected("steps: {per_step: 2}", "steps.per_step", "unknown key")
        assertRejected("shutdown: {timeout: 2}", "shutdown.timeout", "unknown key")
        assertRejected("schedule: {sigma: 0.5}", "schedule.sigma", "unknown key")
        assertRejected("schedule:\n  curriculum:\n    - {at_step: 0, distribution: uniform}\n    - {at_step: 5, distribution: uniform, speed: 1}",
                       "schedule.curriculum[1].speed", "unknown key (expected one of: at_step, shift, distribution)")
        // A parameter of another distribution is unknown for this one.
        assertRejected("schedule:\n  curriculum:\n    - {at_step: 0, distribution: uniform, mean: 0.5}",
                       "schedule.curriculum[0].mean", "unknown key (expected one of: at_step, shift, distribution)")
        assertRejected("schedule:\n  curriculum:\n    - {at_step: 0, distribution: logit_normal, scale: 2}",
                       "schedule.curriculum[0].scale", "unknown key (expected one of: at_step, shift, distribution, mean, std)")
    }

    /// Mixtures nested through anchors: 835 bytes standing for 10^7 leaf components, which
    /// check-config once decoded for minutes. Refused while the aliases are being counted.
    func testNestedMixtureAliasBombIsRefused() {
        var yaml = """
            schedule:
              curriculum:
                - at_step: 0
                  distribution: mixture
                  components:
                    - &a0 {distribution: uniform}

            """
        for level in 1...7 {
            let anchor = level < 7 ? "&a\(level) " : ""
            yaml += "        - \(anchor){distribution: mixture, components: ["
                + Array(repeating: "*a\(level - 1)", count: 10).joined(separator: ", ") + "]}\n"
        }
        XCTAssertLessThan(yaml.utf8.count, 1000)
        assertRejected(yaml, "schedule.curriculum[0].components[5].components[1].components[7].components[0].components[0].components[6].distribution",
                       "expands to more than 100000 YAML nodes")
    }

    func testPlainAliasBombIsRefused() {
        var yaml = "a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n"
        for level in 1...8 {
            yaml += "a\(level): &a\(level) [" + Array(repeating: "*a\(level - 1)", count: 10).joined(separator: ", ") + "]\n"
        }
        assertRejected(yaml, "a4[7][8][8][8][4]", "expands to more than 100000 YAML nodes")
    }

    func testNestingAndComponentsAreBounded() {
        assertRejected(String(repeating: "[", count: 40) + String(repeating: "]", count: 40),
                       String(repeating: "[0]", count: 32), "nested deeper than 32 levels")
        // Nine mixtures deep, written out: the ninth level is refused.
        var nest = "{distribution: uniform}"
        for _ in 1...9 { nest = "{distribution: mixture, components: [\(nest)]}" }
        let keyframe = "schedule: {curriculum: [{at_step: 0, " + nest.dropFirst().dropLast() + "}]}"
        assertRejected(keyframe, "schedule.curriculum[0]" + String(repeating: ".components[0]", count: 8) + ".components",
                       "mixtures nest at most 8 deep")
        let wide = (0..<65).map { _ in "{distribution: uniform}" }.joined(separator: ", ")
        assertRejected("schedule: {curriculum: [{at_step: 0, distribution: mixture, components: [\(wide)]}]}",
                       "schedule.curriculum[0].components", "65 components")
        let nested = "{distribution: mixture, components: [" + (0..<33).map { _ in "{distribution: uniform}" }.joined(separator: ", ") + "]}"
        assertRejected("schedule: {curriculum: [{at_step: 0, distribution: mixture, components: [\(nested), \(nested)]}]}",
                       "schedule.curriculum[0].components", "66 components (nested mixtures counted by their own)")
        let sixtyFour = (0..<64).map { _ in "{distribution: uniform}" }.joined(separator: ", ")
        XCTAssertNoThrow(try NoisedConfig.parse(yaml: "schedule: {curriculum: [{at_step: 0, distribution: mixture, components: [\(sixtyFour)]}]}"))
    }

    func testLargeFilesAreRefused() throws {
        let large = "# " + String(repeating: "x", count: 1 << 20) + "\n"
        XCTAssertThrowsError(try NoisedConfig.parse(yaml: large)) { error in
            XCTAssertEqual("\(error)", "larger than the 1 MiB limit for a config")
        }
        XCTAssertNoThrow(try NoisedConfig.parse(yaml: "# " + String(repeating: "x", count: (1 << 20) - 3) + "\n"))
    }
}
