import Foundation
import Schedule
import XCTest
import Yams
import Configuration

final class DefaultsTests: XCTestCase {
    private static let repository = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    private func repositoryFile(_ path: String) throws -> String {
        try String(contentsOf: Self.repository.appendingPathComponent(path), encoding: .utf8)
    }

    func testDocumentedDefaults() throws {
        let config = NoisedConfig()
        XCTAssertEqual(config.seed, 0)
        XCTAssertEqual(config.instance, 0)
        XCTAssertEqual(config.workers, 2)
        XCTAssertEqual(config.logLevel, .info)
        XCTAssertEqual(config.stateDir, "/var/lib/noised")
        XCTAssertEqual(config.input.endpoint, "tcp://127.0.0.1:5555")
        XCTAssertEqual(config.input.ackedEndpoint, "tcp://127.0.0.1:5554")
        XCTAssertTrue(config.input.bind)
        XCTAssertEqual(config.input.tensor, "latents")
        XCTAssertEqual(config.input.highWaterMark, 16)
        XCTAssertEqual(config.input.maxMessageBytes, 1_073_741_824)
        XCTAssertEqual(config.input.maxBatch, 4096)
        XCTAssertTrue(config.input.rejectNonfinite)
        XCTAssertEqual(config.output.endpoint, "tcp://127.0.0.1:5556")
        XCTAssertTrue(config.output.bind)
        XCTAssertEqual(config.output.highWaterMark, 16)
        XCTAssertEqual(config.output.dtype, .input)
        XCTAssertFalse(config.output.includeClean)
        XCTAssertEqual(config.steps.batchesPerStep, 1)
        XCTAssertEqual(config.shutdown.drainSeconds, 10)
        XCTAssertEqual(config.schedule, try SigmaSchedule(
            sigmaMin: 0, sigmaMax: 1, interpolation: .linear,
            keyframes: [Keyframe(atStep: 0, distribution: .logitNormal(mean: 1, std: 1)),
                        Keyframe(atStep: 1000, distribution: .logitNormal(mean: 0, std: 1))]))
        XCTAssertEqual(NoisedConfig.defaultPath, "/etc/noised/noised.yaml")
    }

    func testEmptyDocumentsGiveDefaults() throws {
        for yaml in ["", "\n", "# only a comment\n", "{}", "input:\nschedule:\n"] {
            XCTAssertEqual(try NoisedConfig.parse(yaml: yaml), NoisedConfig(), "document: \(yaml.debugDescription)")
        }
    }

    func testShippedConfigEqualsDefaults() throws {
        XCTAssertEqual(try NoisedConfig.parse(yaml: try repositoryFile("config/noised.yaml")), NoisedConfig())
    }

    /// Every key path in config/noised.yaml, with curriculum entries as `schedule.curriculum[].key`.
    private func keyPaths(_ node: Node, prefix: String = "") -> Set<String> {
        switch node {
        case let .mapping(mapping):
            return mapping.reduce(into: Set<String>()) { paths, pair in
                let path = prefix.isEmpty ? pair.key.string ?? "" : "\(prefix).\(pair.key.string ?? "")"
                paths.insert(path)
                paths.formUnion(keyPaths(pair.value, prefix: path))
            }
        case let .sequence(sequence):
            return sequence.reduce(into: Set<String>()) { $0.formUnion(keyPaths($1, prefix: prefix + "[]")) }
        default:
            return []
        }
    }

    /// Every key the shipped file sets is documented, and every documented key appears in the
    /// shipped file (set, or spelled out in its comments).
    func testReferencePageAndShippedFileAgree() throws {
        let yaml = try repositoryFile("config/noised.yaml")
        guard let node = try Yams.compose(yaml: yaml) else { return XCTFail("config/noised.yaml is empty") }
        // Reference rows start with a backticked key path: | `input.endpoint` | ...
        let documented = Set(try repositoryFile("docs/configuration.md").split(separator: "\n").compactMap { line -> String? in
            guard line.hasPrefix("| `") else { return nil }
            return line.dropFirst(3).prefix { $0 != "`" }.description
        })
        XCTAssertEqual(keyPaths(node).subtracting(documented), [], "keys in config/noised.yaml missing from docs/configuration.md")
        for path in documented {
            let name = path.split(separator: ".").last.map { $0.replacingOccurrences(of: "[]", with: "") } ?? path
            XCTAssertNotNil(yaml.range(of: "\\b\(name):", options: .regularExpression),
                            "documented key \(path) does not appear in config/noised.yaml")
        }
    }
}
