import Foundation
import Synchronization
import ZeroMQ

/// A flag one thread raises and others poll.
final class StopFlag: Sendable {
    private let raised = Atomic<Bool>(false)
    func raise() { raised.store(true, ordering: .releasing) }
    var isRaised: Bool { raised.load(ordering: .acquiring) }
}

/// A thread whose result (or error) is collected with `join`.
final class BenchThread<Value: Sendable>: Sendable {
    private let finished = DispatchSemaphore(value: 0)
    private let outcome = Mutex<Result<Value, any Error>?>(nil)

    init(name: String, _ body: @escaping @Sendable () throws -> Value) {
        let thread = Thread { [self] in
            let result = Result { try body() }
            outcome.withLock { $0 = result }
            finished.signal()
        }
        thread.name = name
        thread.start()
    }

    func join() throws -> Value {
        finished.wait()
        return try outcome.withLock { $0! }.get()
    }
}

/// The ends of a bench pipeline in this process: a producer PUSHing latent batches into the
/// system under test (noised or the relay) and a consumer PULLing what comes out of each of its
/// outputs (several for a daemon with `outputs`).
// @unchecked: each socket is used by one thread (producer or a consumer); shared counts are Atomic.
final class BenchTraffic: @unchecked Sendable {
    /// What the consumer saw of one saturated run: arrival time and end-to-end latency per message.
    struct Arrivals: Sendable {
        var times: [UInt64] = []
        var latencies: [UInt64] = []
        /// Messages without a readable send stamp (should stay 0).
        var unstamped = 0
    }

    private let context: ZMQContext
    private let producer: ZMQSocket
    /// One per output of the system under test.
    private let consumers: [ZMQSocket]
    private let buffers: PrefilledBuffers
    /// Batches the consumers have received in the current saturated run, summed over them.
    private let arrivalCount = Atomic<Int>(0)
    private static let pollMilliseconds: Int32 = 100

    init(input: String, outputs: [String], messages: BenchMessages, highWaterMark: Int32) throws {
        precondition(!outputs.isEmpty, "bench traffic needs an output to consume")
        let context = try ZMQContext()
        self.context = context
        producer = try ZMQSocket(context, type: .push)
        consumers = try outputs.map { _ in try ZMQSocket(context, type: .pull) }
        for socket in [producer] + consumers {
            try socket.setLinger(milliseconds: 0)
            try socket.setHighWaterMarks(send: highWaterMark, receive: highWaterMark)
            try socket.setTimeouts(send: Self.pollMilliseconds, receive: Self.pollMilliseconds)
        }
        try producer.connect(input)
        for (consumer, output) in zip(consumers, outputs) { try consumer.connect(output) }
        buffers = PrefilledBuffers(messages.input)
    }

    func close() {
        producer.close()
        for consumer in consumers { consumer.close() }
    }

    /// Sends as fast as the pipeline takes batches until `stop`; returns the count sent.
    private func produce(until stop: StopFlag) throws -> Int {
        var sent = 0
        let stampOffset = buffers.template.stampOffset
        while !stop.isRaised {
            let address = buffers.take()
            let message = try ZMQOutgoingMessage(zeroCopy: address.pointer, count: buffers.template.count) {
                [buffers] in buffers.recycle(address)
            }
            // Stamped again before every retry: a batch enters the pipeline when the send succeeds.
            repeat {
                if stop.isRaised { return sent }
                SendStamp.write(ProcessStats.monotonicNanoseconds(), to: address.pointer, at: stampOffset)
            } while try !producer.send(message)
            sent += 1
        }
        return sent
    }

    /// Receives until `stop` is raised and then nothing arrives for a while: at least
    /// `minimumQuietNanoseconds` and three times the mean gap between arrivals so far, so that
    /// the batches still queued in the pipeline come out before the next phase.
    private func consume(_ consumer: ZMQSocket, until stop: StopFlag, minimumQuietNanoseconds: UInt64) throws -> Arrivals {
        var arrivals = Arrivals()
        var lastArrival = ProcessStats.monotonicNanoseconds()
        var quietNanoseconds: UInt64 {
            guard let first = arrivals.times.first, arrivals.times.count > 1 else { return minimumQuietNanoseconds }
            return max(minimumQuietNanoseconds, 3 * (lastArrival - first) / UInt64(arrivals.times.count - 1))
        }
        while true {
            if let message = try consumer.receive() {
                let now = ProcessStats.monotonicNanoseconds()
                lastArrival = now
                arrivalCount.add(1, ordering: .relaxed)
                let stamp = message.withUnsafeBytes { bytes in SendStamp.offset(in: bytes).flatMap { SendStamp.read(bytes, at: $0) } }
                if let sent = stamp, sent <= now {
                    arrivals.times.append(now)
                    arrivals.latencies.append(now - sent)
                } else {
                    arrivals.unstamped += 1
                }
            } else if stop.isRaised && ProcessStats.monotonicNanoseconds() - lastArrival >= quietNanoseconds {
                return arrivals
            }
        }
    }

