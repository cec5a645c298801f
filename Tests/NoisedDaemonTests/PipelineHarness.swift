import Foundation
import NoisedDaemon
import Safetensors
import Synchronization

/// What the in-process pipeline tests share: a small batch, a pipeline on its own thread, and a
/// bounded wait.
enum PipelineHarness {
    /// A [2, 64] F32 batch whose metadata carries `probe`, so the test can tell batches apart.
    static func batch(_ probe: String) throws -> [UInt8] {
        let values = [Float](repeating: 0.5, count: 2 * 64)
        let data = values.withUnsafeBytes { Array($0) }
        return try encodeSafetensors([(name: "latents", dtype: .F32, shape: [2, 64], data: data)], metadata: ["probe": probe])
    }

    /// Runs the pipeline on its own thread; `finished(seconds)` waits at most that long for its summary.
    static func start(_ pipeline: Pipeline) -> (@Sendable (_ seconds: Double) -> Pipeline.Summary?) {
        let result = Mutex<Pipeline.Summary?>(nil)
        let done = DispatchSemaphore(value: 0)
        let thread = Thread {
            let summary = try? pipeline.run()
            result.withLock { $0 = summary }
            done.signal()
        }
        thread.start()
        return { seconds in
            guard done.wait(timeout: .now() + seconds) == .success else { return nil }
            return result.withLock { $0 }
        }
    }

    /// Polls `condition` every 10 ms for at most `seconds`; returns whether it came true.
    static func wait(seconds: Double = 10, until condition: () throws -> Bool) rethrows -> Bool {
        let deadline = Date() + seconds
        while Date() < deadline {
            if try condition() { return true }
            usleep(10_000)
        }
        return try condition()
    }
}
