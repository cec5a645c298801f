import Configuration
import Foundation
import NoisedRuntime
import XCTest

final class ConfigFileTests: XCTestCase {
    private var directory: URL!

    override func setUpWithError() throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("noised-config-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: directory) }

    private func write(_ name: String, _ bytes: [UInt8]) -> String {
        let path = directory.appendingPathComponent(name).path
        XCTAssertTrue(FileManager.default.createFile(atPath: path, contents: Data(bytes)))
        return path
    }

    private func problem(_ path: String) -> String {
        do { _ = try ConfigFile.load(path); return "accepted" } catch { return "\(error)" }
    }

    func testTheShippedFileLoadsToTheDefaults() throws {
        let shipped = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("config/noised.yaml").path
        XCTAssertEqual(try ConfigFile.load(shipped), NoisedConfig())
    }

    func testFileProblemsNameThePath() {
        let missing = directory.appendingPathComponent("absent.yaml").path
        XCTAssertEqual(problem(missing), "\(missing): does not exist")
        let binary = write("binary.yaml", [0xFF, 0xFE, 0x00])
        XCTAssertEqual(problem(binary), "\(binary): is not UTF-8 text")
        let large = write("large.yaml", Array(("# " + String(repeating: "x", count: 1 << 20) + "\n").utf8))
        XCTAssertEqual(problem(large), "\(large): larger than the 1 MiB limit for a config")
    }

    func testSchemaProblemsNameThePathAndTheKey() throws {
        let path = write("bad.yaml", Array("input: {max_batch: 0}\n".utf8))
        XCTAssertThrowsError(try ConfigFile.load(path)) { error in
            let config = error as? ConfigError
            XCTAssertEqual(config?.keyPath, "input.max_batch")
            XCTAssertEqual(config?.file, path)
            XCTAssertTrue("\(error)".hasPrefix("\(path): input.max_batch: "), "\(error)")
        }
    }
}
