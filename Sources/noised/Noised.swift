import ArgumentParser
import Configuration
import Foundation
import NoisedBenchmarks
import NoisedDaemon
import NoisedRuntime
import NoisedTools
import NoiseKernel
import NoiseKernelCore

@main
struct Noised: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Noises latent batches for rectified-flow training: ZeroMQ in, (z_t, ε, σ) out.",
        subcommands: [Run.self, CheckConfig.self, ScheduleCommand.self, Bench.self, Feed.self, Tap.self, Keygen.self],
        defaultSubcommand: Run.self
    )
}

struct Run: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Run the daemon until SIGTERM or SIGINT.")

    @Option(name: .shortAndLong, help: "The config file.")
    var config = NoisedConfig.defaultPath

    @Option(help: "Keep state here instead of the config's state_dir.")
    var stateDir: String?

    func run() async throws {
        do { try await NoisingDaemon.launch(configPath: config, stateDirectory: stateDir) } catch {
            FileHandle.standardError.write(Data("noised: \(error)\n".utf8))
            throw ExitCode.failure
        }
    }
}

struct CheckConfig: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "check-config", abstract: "Validate a config file; name the key at fault.")

    @Argument(help: "The config file.")
    var file: String

    func run() throws {
        do { _ = try ConfigFile.load(file) } catch {
            FileHandle.standardError.write(Data("noised: \(error)\n".utf8))
            throw ExitCode.failure
        }
        print("ok")
    }
}

