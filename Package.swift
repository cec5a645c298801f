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
#else
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
        .target(name: "NoisedProtocol", dependencies: ["Safetensors"]),
        .target(name: "CCPUFeatures"),
        // Noise stream v1 once: its constants, element types, the batch view, and the Philox,
        // Box–Muller and fused loop code every kernel instantiates with its own vector width.
        .target(name: "NoiseKernelCore"),
        .target(name: "NoiseKernelAVX512", dependencies: ["CCPUFeatures", "NoiseKernelCore"], swiftSettings: avx512KernelFlags),
        .target(name: "NoiseKernel", dependencies: ["NoiseKernelAVX512", "NoiseKernelCore"], swiftSettings: noiseKernelFlags),
        .target(name: "Schedule"),
        .target(name: "Configuration", dependencies: ["Schedule", "NoisedProtocol", "Yams"]),

        // Composition: the pipeline, state, and the tools built on it.
        .target(
            name: "NoisedDaemon",
            dependencies: [
                "ZeroMQ", "Safetensors", "NoisedProtocol", "NoiseKernel", "NoiseKernelCore", "Schedule", "Configuration",
                "CMalloc",
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
        // Measurement, kept apart from what runs in production.
        .target(
            name: "NoisedBenchmarks",
            dependencies: ["NoisedDaemon", "NoiseKernel", "NoiseKernelCore", "ZeroMQ", "Safetensors", "Configuration"],
            swiftSettings: kernelFlags
        ),
        .executableTarget(
            name: "noised",
            dependencies: [
                "NoisedDaemon",
                "NoisedBenchmarks",
                "NoiseKernel",
                "NoiseKernelCore",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),

        .testTarget(name: "SafetensorsTests", dependencies: ["Safetensors"]),
        .testTarget(name: "NoisedProtocolTests", dependencies: ["NoisedProtocol"]),
        .testTarget(name: "NoiseKernelTests", dependencies: ["NoiseKernel", "NoiseKernelCore"], swiftSettings: kernelFlags),
        .testTarget(name: "ScheduleTests", dependencies: ["Schedule"]),
        .testTarget(name: "ConfigurationTests", dependencies: ["Configuration", "NoisedProtocol"]),
        .testTarget(name: "ZeroMQTests", dependencies: ["ZeroMQ"]),
        .testTarget(name: "NoisedDaemonTests", dependencies: ["NoisedDaemon"]),
        .testTarget(name: "NoisedBenchmarksTests", dependencies: ["NoisedBenchmarks", "NoisedDaemon", "NoiseKernel", "NoiseKernelCore"]),
    ],
    swiftLanguageModes: [.v6]
)
