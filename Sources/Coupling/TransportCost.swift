#if arch(x86_64)
import CouplingAVX512
#endif
import NoiseKernel
import NoiseKernelCore

/// Squared Euclidean distances ||z_0 - ε||² between samples and candidate noise streams, over whole
/// samples, computed chunk by chunk so that only a chunk of every latent and candidate ε is held
/// (B·512 + M·512 floats and the B×M accumulators).
///
/// The cost is expanded as ||z||² + ||ε||² − 2 z·ε: one FMA per element and pair instead of a
/// subtraction and an FMA (the pairs' products are nearly all the work; the norms are once per row
/// and column), about twice as fast. Its rounding error is relative to ||z||² + ||ε||², not to the
/// cost: the chunks' f32 partials (512 elements, 64 per lane) are summed in Double, so a cost is
/// within about 1e-7 (||z||² + ||ε||²) of the exact one. For an independent noise the cost is about
/// that scale; only a z_0 lying almost on a candidate ε (cost far below the norms) loses relative
/// precision, and then still keeps the absolute precision that ranks it far below every other.
///
/// The order is fixed, so a cost is the same for any split into parts and any worker count:
/// chunks of `chunkElements` in element order; in each chunk the f32 dot products of `DotTiles`
/// (eight lanes a pair, the same bits in 256- and 512-bit vectors, so also on any machine);
/// each chunk's three partials widened to Double and added to per-row ||z||², per-column ||ε||² and
/// per-pair z·ε totals in chunk order; at the end cost = (||z||² + ||ε||²) − 2 z·ε in Double.
public struct TransportCost: Sendable {
    /// Elements per chunk: part of the definition of a cost (it sets where f32 sums are widened).
    public static let chunkElements = 512
    public let stream: NoiseStream
    /// The instruction sets of the noise fills and the dot tiles; every one gives the same costs.
    public let implementation: NoiseKernel.Implementation

    public init(stream: NoiseStream, implementation: NoiseKernel.Implementation = .best) {
        precondition(implementation.isAvailable, "TransportCost: \(implementation) is not available on this CPU")
        (self.stream, self.implementation) = (stream, implementation)
    }

    private var wideTiles: Bool { implementation == .avx512 || implementation == .avx512bf16 }

    /// out[r] += ||x_r||² over the chunk for `rows` rows of a scratch.
    private func squares(_ x: UnsafeMutablePointer<Float>, rows: Int, count: Int, into out: UnsafeMutablePointer<Double>) {
        #if arch(x86_64)
        if wideTiles { return DotTiles16.squares(x, stride: Self.chunkElements, rows: rows, count: count, into: out) }
        #endif
        for row in 0..<rows {
            let start = UnsafePointer(x + row * Self.chunkElements)
            out[row] += Double(DotTiles.dot(start, start, count: count))
        }
    }

    /// ze[r * width + c] += z_r · ε_c for the chunk's rows and columns.
    private func block(_ scratch: ChunkScratch, rows: Int, columns: Int, count: Int) {
        let (z, e, chunk) = (UnsafePointer(scratch.z(0)), UnsafePointer(scratch.eps(0)), Self.chunkElements)
        #if arch(x86_64)
        if wideTiles {
            DotTiles16.block(z, zStride: chunk, rows: rows, e, eStride: chunk, columns: columns, count: count,
                             into: scratch.ze, outStride: columns, pairedRows: scratch.pairedLatents)
            return
        }
        #endif
        DotTiles.block(z, zStride: chunk, rows: rows, e, eStride: chunk, columns: columns, count: count,
                       into: scratch.ze, outStride: columns)
    }

    /// Contiguous ranges of `count` columns (or rows), one per part, for splitting a matrix over
    /// workers; trailing ranges are empty when there are fewer than `parts`.
    public static func ranges(count: Int, parts: Int) -> [Range<Int>] {
        precondition(parts > 0 && count >= 0, "TransportCost.ranges: \(count) over \(parts) parts")
        let size = (count + parts - 1) / parts
        return (0..<parts).map { min($0 * size, count)..<min(($0 + 1) * size, count) }
    }