struct Bench: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Measure the kernel (default), the whole pipeline beside a plain ZeroMQ relay, or the batch coupling.",
        subcommands: [Kernel.self, Pipeline.self, Coupling.self, Relay.self], defaultSubcommand: Kernel.self)

    struct Kernel: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Kernel throughput per dtype and worker count, beside a memcpy of the same bytes and numpy.")

        @Option(help: "Batch shape, batch first: positive integers separated by commas (default: Mochi-shaped).") var shape = Shape([2, 12, 28, 60, 106])
        @Option(help: "Worker counts to measure.") var workers = CommaList<Int>(argument: "1,2")!
        @Option(help: "Dtype pairs IN:OUT of f32, f16, bf16 to measure.")
        var dtypes = CommaList<DTypePair>(argument: "f32:f32,bf16:bf16,f16:f16")!
        @Option(help: "Kernel implementations to measure: avx2, avx512, avx512bf16, portable (default: all this CPU runs).")
        var kernels: CommaList<NoiseKernel.Implementation>?
        @Option(help: "Seconds per case.") var seconds = 1.0
        @Option(help: "Also measure σ per frame along this axis of --shape (0: skip).") var frameAxis = 2
        @Flag(help: "Skip posterior sampling (input.posterior) followed by the kernel.") var noPosterior = false
        @Flag(help: "Skip numpy's noising of the same tensor.") var noNumpy = false
        @Option(help: "The Python that runs the numpy comparison.") var python = "python3"
        @Option(help: "scripts/bench-numpy.py (default: found beside the working directory or the binary).")
        var numpyScript: String?
        @Flag(help: "Print JSON instead of a table.") var json = false

        func validate() throws {
            if let bad = workers.values.first(where: { $0 < 1 }) {
                throw ValidationError("--workers: each worker count must be at least 1, got \(bad)")
            }
            if let missing = kernels?.values.first(where: { !$0.isAvailable }) {
                let available = NoiseKernel.Implementation.allCases.filter(\.isAvailable).map(\.rawValue).joined(separator: ", ")
                throw ValidationError("--kernels: \(missing) does not run on this CPU (it runs \(available))")
            }
            guard seconds > 0, seconds.isFinite else { throw ValidationError("--seconds must be a positive number, got \(seconds)") }
            guard frameAxis >= 0 else { throw ValidationError("--frame-axis must be 0 (skip) or an axis >= 1, got \(frameAxis)") }
        }

        func run() throws {
            var options = KernelBench.Options()
            options.shape = shape.dimensions
            options.workerCounts = workers.values
            options.typePairs = dtypes.values.map { ($0.input, $0.output) }
            if let kernels { options.implementations = kernels.values }
            options.secondsPerCase = seconds
            options.frameAxis = frameAxis == 0 ? nil : frameAxis
            options.posterior = !noPosterior
            var note: String?
            if !noNumpy {
                switch NumpyComparison.locate(python: python, script: numpyScript) {
                case .success(let numpy): options.numpy = numpy
                case .failure(let reason): note = reason.description
                }
            }
            let rows = try KernelBench(options: options).run()
            print(json ? try KernelBench.renderJSON(rows) : KernelBench.renderTable(rows))
            if let note { FileHandle.standardError.write(Data("noised bench: \(note)\n".utf8)) }
        }
    }

    struct Pipeline: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Producer → noised → consumer on loopback, beside a plain ZeroMQ relay moving the same bytes, or (--fanout) beside fanout: copy to two outputs, or (--coupling) without beside with batch coupling.")

        @Flag(help: "A smoke run: 256 KiB only, short phases.") var quick = false
        @Flag(help: "Instead of the relay comparison: one output beside fanout: copy to two outputs (default ipc, f32, 4M,32M).")
        var fanout = false
        @Option(help: "Instead of the relay comparison: no coupling beside schedule.coupling METHOD (assignment, sinkhorn or knn, the daemon's default parameters; default ipc, f32, batches 64,256 of 16,64,64).")
        var coupling: CouplingMethod?
        @Option(help: "With --coupling: samples per batch, one case each (default 64,256; 8 with --quick).") var batches: CommaList<Int>?
        @Option(help: "With --coupling: the shape of one sample (default 16,64,64; 4,16,16 with --quick).") var sampleShape: Shape?
        @Option(help: "Measured seconds per case and side, split over the rounds.") var duration: Double?
        @Option(help: "Alternating windows per case, noised and relay (A and B with --fanout or --coupling) (default 3; 1 with --quick).") var rounds: Int?
        @Option(help: "Warm-up seconds per round.") var warmup: Double?
        @Option(help: "Bytes of z_0 per message, e.g. 256K,4M,32M,128M.") var sizes: String?
        @Option(help: "Transports: ipc, tcp (default ipc,tcp; ipc with --fanout or --coupling).") var transports: CommaList<PipelineBench.Transport>?
        @Option(help: "Latent dtypes: f32, f16, bf16 (default f32,bf16; f32 with --fanout or --coupling).") var dtypes: CommaList<ElementType>?
        @Option(help: "The daemon's kernel workers.") var workers = 2
        @Option(help: "Input and output high-water marks (daemon, relay and bench sockets).") var hwm = 4
        @Option(help: "Seconds the daemon sits without input for the idle CPU figure.") var idleSeconds: Double?
        @Option(help: "The noised binary to start (default: this one).") var daemon: String?
        @Flag(help: "Print JSON instead of tables.") var json = false

        func validate() throws {
            if fanout && coupling != nil { throw ValidationError("--fanout and --coupling are separate comparisons: give one") }
            if coupling != nil && sizes != nil { throw ValidationError("--sizes does not apply to --coupling: give --batches and --sample-shape") }
            if coupling == nil && (batches != nil || sampleShape != nil) {
                throw ValidationError("--batches and --sample-shape apply to --coupling only")
            }
            if let bad = batches?.values.first(where: { $0 < 1 }) { throw ValidationError("--batches: each must be at least 1, got \(bad)") }
        }

        func run() throws {
            let binary = try daemon ?? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")
            if let coupling {
                var options = quick ? CouplingPipelineBench.Options.quick(daemonBinary: binary)
                    : CouplingPipelineBench.Options(daemonBinary: binary)
                options.coupling = coupling
                if let batches { options.batchSizes = batches.values }
                if let sampleShape { options.sampleShape = sampleShape.dimensions }
                options.pipeline = try adjusted(options.pipeline)
                try report { progress in
                    let report = try CouplingPipelineBench(options: options, progress: progress).run()
                    return json ? try CouplingPipelineBench.renderJSON(report) : CouplingPipelineBench.renderTable(report)
                }
                return
            }
            let defaults = switch (quick, fanout) {
            case (false, false): PipelineBench.Options(daemonBinary: binary)
            case (true, false): PipelineBench.Options.quick(daemonBinary: binary)
            case (false, true): PipelineBench.Options.fanout(daemonBinary: binary)
            case (true, true): PipelineBench.Options.quickFanout(daemonBinary: binary)
            }
            let options = try adjusted(defaults)
            try report { progress in
                if fanout {
                    let report = try FanoutBench(options: options, progress: progress).run()
                    return json ? try FanoutBench.renderJSON(report) : FanoutBench.renderTable(report)
                }
                let report = try PipelineBench(options: options, progress: progress).run()
                return json ? try PipelineBench.renderJSON(report) : PipelineBench.renderTable(report)
            }
        }

        /// The defaults of one comparison with the options given on the command line.
        private func adjusted(_ defaults: PipelineBench.Options) throws -> PipelineBench.Options {
            var options = defaults
            if let duration { options.secondsPerCase = duration }
            if let rounds { options.rounds = rounds }
            if let warmup { options.warmupSeconds = warmup }
            if let idleSeconds { options.idleSeconds = idleSeconds }
            if let sizes { options.sizes = try sizes.split(separator: ",").map { try PipelineBench.parseSize(String($0)) } }
            if let transports { options.transports = transports.values }
            if let dtypes { options.dtypes = dtypes.values }
            options.workers = workers
            options.highWaterMark = hwm
            return options
        }

        /// Prints what `bench` renders, with progress on stderr; a bench error exits non-zero.
        private func report(_ bench: (@escaping (String) -> Void) throws -> String) throws {
            let progress = { (line: String) in FileHandle.standardError.write(Data("noised bench: \(line)\n".utf8)) }
            do {
                print(try bench(progress), terminator: "")
            } catch let error as BenchError {
                FileHandle.standardError.write(Data("noised bench: \(error)\n".utf8))
                throw ExitCode.failure
            }
        }
    }

    struct Coupling: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "coupling",
            abstract: "Time per batch of the coupling steps (costs, assignment, sinkhorn, knn) beside the kernel's.")

        @Option(help: "Batch sizes B to measure.") var batches = CommaList<Int>(argument: "64,256")!
        @Option(help: "Elements per sample D (f32).") var elements = 16 * 64 * 64
        @Option(help: "Worker threads (the kernel and the cost matrices).") var workers = 2
        @Option(help: "knn candidates per sample.") var candidates = 4
        @Option(help: "Measured rounds per batch size (the median is printed).") var rounds = 5
        @Flag(help: "Print JSON instead of a table.") var json = false

        func validate() throws {
            guard batches.values.allSatisfy({ $0 >= 1 }) else { throw ValidationError("--batches: each must be at least 1") }
            guard elements >= 1 else { throw ValidationError("--elements must be at least 1, got \(elements)") }
            guard workers >= 1 else { throw ValidationError("--workers must be at least 1, got \(workers)") }
            guard (1...256).contains(candidates) else { throw ValidationError("--candidates must be in 1...256, got \(candidates)") }
            guard rounds >= 1 else { throw ValidationError("--rounds must be at least 1, got \(rounds)") }
        }

        func run() throws {
            var options = CouplingBench.Options()
            options.batchSizes = batches.values
            options.elementsPerSample = elements
            options.workers = workers
            options.candidates = candidates
            options.rounds = rounds
            let rows = try CouplingBench(options: options).run()
            print(json ? try CouplingBench.renderJSON(rows) : CouplingBench.renderTable(rows), terminator: "")
        }
    }

    /// The pipeline bench's yardstick, started by `bench pipeline` as a child process.
    struct Relay: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "A plain ZeroMQ relay moving noised's bytes (started by bench pipeline).", shouldDisplay: false)

        @Option(help: "Endpoint to bind the PULL socket on.") var input: String
        @Option(help: "Endpoint to bind the PUSH socket on.") var output: String
        @Option(help: "Bytes of z_0 per batch.") var latentBytes: Int
        @Option(help: "Latent dtype: f32, f16 or bf16.") var dtype: ElementType
        @Option(help: "High-water mark of both sockets.") var hwm = 4

        func run() throws {
            try BenchRelay.serve(.init(input: input, output: output, latentBytes: latentBytes, dtype: dtype, highWaterMark: hwm))
        }
    }
}

