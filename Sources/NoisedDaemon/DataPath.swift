import Configuration
import Logging

/// What the daemon runs: one pipeline, or a fan-out feeding one pipeline per output.
enum DataPath: Sendable {
    case single(Pipeline)
    case fanout(Fanout)

    var pipelines: [Pipeline] {
        switch self {
        case .single(let pipeline): [pipeline]
        case .fanout(let fanout): fanout.pipelines
        }
    }

    var progress: any PipelineProgress {
        switch self {
        case .single(let pipeline): pipeline
        case .fanout(let fanout): fanout
        }
    }

    var healthProblem: String? {
        switch self {
        case .single(let pipeline): pipeline.healthProblem
        case .fanout(let fanout): fanout.healthProblem
        }
    }

    var logger: Logger {
        switch self {
        case .single(let pipeline): pipeline.logger
        case .fanout(let fanout): fanout.logger
        }
    }

    func requestReload(_ config: NoisedConfig) throws {
        switch self {
        case .single(let pipeline):
            guard config.outputs.isEmpty else {
                throw ReloadRefusal(message: "outputs: turning one output into several needs a restart")
            }
            pipeline.requestReload(config)
        case .fanout(let fanout):
            try fanout.requestReload(config)
        }
    }

    func requestStop() {
        switch self {
        case .single(let pipeline): pipeline.requestStop()
        case .fanout(let fanout): fanout.requestStop()
        }
    }

    func run() throws {
        switch self {
        case .single(let pipeline): _ = try pipeline.run()
        case .fanout(let fanout): try fanout.run()
        }
    }
}
