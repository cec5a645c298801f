// swift-tools-version:6.0
import PackageDescription

// Release builds on x86_64 need AVX2/FMA/F16C for the noise kernel; baseline x86-64
// turns fma into a libc call and Float16 conversion into a helper call (20-50x slower).
#if arch(x86_64)
let kernelFlags: [SwiftSetting] = [
    .unsafeFlags(["-Xcc", "-march=x86-64-v3"], .when(configuration: .release)),
]
// The kernel itself calls AVX2/FMA intrinsics, which LLVM cannot lower without those features: it
// needs them in debug builds too.
let noiseKernelFlags: [SwiftSetting] = [
    .unsafeFlags(["-Xcc", "-march=x86-64-v3"]),
]
// The 512-bit kernel; NoiseKernel calls it only after checking the CPU at run time.
let avx512KernelFlags: [SwiftSetting] = [
    // AVX512_BF16 only for the bf16 stores of BF16x16Native, used where cpuid reports it.
    .unsafeFlags(["-Xcc", "-march=x86-64-v4", "-Xcc", "-mavx512bf16"]),
]
// The 512-bit dot tiles of the transport costs; TransportCost calls them only where
// NoiseKernel.Implementation says AVX-512 is available.
let avx512CouplingFlags: [SwiftSetting] = [
    .unsafeFlags(["-Xcc", "-march=x86-64-v4"]),
]
#else
let avx512CouplingFlags: [SwiftSetting] = []
let avx512KernelFlags: [SwiftSetting] = []
let kernelFlags: [SwiftSetting] = []
let noiseKernelFlags: [SwiftSetting] = []
#endif

let package = Package(
    name: "noised",
    platforms: [.macOS(.v13)],
    products: [
        .executable(name: "noised", targets: ["noised"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/jpsim/Yams.git", from: "6.2.2"),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
    ],
    targets: [
        // The C surface of libzmq, and the one Swift module that talks to it.
        .systemLibrary(name: "CZeroMQ", providers: [.apt(["libzmq3-dev"])]),
        // glibc's <malloc.h>, for the daemon's allocator policy.
        .systemLibrary(name: "CMalloc"),
        .target(name: "ZeroMQ", dependencies: ["CZeroMQ"]),

        // Pure computation: no sockets, threads or files.
        .target(name: "Safetensors"),
        .target(name: "NoisedProtocol", dependencies: ["Safetensors", "NoiseKernelCore"]),
        .target(name: "CCPUFeatures"),
        // Noise stream v1 once: its constants, element types, the batch view, and the Philox,
        // Box–Muller and fused loop code every kernel instantiates with its own vector width.
        .target(name: "NoiseKernelCore"),
        .target(name: "NoiseKernelAVX512", dependencies: ["CCPUFeatures", "NoiseKernelCore"], swiftSettings: avx512KernelFlags),
        .target(name: "NoiseKernel", dependencies: ["CCPUFeatures", "NoiseKernelAVX512", "NoiseKernelCore"], swiftSettings: noiseKernelFlags),
        // Batch coupling: transport costs between a batch's z_0 and candidate noise streams, and
        // the assignment, Sinkhorn and nearest-candidate choices made from them.
        .target(name: "Coupling", dependencies: ["CouplingAVX512", "NoiseKernel", "NoiseKernelCore", "Schedule"],
                swiftSettings: noiseKernelFlags),
        .target(name: "CouplingAVX512", swiftSettings: avx512CouplingFlags),
        .target(name: "Schedule"),
        .target(name: "Configuration", dependencies: ["Schedule", "NoisedProtocol", "Yams"]),

        // The runtime the service and the benchmarks share: worker threads, reused buffers, the
        // allocator policy, signals, descriptor limits, reading the config file.
        .target(name: "NoisedRuntime", dependencies: ["CMalloc", "Configuration"]),
        // The service: the pipeline, its services, state, reload, metrics, sd_notify.
        .target(
            name: "NoisedDaemon",
            dependencies: [
                "ZeroMQ", "Safetensors", "NoisedProtocol", "NoiseKernel", "NoiseKernelCore", "Schedule", "Configuration",
                "NoisedRuntime", "Coupling",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
            ],
            swiftSettings: kernelFlags
        ),
        // The tools beside the service: feed, tap and its verifier, the schedule report and SVG.
        .target(
            name: "NoisedTools",
            dependencies: [
                "NoisedDaemon", "NoisedRuntime", "ZeroMQ", "Safetensors", "NoisedProtocol", "NoiseKernel", "NoiseKernelCore",
                "Schedule", "Configuration",
            ],
            swiftSettings: kernelFlags
        ),
        // Measurement: the runtime and the kernel, not the service (the pipeline bench runs the
        // daemon as a child process).
        .target(
            name: "NoisedBenchmarks",
            dependencies: ["NoisedRuntime", "NoiseKernel", "NoiseKernelCore", "Coupling", "NoisedProtocol", "ZeroMQ", "Safetensors"],
            swiftSettings: kernelFlags
        ),
        .executableTarget(
            name: "noised",
            dependencies: [
                "Configuration",
                "NoisedDaemon",
                "NoisedTools",
                "NoisedRuntime",
                "NoisedBenchmarks",
                "NoiseKernel",
                "NoiseKernelCore",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),

        // What several test targets share (the seeded generator); never linked into the daemon.
        .target(name: "NoisedTestSupport", path: "Tests/NoisedTestSupport"),
        .testTarget(name: "SafetensorsTests", dependencies: ["Safetensors", "NoisedTestSupport"]),
        .testTarget(name: "NoisedProtocolTests", dependencies: ["NoisedProtocol", "NoiseKernelCore", "Safetensors"]),
        .testTarget(name: "NoiseKernelTests", dependencies: ["NoiseKernel", "NoiseKernelCore", "NoisedTestSupport"], swiftSettings: kernelFlags),
        .testTarget(name: "CouplingTests", dependencies: ["Coupling", "NoiseKernel", "NoiseKernelCore", "NoisedTestSupport"], swiftSettings: kernelFlags),
        .testTarget(name: "ScheduleTests", dependencies: ["Schedule", "NoisedTestSupport"]),
        .testTarget(name: "ConfigurationTests", dependencies: ["Configuration", "NoisedProtocol", "NoisedTestSupport"]),
        .testTarget(name: "ZeroMQTests", dependencies: ["ZeroMQ"]),
        .testTarget(name: "NoisedRuntimeTests", dependencies: ["NoisedRuntime", "Configuration"]),
        .testTarget(
            name: "NoisedDaemonTests",
            dependencies: ["NoisedDaemon", "NoisedRuntime", "Configuration", "NoiseKernel", "NoiseKernelCore", "NoisedProtocol",
                           "Safetensors", "Schedule", "ZeroMQ"]),
        .testTarget(name: "NoisedToolsTests", dependencies: ["NoisedTools", "NoisedDaemon", "Configuration", "Schedule"]),
        .testTarget(name: "NoisedBenchmarksTests", dependencies: ["NoisedBenchmarks", "NoisedRuntime", "NoiseKernel", "NoiseKernelCore"]),
    ],
    swiftLanguageModes: [.v6]
)
