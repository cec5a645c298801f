import Configuration
import NoisedProtocol
import Schedule
import XCTest

/// `outputs` and `fanout`: several outputs fed from one input.
final class OutputsTests: XCTestCase {
    private let two = """
        output: {dtype: f16, include_clean: true, high_water_mark: 8}
        steps: {batches_per_step: 4}
        state_dir: /var/lib/noised
        outputs:
          - name: high_noise
            endpoint: tcp://127.0.0.1:5556
            schedule: {sigma_min: 0.875, sigma_max: 1.0}
          - name: low_noise
            endpoint: tcp://127.0.0.1:5558
            dtype: bf16
            steps: {batches_per_step: 2}
            feedback: {endpoint: tcp://127.0.0.1:5560}
            schedule: {sigma_min: 0.0, sigma_max: 0.875, frames: {axis: 2}}
        """

    func testEachOutputTakesWhatItLeavesOutFromTheTopLevelSections() throws {
        let config = try NoisedConfig.parse(yaml: two)
        XCTAssertEqual(config.fanout, .copy)
        XCTAssertEqual(config.outputs.map(\.name), ["high_noise", "low_noise"])
        let (high, low) = (config.outputs[0], config.outputs[1])
        XCTAssertEqual(high.output.endpoint, "tcp://127.0.0.1:5556")
        XCTAssertEqual(high.output.dtype.rawValue, "f16")
        XCTAssertEqual(low.output.dtype.rawValue, "bf16")
        XCTAssertTrue(high.output.includeClean && low.output.includeClean)
        XCTAssertEqual(high.output.highWaterMark, 8)
        XCTAssertEqual(high.steps.batchesPerStep, 4)
        XCTAssertEqual(low.steps.batchesPerStep, 2)
        XCTAssertNil(high.feedback.endpoint)
        XCTAssertEqual(low.feedback.endpoint, "tcp://127.0.0.1:5560")
        XCTAssertEqual(high.schedule.sigmaMin, 0.875)
        XCTAssertEqual(low.schedule.sigmaMax, 0.875)
        XCTAssertNil(high.frames)
        XCTAssertEqual(low.frames?.axis, 2)
        XCTAssertEqual([high.whenFull, low.whenFull], [.block, .block])

        let derived = config.config(ofOutput: 1)
        XCTAssertTrue(derived.outputs.isEmpty)
        XCTAssertEqual(derived.output, low.output)
        XCTAssertEqual(derived.schedule, low.schedule)
        XCTAssertEqual(derived.frames, low.frames)
        XCTAssertEqual(derived.feedback, low.feedback)
        XCTAssertEqual(derived.stateDir, "/var/lib/noised/low_noise")
        XCTAssertEqual(derived.seed, config.seed)
        XCTAssertEqual(derived.input, config.input)
    }

    func testAnOutputWithoutAScheduleUsesTheTopLevelOne() throws {
        let config = try NoisedConfig.parse(yaml: """
            schedule: {sigma_min: 0.1, sigma_max: 0.9, stratified: true}
            fanout: split
            outputs:
              - {name: a, endpoint: 'ipc:///tmp/a', weight: 3}
              - {name: b, endpoint: 'ipc:///tmp/b'}
            """)
        XCTAssertEqual(config.fanout, .split)
        XCTAssertEqual(config.outputs.map(\.weight), [3, 1])
        XCTAssertEqual(config.outputs[1].schedule, config.schedule)
        XCTAssertTrue(config.outputs[1].stratified)
    }

    func testWithoutOutputsNothingChanges() throws {
        XCTAssertEqual(try NoisedConfig.parse(yaml: "output: {endpoint: 'tcp://127.0.0.1:7000'}").outputs, [])
        XCTAssertEqual(try NoisedConfig.parse(yaml: "outputs: null").outputs, [])
    }

