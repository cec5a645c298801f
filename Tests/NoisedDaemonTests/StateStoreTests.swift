import Foundation
import NoisedDaemon
import Schedule
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

    func testFeedbackStepAndLossHistoryRoundTrip() throws {
        let store = StateStore(directory: directory)
        var state = DaemonState()
        state.batches = 7
        state.reportedStep = 41
        var history = LossHistory(bins: 2, history: 3)
        history.record(sigma: 0.25, loss: 0.5, sigmaMin: 0, sigmaMax: 1)
        history.record(sigma: 0.75, loss: 2, sigmaMin: 0, sigmaMax: 1)
        state.lossHistory = history
        try store.save(state)
        XCTAssertEqual(try store.load(), state)
        let text = try String(contentsOfFile: store.path, encoding: .utf8)
        XCTAssertTrue(text.contains("\"reported_step\":41"), text)
        XCTAssertTrue(text.contains("\"loss_history\":{"), text)
    }

    /// A version-1 file from before feedback and adaptive resampling still loads.
    func testStateWithoutTheNewerFieldsStillLoads() throws {
        let store = StateStore(directory: directory)
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        try Data("{\"version\": 1, \"batches\": 1, \"samples\": 2, \"seq\": 3}".utf8).write(to: URL(fileURLWithPath: store.path))
        let state = try store.load()
        XCTAssertEqual(state.batches, 1)
        XCTAssertEqual(state.seq, 3)
        XCTAssertNil(state.reportedStep)
        XCTAssertNil(state.lossHistory)
    }

    func testDamagedLossHistoryIsAnError() throws {
        let store = StateStore(directory: directory)
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let json = #"{"version": 1, "batches": 1, "samples": 2, "seq": 3, "loss_history": {"bins": 2, "history": 1, "losses": [[1]], "report_count": 1}}"#
        try Data(json.utf8).write(to: URL(fileURLWithPath: store.path))
        XCTAssertThrowsError(try store.load()) { error in
            XCTAssertTrue("\(error)".contains("1 bins of losses for 2 bins"), "\(error)")
        }
    }

    func testDamagedFileIsAnErrorNamingThePath() throws {
        let store = StateStore(directory: directory)
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        try Data("{\"version\": 1, \"batches\": ".utf8).write(to: URL(fileURLWithPath: store.path))
        XCTAssertThrowsError(try store.load()) { error in
            XCTAssertTrue("\(error)".contains(store.path), "\(error)")
        }
    }

    func testABadCounterIsNamedByItsKey() throws {
        let store = StateStore(directory: directory)
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        for (json, fragment) in [
            (#"{"version": 1, "batches": -1, "samples": 2, "seq": 3}"#, "batches"),
            (#"{"version": 1, "batches": 1, "samples": "2", "seq": 3}"#, "samples: expected an integer in 0...18446744073709551615"),
            (#"{"version": 1, "batches": 1, "samples": 2}"#, "missing key seq"),
            (#"{"version": 1, "batches": 1, "samples": 2, "seq": 3, "reserved": {"samples": 1, "seq": -4}}"#, "reserved.seq"),
            ("{\"version\": 1,", "not JSON"),
        ] {
            try Data(json.utf8).write(to: URL(fileURLWithPath: store.path))
            XCTAssertThrowsError(try store.load()) { error in
                XCTAssertTrue("\(error)".contains(fragment), "\(error) lacks \(fragment)")
            }
        }
    }

    func testTheReservationRoundTrips() throws {
        let store = StateStore(directory: directory)
        var state = DaemonState()
        state.reserved = Reservation(samples: 1 << 20, seq: 77)
        try store.save(state)
        XCTAssertEqual(try store.load(), state)
        XCTAssertTrue(try String(contentsOfFile: store.path, encoding: .utf8).contains(#""reserved":{"samples":1048576,"seq":77}"#))
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
