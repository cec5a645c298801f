#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A fixed set of threads that run the parts of one job in parallel. The calling thread of `run`
/// works too, so `workers` threads compute with `workers - 1` spawned; idle threads sleep on a
/// condition variable.
// @unchecked: the job and the threads' coordination live in PoolState, behind its mutex.
public final class WorkerPool: @unchecked Sendable {
    public let workers: Int
    private let state: PoolState
    private var threads: [pthread_t] = []
    /// Serialises `run` calls from different threads.
    private let runLock = PthreadMutex()

    public init(workers: Int) {
        precondition(workers >= 1, "WorkerPool: workers must be at least 1, got \(workers)")
        self.workers = workers
        state = PoolState()
        for _ in 1..<workers {
            let context = Unmanaged.passRetained(state).toOpaque()
            var thread = pthread_t()
            let status = pthread_create(&thread, nil, { context in
                Unmanaged<PoolState>.fromOpaque(context!).takeRetainedValue().workLoop()
                return nil
            }, context)
            precondition(status == 0, "WorkerPool: pthread_create failed with error \(status)")
            threads.append(thread)
        }
    }

    deinit {
        shutdown()
    }

    /// Runs body(0), ..., body(parts - 1) in parallel and returns when all have finished.
    public func run(parts: Int, _ body: @Sendable (Int) -> Void) {
        precondition(parts >= 0, "WorkerPool.run: negative part count \(parts)")
        guard parts > 0 else { return }
        runLock.lock()
        defer { runLock.unlock() }
        // The job holds `body` only until every part has finished (workUntilDone drops it).
        withoutActuallyEscaping(body) { body in
            state.start(parts: parts, body: body)
            state.workUntilDone()
        }
    }

    /// Stops and joins the worker threads; idempotent. `run` must not be called afterwards.
    public func shutdown() {
        runLock.lock()
        defer { runLock.unlock() }
        state.stop()
        for thread in threads {
            pthread_join(thread, nil)
        }
        threads.removeAll()
    }
}

/// The job shared between the pool's threads; every field is guarded by `mutex`.
// @unchecked: every mutable field is read and written with `mutex` held.
private final class PoolState: @unchecked Sendable {
    private let mutex = PthreadMutex()
    private let jobAvailable = PthreadCondition()
    private let jobFinished = PthreadCondition()
    private var body: (@Sendable (Int) -> Void)?
    private var parts = 0
    private var nextPart = 0
    private var finishedParts = 0
    private var generation = 0
    private var stopping = false

    func start(parts: Int, body: @escaping @Sendable (Int) -> Void) {
        mutex.lock()
        precondition(!stopping, "WorkerPool.run called after shutdown")
        self.body = body
        self.parts = parts
        nextPart = 0
        finishedParts = 0
        generation += 1
        jobAvailable.broadcast()
        mutex.unlock()
    }

    func stop() {
        mutex.lock()
        stopping = true
        jobAvailable.broadcast()
        mutex.unlock()
    }

    /// The caller's share: take parts until none are left, then wait for the others to finish theirs.
    func workUntilDone() {
        mutex.lock()
        takeParts()
        while finishedParts < parts {
            jobFinished.wait(mutex)
        }
        body = nil
        mutex.unlock()
    }

    func workLoop() {
        mutex.lock()
        // Threads start before any job exists; reading `generation` here instead could skip a job
        // published before this thread got to run.
        var seenGeneration = 0
        while true {
            while generation == seenGeneration && !stopping {
                jobAvailable.wait(mutex)
            }
            if stopping { break }
            seenGeneration = generation
            takeParts()
        }
        mutex.unlock()
    }

    /// Runs unclaimed parts of the current job; called and returns with the mutex held.
    /// Releases the mutex around the call; the caller's reference to `body` ends with the call,
    /// before the part is counted as finished.
    private func runUnlocked(_ body: @Sendable (Int) -> Void, _ part: Int) {
        mutex.unlock()
        body(part)
    }

    private func takeParts() {
        while nextPart < parts {
            let part = nextPart
            nextPart += 1
            runUnlocked(body!, part)
            mutex.lock()
            finishedParts += 1
            if finishedParts == parts { jobFinished.signal() }
        }
    }
}

/// A failed pthread call means a corrupted or misused lock: nothing after it could be trusted.
private func checked(_ result: Int32, _ call: StaticString) {
    precondition(result == 0, "\(call) failed with error \(result)")
}

// @unchecked: a pthread mutex is made to be shared between threads; the pointer never changes.
private final class PthreadMutex: @unchecked Sendable {
    let raw = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    init() { checked(pthread_mutex_init(raw, nil), "pthread_mutex_init") }
    deinit {
        checked(pthread_mutex_destroy(raw), "pthread_mutex_destroy")
        raw.deallocate()
    }
    func lock() { checked(pthread_mutex_lock(raw), "pthread_mutex_lock") }
    func unlock() { checked(pthread_mutex_unlock(raw), "pthread_mutex_unlock") }
}

// @unchecked: a pthread condition variable is made to be shared between threads; the pointer never changes.
private final class PthreadCondition: @unchecked Sendable {
    let raw = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)
    init() { checked(pthread_cond_init(raw, nil), "pthread_cond_init") }
    deinit {
        checked(pthread_cond_destroy(raw), "pthread_cond_destroy")
        raw.deallocate()
    }
    func wait(_ mutex: PthreadMutex) { checked(pthread_cond_wait(raw, mutex.raw), "pthread_cond_wait") }
    func signal() { checked(pthread_cond_signal(raw), "pthread_cond_signal") }
    func broadcast() { checked(pthread_cond_broadcast(raw), "pthread_cond_broadcast") }
}
