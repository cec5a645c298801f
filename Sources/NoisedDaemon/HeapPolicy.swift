/// How the process asks glibc's allocator to treat large blocks.
package enum HeapPolicy {
    /// Serve large blocks from the heap and keep freed ones, so that every received message (which
    /// libzmq allocates per message) reuses warm pages instead of mapping and zeroing fresh ones:
    /// at 32 MiB and beyond that costs about threefold in throughput. Set by the program itself, not
    /// left to the user's environment (MALLOC_* variables).
    package static func keepFreedMemory() {
        let mmapMax: Int32 = -4, trimThreshold: Int32 = -1  // M_MMAP_MAX, M_TRIM_THRESHOLD of <malloc.h>
        _ = glibcMallopt(mmapMax, 0)
        _ = glibcMallopt(trimThreshold, Int32.max)
    }
}

/// glibc's mallopt(3); <malloc.h> is not part of the Glibc module.
@_silgen_name("mallopt")
private func glibcMallopt(_ parameter: Int32, _ value: Int32) -> Int32