    /// Runs the producer and each consumer on their own threads, calling `tick` about every 50 ms
    /// on this thread: a warm-up of at least `warmupSeconds` and `warmupMessages` received batches
    /// per consumer (so buffer pools have grown to their working size; bounded at 60 s), then at
    /// least `seconds` and `minimumMessages` arrivals per consumer measured.
    /// Then stops the producer and drains the pipeline. Returns each consumer's arrivals, in the
    /// order of `outputs`, and the measured window [start, end) in CLOCK_MONOTONIC nanoseconds.
    func saturate(warmupSeconds: Double, warmupMessages: Int, seconds: Double, minimumMessages: Int,
                  tick: (_ inWindow: Bool) -> Void)
        throws -> (arrivals: [Arrivals], window: Range<UInt64>) {
        let stopProducer = StopFlag(), stopConsumer = StopFlag()
        arrivalCount.store(0, ordering: .relaxed)
        let consumerThreads = consumers.map { consumer in
            BenchThread(name: "bench-consumer") { [self] in
                try consume(consumer, until: stopConsumer, minimumQuietNanoseconds: 500_000_000)
            }
        }
        // Counts are summed over the consumers; with a copy fan-out each gets every batch.
        let warmupMessages = warmupMessages * consumers.count, minimumMessages = minimumMessages * consumers.count
        let producerThread = BenchThread(name: "bench-producer") { [self] in try produce(until: stopProducer) }
        let begin = ProcessStats.monotonicNanoseconds()
        let warmupEnd = begin + UInt64(warmupSeconds * 1e9), warmupLimit = begin + 60_000_000_000
        var now = begin
        while now < warmupLimit && (now < warmupEnd || arrivalCount.load(ordering: .relaxed) < warmupMessages) {
            tick(false)
            Thread.sleep(forTimeInterval: 0.05)
            now = ProcessStats.monotonicNanoseconds()
        }
        // The window lasts `seconds` and holds at least `minimumMessages` arrivals (bounded at
        // 60 s), so that even the largest messages give a rate and not a count of one or two.
        let windowStart = now, windowEnd = windowStart + UInt64(seconds * 1e9), windowLimit = windowStart + 60_000_000_000
        let arrivedBefore = arrivalCount.load(ordering: .relaxed)
        while now < windowEnd || (now < windowLimit && arrivalCount.load(ordering: .relaxed) - arrivedBefore < minimumMessages) {
            tick(true)
            Thread.sleep(forTimeInterval: 0.05)
            now = ProcessStats.monotonicNanoseconds()
        }
        tick(true)
        stopProducer.raise()
        let producerResult = Result { try producerThread.join() }
        stopConsumer.raise()
        let arrivals = try consumerThreads.map { try $0.join() }
        _ = try producerResult.get()
        return (arrivals, windowStart..<max(windowEnd, now))
    }

    /// One batch at a time through an idle pipeline: send, wait for it to come out of every output,
    /// repeat, for up to `maxMessages` or `maxSeconds`. Returns each batch's end-to-end latency
    /// (until its last copy arrived) in seconds.
    func lockstep(maxMessages: Int, maxSeconds: Double) throws -> [Double] {
        let deadline = ProcessStats.monotonicNanoseconds() + UInt64(maxSeconds * 1e9)
        var latencies: [Double] = []
        while latencies.count < maxMessages && (latencies.count < 3 || ProcessStats.monotonicNanoseconds() < deadline) {
            let address = buffers.take()
            let sent = ProcessStats.monotonicNanoseconds()
            SendStamp.write(sent, to: address.pointer, at: buffers.template.stampOffset)
            let message = try ZMQOutgoingMessage(zeroCopy: address.pointer, count: buffers.template.count) {
                [buffers] in buffers.recycle(address)
            }
            let giveUp = sent + 10_000_000_000
            while try !producer.send(message) {
                guard ProcessStats.monotonicNanoseconds() < giveUp else { throw BenchError("the pipeline took no batch for 10 s") }
            }
            // Batches still in flight from the saturated phase carry older stamps: skip them.
            for consumer in consumers {
                while true {
                    if let received = try consumer.receive() {
                        let stamp = received.withUnsafeBytes { bytes in SendStamp.offset(in: bytes).flatMap { SendStamp.read(bytes, at: $0) } }
                        if stamp == sent { break }
                    } else if ProcessStats.monotonicNanoseconds() >= giveUp {
                        throw BenchError("the batch sent did not come out of the pipeline within 10 s")
                    }
                }
            }
            latencies.append(Double(ProcessStats.monotonicNanoseconds() - sent) / 1e9)
        }
        return latencies
    }
}