    /// The B × M matrix of every sample against every candidate stream, on this thread.
    public func matrix(_ samples: LatentSamples, candidates: [UInt64]) -> CostMatrix {
        var values = [Double](repeating: 0, count: samples.count * candidates.count)
        values.withUnsafeMutableBufferPointer { out in
            candidates.withUnsafeBufferPointer { ids in fill(out, samples, candidates: ids, columns: 0..<ids.count) }
        }
        return CostMatrix(rows: samples.count, columns: candidates.count, values: values)
    }

    /// Writes columns `columns` of the B × M matrix into `out` (row-major, B·M values): the part of
    /// one worker. Parts with disjoint column ranges may run at once on one `out`; each generates
    /// only its own candidates' ε.
    public func fill(
        _ out: UnsafeMutableBufferPointer<Double>, _ samples: LatentSamples, candidates: UnsafeBufferPointer<UInt64>,
        columns: Range<Int>
    ) {
        let rows = samples.count, width = columns.count, total = candidates.count
        precondition(columns.lowerBound >= 0 && columns.upperBound <= total,
                     "TransportCost.fill: columns \(columns) outside 0..<\(total)")
        precondition(out.count >= rows * total, "TransportCost.fill: \(out.count) values for \(rows) x \(total)")
        guard rows > 0, width > 0 else { return }
        let scratch = ChunkScratch(rows: rows, columns: width)
        defer { scratch.deallocate() }
        let chunk = Self.chunkElements
        for start in stride(from: 0, to: samples.elementsPerSample, by: chunk) {
            let elements = start..<min(start + chunk, samples.elementsPerSample)
            let count = scratch.paddedCount(elements.count)
            for row in 0..<rows { scratch.loadLatent(samples, row: row, elements: elements, into: scratch.z(row)) }
            for column in 0..<width {
                scratch.fillEps(stream, implementation, noiseID: candidates[columns.lowerBound + column], elements: elements,
                                into: scratch.eps(column))
            }
            squares(scratch.z(0), rows: rows, count: count, into: scratch.zz)
            squares(scratch.eps(0), rows: width, count: count, into: scratch.ee)
            block(scratch, rows: rows, columns: width, count: count)
        }
        for row in 0..<rows {
            for column in 0..<width {
                out[row * total + columns.lowerBound + column] =
                    (scratch.zz[row] + scratch.ee[column]) - 2 * scratch.ze[row * width + column]
            }
        }
    }

    /// The B × k matrix of each sample against its own k candidates (`NearestCandidate.noiseID`), on this
    /// thread. Entry (i, c) equals `matrix`'s entry for sample i and stream NearestCandidate.noiseID(n_i, candidate: c).
    public func candidateCosts(_ samples: LatentSamples, noiseIDs: [UInt64], candidates: Int) -> CostMatrix {
        var values = [Double](repeating: 0, count: samples.count * candidates)
        values.withUnsafeMutableBufferPointer { out in
            noiseIDs.withUnsafeBufferPointer { ids in
                fillCandidates(out, samples, noiseIDs: ids, candidates: candidates, rows: 0..<samples.count)
            }
        }
        return CostMatrix(rows: samples.count, columns: candidates, values: values)
    }

    /// Writes rows `rows` of the B × k candidate matrix into `out` (row-major, B·k values): the
    /// part of one worker; parts with disjoint row ranges may run at once.
    public func fillCandidates(
        _ out: UnsafeMutableBufferPointer<Double>, _ samples: LatentSamples, noiseIDs: UnsafeBufferPointer<UInt64>,
        candidates: Int, rows: Range<Int>
    ) {
        precondition(candidates >= 1 && candidates <= NearestCandidate.maximumCandidates,
                     "TransportCost.fillCandidates: \(candidates) candidates outside 1...\(NearestCandidate.maximumCandidates)")
        precondition(noiseIDs.count >= samples.count, "TransportCost.fillCandidates: \(noiseIDs.count) noise ids for \(samples.count) samples")
        precondition(rows.lowerBound >= 0 && rows.upperBound <= samples.count,
                     "TransportCost.fillCandidates: rows \(rows) outside 0..<\(samples.count)")
        precondition(out.count >= samples.count * candidates, "TransportCost.fillCandidates: \(out.count) values for \(samples.count) x \(candidates)")
        guard !rows.isEmpty else { return }
        let scratch = ChunkScratch(rows: 1, columns: candidates)
        defer { scratch.deallocate() }
        let chunk = Self.chunkElements
        for row in rows {
            scratch.reset()
            for start in stride(from: 0, to: samples.elementsPerSample, by: chunk) {
                let elements = start..<min(start + chunk, samples.elementsPerSample)
                let count = scratch.paddedCount(elements.count)
                scratch.loadLatent(samples, row: row, elements: elements, into: scratch.z(0))
                for candidate in 0..<candidates {
                    scratch.fillEps(stream, implementation, noiseID: NearestCandidate.noiseID(noiseIDs[row], candidate: candidate),
                                    elements: elements, into: scratch.eps(candidate))
                }
                squares(scratch.z(0), rows: 1, count: count, into: scratch.zz)
                squares(scratch.eps(0), rows: candidates, count: count, into: scratch.ee)
                block(scratch, rows: 1, columns: candidates, count: count)
            }
            for candidate in 0..<candidates {
                out[row * candidates + candidate] = (scratch.zz[0] + scratch.ee[candidate]) - 2 * scratch.ze[candidate]
            }
        }
    }
}

