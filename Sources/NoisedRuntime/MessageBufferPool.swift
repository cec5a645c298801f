import Synchronization

/// Reusable output message buffers.
///
/// Every output message is written straight into one of these and handed to ZeroMQ without a
/// copy; ZeroMQ's I/O thread gives it back when the bytes are on the wire. Reuse matters: glibc
/// serves each large allocation with fresh pages the kernel must zero.
public final class MessageBufferPool: Sendable {
    /// One buffer lent out by the pool. Give it back with `MessageBufferPool.recycle`.
    // @unchecked: a pointer lent to one owner at a time, from `take` until `recycle`.
    public struct Buffer: @unchecked Sendable {
        public let pointer: UnsafeMutableRawPointer
        public let capacity: Int
    }

    private struct Shelf {
        var free: [Buffer] = []
        var allocated = 0
    }

    private let shelf = Mutex(Shelf())
    /// Buffers kept when idle; more than this are freed on return.
    public let maxIdle: Int
    private static let granule = 64 << 10

    public init(maxIdle: Int) {
        self.maxIdle = max(1, maxIdle)
    }

    deinit {
        shelf.withLock { $0.free.forEach { $0.pointer.deallocate() } }
    }

    /// A buffer of at least `byteCount` bytes: the smallest idle one that fits, or a new one.
    public func take(byteCount: Int) -> Buffer {
        let reused: Buffer? = shelf.withLock { shelf in
            var best: Int?
            for (i, b) in shelf.free.enumerated() where b.capacity >= byteCount {
                if best == nil || b.capacity < shelf.free[best!].capacity { best = i }
            }
            return best.map { shelf.free.remove(at: $0) }
        }
        if let reused { return reused }
        let capacity = (max(byteCount, 1) + Self.granule - 1) / Self.granule * Self.granule
        shelf.withLock { $0.allocated += 1 }
        return Buffer(pointer: .allocate(byteCount: capacity, alignment: 64), capacity: capacity)
    }

    /// Returns a buffer; safe from any thread (ZeroMQ calls it from its I/O thread).
    public func recycle(_ buffer: Buffer) {
        let surplus: Buffer? = shelf.withLock { shelf in
            shelf.free.append(buffer)
            guard shelf.free.count > maxIdle else { return nil }
            // Free the smallest: the large ones are the expensive ones to fault in again.
            let i = shelf.free.indices.min { shelf.free[$0].capacity < shelf.free[$1].capacity }!
            shelf.allocated -= 1
            return shelf.free.remove(at: i)
        }
        surplus?.pointer.deallocate()
    }

    /// Buffers in existence (idle or lent out), for tests and metrics.
    public var allocatedCount: Int { shelf.withLock { $0.allocated } }
    public var idleCount: Int { shelf.withLock { $0.free.count } }
}
