import NoisedRuntime
import XCTest

final class MessageBufferPoolTests: XCTestCase {
    func testReturnedBufferIsReused() {
        let pool = MessageBufferPool(maxIdle: 4)
        let a = pool.take(byteCount: 1_000_000)
        XCTAssertGreaterThanOrEqual(a.capacity, 1_000_000)
        XCTAssertEqual(Int(bitPattern: a.pointer) % 64, 0, "buffers are cache-line aligned")
        pool.recycle(a)
        let b = pool.take(byteCount: 999_000)
        XCTAssertEqual(a.pointer, b.pointer)
        XCTAssertEqual(pool.allocatedCount, 1)
        pool.recycle(b)
    }

    func testTooSmallIdleBufferIsNotUsed() {
        let pool = MessageBufferPool(maxIdle: 4)
        let small = pool.take(byteCount: 100)
        pool.recycle(small)
        let large = pool.take(byteCount: 10_000_000)
        XCTAssertNotEqual(small.pointer, large.pointer)
        XCTAssertGreaterThanOrEqual(large.capacity, 10_000_000)
        XCTAssertEqual(pool.allocatedCount, 2)
        pool.recycle(large)
    }

    func testSmallestFittingBufferIsChosen() {
        let pool = MessageBufferPool(maxIdle: 4)
        let big = pool.take(byteCount: 8 << 20), mid = pool.take(byteCount: 1 << 20)
        pool.recycle(big)
        pool.recycle(mid)
        XCTAssertEqual(pool.take(byteCount: 500_000).pointer, mid.pointer)
    }

    func testIdleBuffersAreBounded() {
        let pool = MessageBufferPool(maxIdle: 2)
        let buffers = (1...5).map { pool.take(byteCount: $0 << 20) }
        XCTAssertEqual(pool.allocatedCount, 5)
        buffers.forEach(pool.recycle)
        XCTAssertEqual(pool.idleCount, 2)
        XCTAssertEqual(pool.allocatedCount, 2)
        // The large ones are kept: they are the expensive ones to fault in again.
        XCTAssertNotNil(pool.take(byteCount: 5 << 20).pointer)
        XCTAssertEqual(pool.allocatedCount, 2)
    }

    func testRecycleFromManyThreads() {
        let pool = MessageBufferPool(maxIdle: 64)
        let buffers = (0..<64).map { _ in pool.take(byteCount: 4096) }
        DispatchQueue.concurrentPerform(iterations: buffers.count) { pool.recycle(buffers[$0]) }
        XCTAssertEqual(pool.idleCount, 64)
        XCTAssertEqual(pool.allocatedCount, 64)
    }
}
