import CMalloc

/// How the process asks glibc's allocator to treat large blocks.
package enum HeapPolicy {
    /// Serve large blocks from the heap and keep freed ones, so that every received message (which
    /// libzmq allocates per message) reuses warm pages instead of mapping and zeroing fresh ones,
    /// which at tens of MiB per message costs a large share of the throughput. Set by the program
    /// itself, not left to the user's environment (MALLOC_* variables).
    package static func keepFreedMemory() {
        _ = mallopt(M_MMAP_MAX, 0)
        _ = mallopt(M_TRIM_THRESHOLD, Int32.max)
    }
}
