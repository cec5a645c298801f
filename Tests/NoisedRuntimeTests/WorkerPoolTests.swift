import NoisedRuntime
import Synchronization
import XCTest

final class WorkerPoolTests: XCTestCase {
    func testEveryPartRunsExactlyOnceOverManyRounds() {
        for workers in [1, 2, 3, 5] {
            let pool = WorkerPool(workers: workers)
            XCTAssertEqual(pool.workers, workers)
            for round in 0..<300 {
                let parts = 1 + round % 9
                let counts = Mutex([Int](repeating: 0, count: parts))
                pool.run(parts: parts) { part in
                    counts.withLock { $0[part] += 1 }
                }
                // run returned, so every part must have finished.
                XCTAssertEqual(counts.withLock { $0 }, Array(repeating: 1, count: parts),
                               "workers \(workers) round \(round)")
            }
            pool.shutdown()
        }
    }

    func testPartsRunInParallel() {
        // Two parts that each wait for the other can only finish if they run on different threads.
        let pool = WorkerPool(workers: 2)
        let arrived = Atomic<Int>(0)
        pool.run(parts: 2) { _ in
            arrived.add(1, ordering: .sequentiallyConsistent)
            while arrived.load(ordering: .sequentiallyConsistent) < 2 {}
        }
        XCTAssertEqual(arrived.load(ordering: .relaxed), 2)
    }

    func testShutdownJoinsAndIsIdempotent() {
        let pool = WorkerPool(workers: 4)
        let total = Atomic<Int>(0)
        pool.run(parts: 8) { part in total.add(part, ordering: .relaxed) }
        pool.shutdown()
        pool.shutdown()
        XCTAssertEqual(total.load(ordering: .relaxed), 28)
    }

    func testZeroPartsReturnsImmediately() {
        let pool = WorkerPool(workers: 2)
        pool.run(parts: 0) { _ in XCTFail("no part should run") }
    }

    func testDeinitJoinsWorkers() {
        weak var weakPool: WorkerPool?
        do {
            let pool = WorkerPool(workers: 3)
            weakPool = pool
            pool.run(parts: 3) { _ in }
        }
        XCTAssertNil(weakPool)
    }
}