struct Feed: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Produce latent batches: synthetic, or the .safetensors files of a folder.",
        discussion: """
            By default each batch goes to the daemon's acknowledged input (input.acked_endpoint, \
            default tcp://127.0.0.1:5554) and is answered; at the end the feed waits for the last \
            answers and prints how many batches were acknowledged, rejected, unsent and unanswered. \
            It exits non-zero unless every batch was acknowledged. --no-ack pushes to input.endpoint \
            instead, which confirms nothing.
            """)

    @Option(help: "The daemon's input.acked_endpoint (with --no-ack: its input.endpoint).") var endpoint: String
    @Flag(help: "Bind the endpoint instead of connecting.") var bind = false
    @Option(help: "Latent shape, batch first: positive integers separated by commas.") var shape = Shape([2, 12, 28, 60, 106])
    @Option(help: "Latent dtype: f32, f16 or bf16.") var dtype = ElementType.bf16
    @Option(help: "Name of the latent tensor.") var tensor = "latents"
    @Option(help: "Batches to send (0: until interrupted).") var count = 0
    @Option(help: "Batches per second (default: as fast as taken).") var rate: Double?
    @Option(help: "Send the .safetensors files of this folder instead.") var dir: String?
    @Option(help: "Seed of the synthetic latents.") var seed: UInt64 = 0
    @Flag(name: .customLong("no-ack"), help: "Push plainly (PUSH to input.endpoint): nothing is confirmed.")
    var noAck = false
    @Option(help: "Batches sent and not yet answered, at most.") var window = 16
    @Option(help: "Seconds to wait for an answer before giving up on the daemon.") var ackTimeout = 30.0

    func validate() throws {
        guard window >= 1 else { throw ValidationError("--window must be at least 1, got \(window)") }
        guard ackTimeout > 0, ackTimeout.isFinite else { throw ValidationError("--ack-timeout must be a positive number of seconds, got \(ackTimeout)") }
        guard count >= 0 else { throw ValidationError("--count must be 0 or more, got \(count)") }
    }

    func run() throws {
        var options = Feeder.Options(endpoint: endpoint)
        options.bind = bind
        options.shape = shape.dimensions
        options.dtype = dtype
        options.tensor = tensor
        options.count = count
        options.rate = rate
        options.directory = dir
        options.seed = seed
        options.acknowledged = !noAck
        options.window = window
        options.ackTimeout = .milliseconds(Int64(ackTimeout * 1000))
        Interrupt.install()
        let report = try Feeder(options: options).run(until: { Interrupt.requested })
        var line = String(format: "feed: %d batches, %.1f MB in %.2f s (%.1f MB/s)", report.batches,
                          Double(report.bytes) / 1e6, report.seconds, Double(report.bytes) / 1e6 / max(report.seconds, 1e-9))
        if options.acknowledged {
            let reasons = report.rejected.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " ")
            line += "; \(report.acknowledged) acknowledged, \(report.rejectedCount) rejected\(reasons.isEmpty ? "" : " (\(reasons))"), \(report.unsent) unsent, \(report.unacknowledged) unacknowledged"
        }
        print(line)
        if let problem = report.problem { FileHandle.standardError.write(Data("noised feed: \(problem)\n".utf8)) }
        if !report.delivered { throw ExitCode.failure }
    }
}

