import Foundation
import NoisedDaemon
import XCTest

final class StateStoreTests: XCTestCase {
    private var directory: String!

    override func setUpWithError() throws {
        directory = NSTemporaryDirectory() + "noised-state-\(UUID().uuidString)"
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(atPath: directory)
    }

    func testMissingFileGivesFreshState() throws {
        XCTAssertEqual(try StateStore(directory: directory).load(), DaemonState())
    }

    func testSaveThenLoadRoundTrips() throws {
        let store = StateStore(directory: directory + "/nested")
        var state = DaemonState()
        state.batches = 12_345
        state.samples = 1 << 40
        state.seq = 99
        try store.save(state)
        XCTAssertEqual(try store.load(), state)
        XCTAssertFalse(FileManager.default.fileExists(atPath: store.path + ".tmp"), "the temp file is renamed away")
        state.seq = 100
        try store.save(state)
        XCTAssertEqual(try store.load().seq, 100)
    }

    func testDamagedFileIsAnErrorNamingThePath() throws {
        let store = StateStore(directory: directory)
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        try Data("{\"version\": 1, \"batches\": ".utf8).write(to: URL(fileURLWithPath: store.path))
        XCTAssertThrowsError(try store.load()) { error in
            XCTAssertTrue("\(error)".contains(store.path), "\(error)")
        }
    }

    func testUnknownVersionIsRejected() throws {
        let store = StateStore(directory: directory)
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        try Data("{\"version\": 2, \"batches\": 1, \"samples\": 2, \"seq\": 3}".utf8).write(to: URL(fileURLWithPath: store.path))
        XCTAssertThrowsError(try store.load()) { error in
            XCTAssertTrue("\(error)".contains("version 2"), "\(error)")
        }
    }

    func testStepDividesBatches() {
        var state = DaemonState()
        state.batches = 10
        XCTAssertEqual(state.step(batchesPerStep: 1), 10)
        XCTAssertEqual(state.step(batchesPerStep: 4), 2)
        XCTAssertEqual(state.step(batchesPerStep: 11), 0)
    }
}
