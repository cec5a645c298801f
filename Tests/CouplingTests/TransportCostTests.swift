import Coupling
import NoiseKernel
import NoiseKernelCore
import NoisedTestSupport
import XCTest

final class TransportCostTests: XCTestCase {
    private let stream = NoiseStream(seed: 0x5EED_C0DE)

    /// `count` samples of `elements`, stored as `type`, some of them near a noise of the stream.
    private func latents(_ count: Int, _ elements: Int, _ type: ElementType, seed: UInt64) -> [UInt8] {
        var random = SplitMix64(seed: seed)
        var bytes = [UInt8](repeating: 0, count: count * elements * type.byteCount)
        var eps = [Float](repeating: 0, count: elements)
        bytes.withUnsafeMutableBytes { raw in
            for sample in 0..<count {
                let nearNoise = sample % 2 == 1
                if nearNoise {
                    eps.withUnsafeMutableBufferPointer { stream.fill(noiseID: UInt64(100 + sample), elements: 0..<elements, into: $0) }
                }
                for element in 0..<elements {
                    let jitter = Float(random.uniform() * 4 - 2)
                    let value = nearNoise ? eps[element] + jitter * 0.1 : jitter
                    type.store(value, to: raw.baseAddress!, at: sample * elements + element)
                }
            }
        }
        return bytes
    }

    /// Σ (z − ε)² in Double, from whole-sample fills, and the scale ||z||² + ||ε||² its rounding
    /// error is relative to.
    private func naiveCost(_ bytes: [UInt8], _ type: ElementType, sample: Int, elements: Int, noiseID: UInt64) -> (Double, Double) {
        var eps = [Float](repeating: 0, count: elements)
        eps.withUnsafeMutableBufferPointer { stream.fill(noiseID: noiseID, elements: 0..<elements, into: $0) }
        return bytes.withUnsafeBytes { raw in
            (0..<elements).reduce((0.0, 0.0)) { sum, element in
                let z = Double(type.load(from: raw.baseAddress!, at: sample * elements + element)), e = Double(eps[element])
                return (sum.0 + (z - e) * (z - e), sum.1 + z * z + e * e)
            }
        }
    }

    private func matrix(_ bytes: [UInt8], _ type: ElementType, count: Int, elements: Int, candidates: [UInt64], parts: Int) -> CostMatrix {
        let cost = TransportCost(stream: stream)
        var values = [Double](repeating: .nan, count: count * candidates.count)
        bytes.withUnsafeBytes { raw in
            let samples = LatentSamples(count: count, elementsPerSample: elements, bytes: raw, type: type)
            values.withUnsafeMutableBufferPointer { out in
                candidates.withUnsafeBufferPointer { ids in
                    // Parts in reverse order: the result may not depend on which part runs first.
                    for columns in TransportCost.ranges(count: candidates.count, parts: parts).reversed() {
                        cost.fill(out, samples, candidates: ids, columns: columns)
                    }
                }
            }
        }
        return CostMatrix(rows: count, columns: candidates.count, values: values)
    }

    func testMatchesNaiveDoubleForEveryInputType() {
        // 1003: a partial last chunk that is not whole vectors; 1024: whole chunks.
        for (type, elements) in [(ElementType.f32, 1003), (.f16, 1024), (.bf16, 1003), (.f32, 5), (.bf16, 2048 + 64)] {
            let count = 7
            let bytes = latents(count, elements, type, seed: UInt64(elements))
            let candidates: [UInt64] = (0..<9).map { UInt64(100 + $0) }
            let costs = matrix(bytes, type, count: count, elements: elements, candidates: candidates, parts: 1)
            for i in 0..<count {
                for (j, id) in candidates.enumerated() {
                    let (expected, scale) = naiveCost(bytes, type, sample: i, elements: elements, noiseID: id)
                    // Within 1e-6 of ||z||² + ||ε||²: 1e-6 relative for an independent pair (cost ≈ scale),
                    // looser relative to the cost when z_0 lies near the noise (odd samples, their own id).
                    XCTAssertEqual(costs[i, j], expected, accuracy: 1e-6 * scale, "\(type) D=\(elements) (\(i), \(j))")
                    if i % 2 == 0 || id != UInt64(100 + i) {
                        XCTAssertEqual(costs[i, j], expected, accuracy: 1e-5 * expected, "\(type) D=\(elements) (\(i), \(j))")
                    }
                }
            }
        }
    }

    func testPlantedNoiseIsCheapest() throws {
        // Odd samples were built from noise 100 + sample: the assignment must give each its own.
        let (count, elements) = (12, 1500)
        let bytes = latents(count, elements, .f32, seed: 4)
        let candidates = (0..<count).map { UInt64(100 + $0) }
        let costs = matrix(bytes, .f32, count: count, elements: elements, candidates: candidates, parts: 2)
        let assignment = try LinearAssignment.solve(costs)
        for sample in stride(from: 1, to: count, by: 2) { XCTAssertEqual(assignment[sample], sample) }
        XCTAssertLessThanOrEqual(costs.meanCost(pairing: assignment), costs.meanCost(pairing: Array(0..<count)))
    }