struct Tap: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Consume noised batches: rate, bytes, σ histogram; --verify checks every triple.")

    @Option(help: "Where to PULL batches from.") var endpoint: String
    @Flag(help: "Bind the endpoint instead of connecting.") var bind = false
    @Option(help: "Batches to take (0: until interrupted).") var count = 0
    @Option(help: "Stop after this many seconds (counted from the first batch; also when none arrives).") var seconds: Double?
    @Flag(help: "Check σ's range, ε against noise stream v1 and its moments, and the z_t formula when z_0 is included.")
    var verify = false
    @Option(help: "Seconds between progress lines.") var interval = 2.0

    func run() throws {
        var options = NoisedTools.Tap.Options(endpoint: endpoint)
        options.bind = bind
        options.count = count
        options.seconds = seconds
        options.verify = verify
        options.reportInterval = interval
        Interrupt.install()
        let report = try NoisedTools.Tap(options: options, print: { Swift.print($0) }).run(until: { Interrupt.requested })
        print("σ histogram over \(report.samples) samples:")
        report.sigmas.bars().forEach { print("  " + $0) }
        print(String(format: "tap: %d batches, %d samples, %.1f MB in %.2f s, failed=%d", report.batches, report.samples,
                     Double(report.bytes) / 1e6, report.seconds, report.failures))
        if report.failures > 0 { throw ExitCode.failure }
    }
}

