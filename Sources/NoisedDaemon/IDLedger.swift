import Logging
import Synchronization

/// The daemon's state and its copy on disk. Noise ids and seq numbers are reserved on disk before
/// any is handed out (`Reservation`), so no crash can make a restart repeat one; the rest of the
/// state (step, loss histories) is saved every few seconds and at a clean stop.
///
/// A state directory that cannot take the first reservation fails the start. One that fails
/// later stops the pipeline from taking batches (it retries every poll, `/healthz` answers 503
/// and says why) until a reservation succeeds again.
// @unchecked: used on the pipeline thread only, except `problem`, which is behind a Mutex.
package final class IDLedger: @unchecked Sendable {
    package var state: DaemonState
    /// Largest batch the daemon accepts (`input.max_batch`): a reservation always covers one.
    package var maxBatch: Int
    private var saved: DaemonState
    private let store: StateStore?
    private let logger: Logger
    private let writeFailures: (any Error) -> Void
    private let currentProblem = Mutex<String?>(nil)
    private var failureLog = RejectLog(message: "cannot write state", level: .error, interval: .seconds(10))

    /// Loads the state (resuming above any reservation a crash left) and, with a store, writes
    /// the first reservation.
    package init(store: StateStore?, maxBatch: Int, logger: Logger, onWriteFailure: @escaping (any Error) -> Void = { _ in }) throws {
        self.store = store
        self.maxBatch = maxBatch
        self.logger = logger
        writeFailures = onWriteFailure
        let loaded = try store?.load() ?? DaemonState()
        state = loaded.resumed
        if state.samples != loaded.samples || state.seq != loaded.seq {
            logger.notice("resuming above the ids reserved before an unclean stop", metadata: [
                "skipped_samples": "\(state.samples - loaded.samples)", "skipped_seq": "\(state.seq - loaded.seq)",
            ])
        }
        saved = state
        if let store {
            let first = state.reservingAhead(forBatchOf: maxBatch)
            do { try store.save(first) } catch {
                throw StateError(path: store.directory, reason: "state_dir cannot be written (\(error)); noised hands out "
                    + "no noise id it cannot persist: make the directory writable, or set state_dir: null")
            }
            state = first
            saved = first
        }
    }

    /// Why batches are not being taken, or nil.
    package var problem: String? { currentProblem.withLock { $0 } }

    /// True when ids and a seq for one more batch are reserved on disk, writing a new reservation
    /// when the last one is used up. False, with `problem` set, when that write fails.
    package func reserve() -> Bool {
        guard let store, !state.isReserved(forBatchOf: maxBatch) else { return true }
        let next = state.reservingAhead(forBatchOf: maxBatch)
        do {
            try store.save(next)
        } catch {
            failed(error, store: store)
            return false
        }
        state = next
        saved = next
        if currentProblem.withLock({ $0 }) != nil {
            currentProblem.withLock { $0 = nil }
            logger.notice("state directory writable again; taking batches", metadata: ["state_dir": "\(store.directory)"])
        }
        return true
    }

    /// Saves the state if it changed since the last write (reports and steps; ids are reserved).
    package func saveIfChanged() {
        guard let store, state != saved else { return }
        do {
            try store.save(state)
            saved = state
        } catch { failed(error, store: store) }
    }

    /// The last save at a clean stop: reserved exactly up to what was used, so the next start
    /// continues without a gap.
    package func release() {
        guard let store else { return }
        do { try store.save(state.released) } catch {
            writeFailures(error)
            logger.error("cannot save state; the next start skips the reserved ids", metadata: ["error": "\(error)"])
        }
    }

    private func failed(_ error: StateError, store: StateStore) {
        writeFailures(error)
        let problem = "state_dir \(store.directory) cannot be written (\(error.reason)); no batch is taken until it can"
        currentProblem.withLock { $0 = problem }
        failureLog.record(reason: "state_write", detail: problem, logger: logger)
    }
}