    func testBadOutputsAreRejectedNamingTheKey() {
        let entry = "{name: a, endpoint: 'ipc:///tmp/a'}"
        assertRejected("fanout: copy", "fanout", "needs an outputs list")
        assertRejected("fanout: broadcast\noutputs: [\(entry)]", "fanout", "must be one of copy, split; got 'broadcast'")
        assertRejected("outputs: []", "outputs", "at least one output")
        assertRejected("outputs: [{endpoint: 'ipc:///tmp/a'}]", "outputs[0].name", "missing")
        assertRejected("outputs: [{name: a}]", "outputs[0].endpoint", "missing")
        assertRejected("outputs: [{name: 'a b', endpoint: 'ipc:///tmp/a'}]", "outputs[0].name", "letters, digits")
        assertRejected("outputs: [{name: ../x, endpoint: 'ipc:///tmp/a'}]", "outputs[0].name", "got '../x'")
        assertRejected("outputs: [{name: a, endpoint: 'udp://x'}]", "outputs[0].endpoint", "must start with tcp://")
        assertRejected("outputs: [\(entry), {name: a, endpoint: 'ipc:///tmp/b'}]", "outputs[1].name", "names another output")
        assertRejected("outputs: [\(entry), {name: b, endpoint: 'ipc:///tmp/a'}]", "outputs[1].endpoint",
                       "is the same address as outputs[0].endpoint")
        assertRejected("outputs: [{name: a, endpoint: 'ipc:///tmp/a', colour: red}]", "outputs[0].colour", "unknown key")
        assertRejected("outputs: [{name: a, endpoint: 'ipc:///tmp/a', weight: 2}]", "outputs[0].weight", "fanout: split only")
        assertRejected("fanout: split\noutputs: [{name: a, endpoint: 'ipc:///tmp/a', weight: 0}]", "outputs[0].weight", "must be > 0")
        assertRejected("fanout: split\noutputs: [{name: a, endpoint: 'ipc:///tmp/a', when_full: drop}]", "outputs[0].when_full",
                       "fanout: copy only")
        assertRejected("outputs: [{name: a, endpoint: 'ipc:///tmp/a', when_full: drop}]", "outputs", "at least one output must keep when_full: block")
        assertRejected("outputs: [{name: a, endpoint: 'ipc:///tmp/a', when_full: later}]", "outputs[0].when_full", "must be one of block, drop")
        assertRejected("outputs: [{name: a, endpoint: 'ipc:///tmp/a', schedule: {sigma_min: 2}}]", "outputs[0].schedule.sigma_min", "got 2.0")
        assertRejected("outputs: [{name: a, endpoint: 'ipc:///tmp/a', steps: {source: feedback}}]", "outputs[0].steps.source",
                       "this output's feedback.endpoint")
        assertRejected("feedback: {endpoint: 'ipc:///tmp/f'}\noutputs: [\(entry)]", "feedback.endpoint", "outputs[i].feedback")
        assertRejected("outputs: [{name: a, endpoint: 'ipc:///tmp/a', feedback: {endpoint: 'ipc:///tmp/a'}}]",
                       "outputs[0].feedback.endpoint", "same address as outputs[0].endpoint")
        assertRejected("input: {endpoint: 'ipc:///tmp/a'}\noutputs: [\(entry)]", "outputs[0].endpoint", "same address as input.endpoint")
        let seventeen = (0...16).map { "{name: o\($0), endpoint: 'ipc:///tmp/o\($0)'}" }.joined(separator: ", ")
        assertRejected("outputs: [\(seventeen)]", "outputs", "at most 16")
    }

    func testOutputNoiseIDsDifferInTheTopBitsOnly() {
        XCTAssertEqual(WireNames.noiseID(42, ofOutput: 0), 42)
        XCTAssertEqual(WireNames.noiseID(42, ofOutput: 1), 42 | 1 << 60)
        XCTAssertEqual(WireNames.noiseID(42, ofOutput: 15), 42 | 15 << 60)
    }
}