/// One part's chunk of every latent and candidate ε (f32, rows of `chunkElements`) and its Double
/// totals.
private struct ChunkScratch {
    let latents: UnsafeMutablePointer<Float>
    /// The latents again, rows paired for the 512-bit tiles (`DotTiles16.block`).
    let pairedLatents: UnsafeMutablePointer<Float>
    let noise: UnsafeMutablePointer<Float>
    let zz: UnsafeMutablePointer<Double>
    let ee: UnsafeMutablePointer<Double>
    let ze: UnsafeMutablePointer<Double>
    let rows: Int, columns: Int
    private var chunk: Int { TransportCost.chunkElements }

    init(rows: Int, columns: Int) {
        (self.rows, self.columns) = (rows, columns)
        latents = .allocate(capacity: rows * TransportCost.chunkElements)
        pairedLatents = .allocate(capacity: rows * TransportCost.chunkElements)
        noise = .allocate(capacity: columns * TransportCost.chunkElements)
        zz = .allocate(capacity: rows)
        ee = .allocate(capacity: columns)
        ze = .allocate(capacity: rows * columns)
        latents.initialize(repeating: 0, count: rows * TransportCost.chunkElements)
        noise.initialize(repeating: 0, count: columns * TransportCost.chunkElements)
        reset()
    }

    func reset() {
        zz.initialize(repeating: 0, count: rows)
        ee.initialize(repeating: 0, count: columns)
        ze.initialize(repeating: 0, count: rows * columns)
    }

    func z(_ row: Int) -> UnsafeMutablePointer<Float> { latents + row * chunk }
    func eps(_ column: Int) -> UnsafeMutablePointer<Float> { noise + column * chunk }

    /// A chunk's length rounded up to the eight lanes of the order; the loads below zero the padding.
    func paddedCount(_ count: Int) -> Int { (count + 7) & ~7 }

    func loadLatent(_ samples: LatentSamples, row: Int, elements: Range<Int>, into target: UnsafeMutablePointer<Float>) {
        let base = samples.bytes.baseAddress!
        let first = row * samples.elementsPerSample + elements.lowerBound
        let count = elements.count
        switch samples.type {
        case .f32:
            UnsafeMutableRawPointer(target).copyMemory(from: base + first * 4, byteCount: count * 4)
        case .f16:
            let source = base + first * 2
            for index in 0..<count { target[index] = Float(source.loadUnaligned(fromByteOffset: index * 2, as: Float16.self)) }
        case .bf16:
            let source = base + first * 2
            for index in 0..<count {
                target[index] = BFloat16Bits.float(source.loadUnaligned(fromByteOffset: index * 2, as: UInt16.self))
            }
        }
        for index in count..<paddedCount(count) { target[index] = 0 }
    }

    func fillEps(
        _ stream: NoiseStream, _ implementation: NoiseKernel.Implementation, noiseID: UInt64, elements: Range<Int>,
        into target: UnsafeMutablePointer<Float>
    ) {
        stream.fill(noiseID: noiseID, elements: elements, into: UnsafeMutableBufferPointer(start: target, count: elements.count),
                    implementation: implementation)
        for index in elements.count..<paddedCount(elements.count) { target[index] = 0 }
    }

    func deallocate() {
        latents.deallocate()
        pairedLatents.deallocate()
        noise.deallocate()
        zz.deallocate()
        ee.deallocate()
        ze.deallocate()
    }
}