    func testIdenticalForAnySplitIntoParts() {
        let (count, elements) = (10, 2000)
        let bytes = latents(count, elements, .bf16, seed: 9)
        let candidates = (0..<11).map { UInt64($0 * 3) }
        let one = matrix(bytes, .bf16, count: count, elements: elements, candidates: candidates, parts: 1)
        XCTAssertFalse(one.values.contains { $0.isNaN })
        for parts in [2, 3, 5, 11, 16] {
            // Bit for bit, not within a tolerance.
            XCTAssertEqual(matrix(bytes, .bf16, count: count, elements: elements, candidates: candidates, parts: parts).values.map(\.bitPattern),
                           one.values.map(\.bitPattern), "\(parts) parts")
        }
    }

    func testCandidateCostsEqualTheMatrixEntriesOfTheirStreams() {
        let (count, elements, k) = (5, 1100, 6)
        let bytes = latents(count, elements, .f16, seed: 21)
        let noiseIDs: [UInt64] = [0, 1, 100, 1 << 40, .max >> 8]
        let cost = TransportCost(stream: stream)
        bytes.withUnsafeBytes { raw in
            let samples = LatentSamples(count: count, elementsPerSample: elements, bytes: raw, type: .f16)
            let perSample = cost.candidateCosts(samples, noiseIDs: noiseIDs, candidates: k)
            for sample in 0..<count {
                let ids = (0..<k).map { NearestCandidate.noiseID(noiseIDs[sample], candidate: $0) }
                let full = cost.matrix(samples, candidates: ids)
                for candidate in 0..<k {
                    XCTAssertEqual(perSample[sample, candidate].bitPattern, full[sample, candidate].bitPattern)
                }
            }
            // Rows split over parts give the same bits.
            var split = [Double](repeating: .nan, count: count * k)
            split.withUnsafeMutableBufferPointer { out in
                noiseIDs.withUnsafeBufferPointer { ids in
                    for rows in TransportCost.ranges(count: count, parts: 3) {
                        cost.fillCandidates(out, samples, noiseIDs: ids, candidates: k, rows: rows)
                    }
                }
            }
            XCTAssertEqual(split.map(\.bitPattern), perSample.values.map(\.bitPattern))
        }
    }

    func testNearestCandidatePicksTheArgminAndItsOwnPlantedStream() throws {
        XCTAssertEqual(try NearestCandidate.choose(CostMatrix(rows: 3, columns: 4, values: [
            4, 3, 2, 1,
            1, 1, 0.5, 0.5,
            2, 2, 2, 2,
        ])), [3, 2, 0])
        XCTAssertEqual(try NearestCandidate.choose(CostMatrix(rows: 2, columns: 1, values: [5, 6])), [0, 0])
        XCTAssertThrowsError(try NearestCandidate.choose(CostMatrix(rows: 1, columns: 2, values: [1, .nan])))
        // A sample built from candidate 3's stream takes candidate 3.
        let elements = 700
        let id = NearestCandidate.noiseID(42, candidate: 3)
        var z = [Float](repeating: 0, count: elements)
        z.withUnsafeMutableBufferPointer { stream.fill(noiseID: id, elements: 0..<elements, into: $0) }
        let costs = z.withUnsafeBytes { raw in
            TransportCost(stream: stream).candidateCosts(
                LatentSamples(count: 1, elementsPerSample: elements, bytes: raw, type: .f32), noiseIDs: [42], candidates: 8)
        }
        XCTAssertEqual(try NearestCandidate.choose(costs), [3])
        XCTAssertEqual(costs[0, 3], 0, accuracy: 1e-3)
    }

    func testCandidateNoiseIDRule() {
        XCTAssertEqual(NearestCandidate.noiseID(12345, candidate: 0), 12345)
        XCTAssertEqual(NearestCandidate.noiseID(12345, candidate: 1), 12345 | (1 << 56))
        XCTAssertEqual(NearestCandidate.noiseID(.max, candidate: 15), .max ^ (15 << 56))
        // Bits 60-63 stay the fan-out output's.
        XCTAssertEqual(NearestCandidate.maximumCandidates, 16)
    }

    func testZeroElementsCostNothing() {
        let costs = [UInt8]().withUnsafeBytes { raw in
            TransportCost(stream: stream).matrix(LatentSamples(count: 2, elementsPerSample: 0, bytes: raw, type: .f32), candidates: [1, 2])
        }
        XCTAssertEqual(costs.values, [0, 0, 0, 0])
    }
}
