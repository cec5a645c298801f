import Configuration
import XCTest

/// Fails unless `yaml` is rejected at `keyPath` with a message containing `messageFragment`, and the
/// error reads `keyPath: message`.
func assertRejected(_ yaml: String, _ keyPath: String, _ messageFragment: String,
                    file: StaticString = #filePath, line: UInt = #line) {
    do {
        _ = try NoisedConfig.parse(yaml: yaml)
        XCTFail("accepted \(yaml.debugDescription); expected \(keyPath) to be rejected", file: file, line: line)
    } catch {
        XCTAssertEqual(error.keyPath, keyPath, "\(error)", file: file, line: line)
        XCTAssertTrue(error.message.contains(messageFragment),
                      "\(error) does not mention \(messageFragment.debugDescription)", file: file, line: line)
        XCTAssertEqual(error.description, "\(keyPath): \(error.message)", file: file, line: line)
    }
}