struct ScheduleCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "schedule",
        abstract: "Show the σ distribution over training: quantiles and density per step, an SVG heatmap, CSV.")

    @Option(name: .shortAndLong, help: "The config file.") var config = NoisedConfig.defaultPath
    @Option(help: "Steps to show, e.g. 0,5000,20000 (default: 0, keyframes, midpoints, last keyframe + 10 %).")
    var steps: CommaList<Int64>?
    @Option(help: "A state directory: show the daemon's adapted proposal at its step.") var state: String?
    @Option(help: "Write a heatmap of the density over step × σ to this SVG file.") var svg: String?
    @Option(help: "Write step,sigma,density rows to this CSV file.") var csv: String?
    @Option(help: "Latent shape for sequence-length shifts, batch first (default: the shift's base length).")
    var latentShape: Shape?
    @Option(help: "With outputs: the output whose schedule to show (its state is in state_dir/<name>).") var output: String?

    func validate() throws {
        if let bad = steps?.values.first(where: { $0 < 0 }) { throw ValidationError("--steps must be 0 or more, got \(bad)") }
        if let latentShape, latentShape.dimensions.count < 3 {
            throw ValidationError("--latent-shape must be [batch, channels, spatial...], e.g. 1,16,28,60,106; got \(latentShape)")
        }
    }

    func run() throws {
        var options = ScheduleTool.Options(configPath: config)
        options.steps = steps?.values
        options.stateDirectory = state
        options.svgPath = svg
        options.csvPath = csv
        options.latentShape = latentShape?.dimensions
        options.output = output
        do { print(try ScheduleTool.run(options)) } catch {
            FileHandle.standardError.write(Data("noised: \(error)\n".utf8))
            throw ExitCode.failure
        }
    }
}

struct Keygen: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Write a CURVE keypair: NAME.key (Z85 secret, mode 0600) and NAME.pub (Z85 public, 0644).",
        discussion: "Existing files are never overwritten. Give the daemon its NAME.key as security.curve.secret_key_file "
            + "and trainers the daemon's .pub; put each trainer's NAME.pub in security.curve.authorized_keys_dir.")

    @Argument(help: "The key's name (a host or trainer name).") var name: String
    @Option(help: "Directory to write the files in.") var dir = "."

    func run() throws {
        do {
            let written = try KeyFiles.generate(name: name, directory: dir)
            print("secret key: \(written.secretKeyPath)")
            print("public key: \(written.publicKeyPath)  \(written.publicKey)")
        } catch {
            FileHandle.standardError.write(Data("noised: \(error)\n".utf8))
            throw ExitCode.failure
        }
    }
}
