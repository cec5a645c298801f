import Foundation
import Logging
import NoisedDaemon
import XCTest

final class IDLedgerTests: XCTestCase {
    private var directory: String!
    private let logger = Logger(label: "test") { _ in SwiftLogNoOpLogHandler() }

    override func setUpWithError() throws {
        directory = NSTemporaryDirectory() + "noised-ledger-\(UUID().uuidString)"
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(atPath: directory)
    }

    func testAReservationCoversABatchAndReachesABlockAhead() {
        var state = DaemonState()
        XCTAssertFalse(state.isReserved(forBatchOf: 1), "nothing is reserved in a fresh state")
        state = state.reservingAhead(forBatchOf: 100)
        XCTAssertEqual(state.reserved, Reservation(samples: Reservation.sampleBlock, seq: Reservation.seqBlock))
        XCTAssertTrue(state.isReserved(forBatchOf: 100))
        state.samples = Reservation.sampleBlock - 100
        XCTAssertTrue(state.isReserved(forBatchOf: 100), "exactly one batch left")
        XCTAssertFalse(state.isReserved(forBatchOf: 101))
        state.samples = 0
        state.seq = Reservation.seqBlock
        XCTAssertFalse(state.isReserved(forBatchOf: 1), "every reserved seq is used")
        // A batch limit over a quarter block reserves four batches.
        XCTAssertEqual(DaemonState().reservingAhead(forBatchOf: 1 << 15).reserved?.samples, 1 << 17)
    }

    func testResumingSkipsWhatAnUncleanStopLeftReservedAndACleanStopSkipsNothing() {
        var state = DaemonState().reservingAhead(forBatchOf: 10)
        state.samples = 123
        state.seq = 45
        let crashed = state.resumed
        XCTAssertEqual([crashed.samples, crashed.seq], [Reservation.sampleBlock, Reservation.seqBlock])
        let clean = state.released.resumed
        XCTAssertEqual([clean.samples, clean.seq], [123, 45])
        XCTAssertEqual(DaemonState().resumed, DaemonState(), "a file without a reservation resumes as written")
    }

    func testTheFirstReservationIsOnDiskBeforeAnyIDIsHandedOut() throws {
        let ledger = try IDLedger(store: StateStore(directory: directory), maxBatch: 8, logger: logger)
        XCTAssertEqual(try StateStore(directory: directory).load().reserved?.samples, Reservation.sampleBlock)
        XCTAssertTrue(ledger.reserve())
        // Hand out ids as the pipeline does, then "crash": drop the ledger without releasing.
        for _ in 0..<3 {
            XCTAssertTrue(ledger.reserve())
            ledger.state.samples += 8
            ledger.state.seq += 1
        }
        let restarted = try IDLedger(store: StateStore(directory: directory), maxBatch: 8, logger: logger)
        XCTAssertGreaterThanOrEqual(restarted.state.samples, Reservation.sampleBlock)
        XCTAssertGreaterThanOrEqual(restarted.state.seq, Reservation.seqBlock)
        XCTAssertEqual(restarted.state.reserved?.samples, 2 * Reservation.sampleBlock, "the restart reserved anew first")
    }

    func testReservationsFollowUseAndAReleaseLeavesNoGap() throws {
        let ledger = try IDLedger(store: StateStore(directory: directory), maxBatch: 4096, logger: logger)
        var writes = 0
        for _ in 0..<100 {
            let before = ledger.state.reserved
            XCTAssertTrue(ledger.reserve())
            if ledger.state.reserved != before { writes += 1 }
            XCTAssertLessThanOrEqual(ledger.state.samples + 4096, ledger.state.reserved!.samples)
            ledger.state.samples += 4096
            ledger.state.seq += 1
        }
        // 100 batches of 4096 samples use 409,600 ids: six more blocks of 65,536.
        XCTAssertEqual(writes, 6)
        ledger.release()
        let restarted = try IDLedger(store: StateStore(directory: directory), maxBatch: 4096, logger: logger)
        XCTAssertEqual([restarted.state.samples, restarted.state.seq], [409_600, 100])
    }

    func testAStateDirectoryThatCannotBeWrittenFailsTheStartNamingIt() throws {
        _ = FileManager.default.createFile(atPath: directory, contents: Data("not a directory".utf8))
        XCTAssertThrowsError(try IDLedger(store: StateStore(directory: directory + "/state"), maxBatch: 1, logger: logger)) { error in
            let text = "\(error)"
            XCTAssertTrue(text.contains(directory! + "/state") && text.contains("state_dir cannot be written"), text)
        }
    }

    func testAStateDirectoryThatFailsLaterStopsIDsUntilItWorksAgain() throws {
        var failures = 0
        let ledger = try IDLedger(store: StateStore(directory: directory), maxBatch: 1 << 14, logger: logger) { _ in failures += 1 }
        ledger.state.samples = Reservation.sampleBlock  // the first reservation is used up
        let moved = directory + ".moved"
        try FileManager.default.moveItem(atPath: directory, toPath: moved)
        _ = FileManager.default.createFile(atPath: directory, contents: Data())
        XCTAssertFalse(ledger.reserve())
        XCTAssertFalse(ledger.reserve(), "it retries, and fails again")
        XCTAssertEqual(failures, 2)
        XCTAssertTrue(ledger.problem?.contains("state_dir \(directory!) cannot be written") ?? false, "\(ledger.problem ?? "nil")")
        try FileManager.default.removeItem(atPath: directory)
        try FileManager.default.moveItem(atPath: moved, toPath: directory)
        XCTAssertTrue(ledger.reserve())
        XCTAssertNil(ledger.problem)
        XCTAssertEqual(try StateStore(directory: directory).load().reserved?.samples, Reservation.sampleBlock + (1 << 16))
    }

    func testWithoutAStateDirectoryNothingIsReservedOrWritten() throws {
        let ledger = try IDLedger(store: nil, maxBatch: 1, logger: logger)
        XCTAssertTrue(ledger.reserve())
        XCTAssertNil(ledger.state.reserved)
    }
}
