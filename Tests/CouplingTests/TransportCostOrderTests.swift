import Coupling
import NoiseKernel
import NoiseKernelCore
import NoisedTestSupport
import XCTest

/// The costs follow the documented order bit for bit, whatever vector width computes them: the
/// 256-bit and 512-bit dot tiles, any split into parts.
final class TransportCostOrderTests: XCTestCase {
    private let stream = NoiseStream(seed: 0x0DD5_12E5)
    private let available = NoiseKernel.Implementation.allCases.filter(\.isAvailable)

    /// Awkward shapes: B and M that leave every remainder of the tiles (rows after the 12- and
    /// 3-row tiles, a lone odd row, columns after the 4-wide tiles), D not a multiple of 8 or 512
    /// (a partial last chunk and a partial last vector), D below one vector.
    private let shapes: [(samples: Int, candidates: Int, elements: Int)] = [
        (13, 11, 1003), (7, 9, 531), (19, 23, 1500), (25, 8, 600), (16, 4, 520), (14, 5, 100), (5, 3, 17), (3, 5, 5), (1, 1, 2048 + 40),
    ]

    /// Values spread over a few binades, so that any change of summation order changes some bits.
    private func latents(_ count: Int, _ elements: Int, _ type: ElementType, seed: UInt64) -> [UInt8] {
        var random = SplitMix64(seed: seed)
        var bytes = [UInt8](repeating: 0, count: count * elements * type.byteCount)
        bytes.withUnsafeMutableBytes { raw in
            for index in 0..<count * elements {
                let value = Float(random.uniform() * 6 - 3) * Float(1 << random.below(4))
                type.store(value, to: raw.baseAddress!, at: index)
            }
        }
        return bytes
    }

    private func matrix(
        _ cost: TransportCost, _ bytes: [UInt8], _ type: ElementType, count: Int, elements: Int, candidates: [UInt64], parts: Int
    ) -> [UInt64] {
        var values = [Double](repeating: .nan, count: count * candidates.count)
        bytes.withUnsafeBytes { raw in
            let samples = LatentSamples(count: count, elementsPerSample: elements, bytes: raw, type: type)
            values.withUnsafeMutableBufferPointer { out in
                candidates.withUnsafeBufferPointer { ids in
                    for columns in TransportCost.ranges(count: candidates.count, parts: parts).reversed() {
                        cost.fill(out, samples, candidates: ids, columns: columns)
                    }
                }
            }
        }
        return values.map(\.bitPattern)
    }

    /// The order of docs/noise-stream.md written out one element at a time: chunks of 512;
    /// element e of a chunk into lane e mod 8 by a fused multiply-add; lanes added as
    /// (l + l+4), (l + l+2), lane 0 + lane 1; the chunk sums widened and added in chunk order;
    /// C = (||z||² + ||ε||²) − 2 z·ε.
    private func referenceCost(_ z: [Float], _ eps: [Float]) -> Double {
        func tree(_ lanes: [Float]) -> Float {
            var width = 8, x = lanes
            while width > 1 {
                width /= 2
                for l in 0..<width { x[l] = x[l] + x[l + width] }
            }
            return x[0]
        }
        var (zz, ee, ze) = (0.0, 0.0, 0.0)
        for start in stride(from: 0, to: z.count, by: TransportCost.chunkElements) {
            var (a, b, c) = ([Float](repeating: 0, count: 8), [Float](repeating: 0, count: 8), [Float](repeating: 0, count: 8))
            for e in start..<min(start + TransportCost.chunkElements, z.count) {
                let lane = (e - start) % 8
                a[lane] = a[lane].addingProduct(z[e], z[e])
                b[lane] = b[lane].addingProduct(eps[e], eps[e])
                c[lane] = c[lane].addingProduct(z[e], eps[e])
            }
            (zz, ee, ze) = (zz + Double(tree(a)), ee + Double(tree(b)), ze + Double(tree(c)))
        }
        return (zz + ee) - 2 * ze
    }

    func testEveryImplementationFollowsTheDocumentedOrder() {
        for (index, type) in [ElementType.f32, .f16, .bf16].enumerated() {
            let (count, m, elements) = (13, 7, 1003 + 16 * index)
            let bytes = latents(count, elements, type, seed: UInt64(31 + index))
            let candidates = (0..<m).map { UInt64(7 * $0 + 1) }
            var expected = [UInt64]()
            bytes.withUnsafeBytes { raw in
                for sample in 0..<count {
                    let z = (0..<elements).map { type.load(from: raw.baseAddress!, at: sample * elements + $0) }
                    for id in candidates {
                        var eps = [Float](repeating: 0, count: elements)
                        eps.withUnsafeMutableBufferPointer { stream.fill(noiseID: id, elements: 0..<elements, into: $0) }
                        expected.append(referenceCost(z, eps).bitPattern)
                    }
                }
            }
            for implementation in available {
                let cost = TransportCost(stream: stream, implementation: implementation)
                XCTAssertEqual(matrix(cost, bytes, type, count: count, elements: elements, candidates: candidates, parts: 2), expected,
                               "\(implementation) \(type)")
            }
        }
    }

    func testAVX2AndAVX512GiveIdenticalBitsForAnyPartCount() throws {
        try XCTSkipUnless(NoiseKernel.Implementation.avx512.isAvailable, "this CPU has no AVX-512")
        for type in [ElementType.f32, .f16, .bf16] {
            for (count, m, elements) in shapes {
                let bytes = latents(count, elements, type, seed: UInt64(count * 1000 + elements))
                let candidates = (0..<m).map { UInt64(1000 + 3 * $0) }
                let narrow = matrix(TransportCost(stream: stream, implementation: .avx2), bytes, type, count: count,
                                    elements: elements, candidates: candidates, parts: 1)
                XCTAssertFalse(narrow.contains { Double(bitPattern: $0).isNaN })
                for implementation in available {
                    let cost = TransportCost(stream: stream, implementation: implementation)
                    for parts in [1, 2, 3, m] {
                        XCTAssertEqual(matrix(cost, bytes, type, count: count, elements: elements, candidates: candidates, parts: parts),
                                       narrow, "\(implementation) \(type) \(count)x\(m) D=\(elements) \(parts) parts")
                    }
                }
            }
        }
    }

    func testCandidateCostsAreIdenticalAcrossImplementations() throws {
        try XCTSkipUnless(NoiseKernel.Implementation.avx512.isAvailable, "this CPU has no AVX-512")
        let (count, elements, k) = (9, 1555, 7)
        let bytes = latents(count, elements, .bf16, seed: 77)
        let noiseIDs = (0..<count).map { UInt64(5 * $0 + 2) }
        let costs = bytes.withUnsafeBytes { raw in
            let samples = LatentSamples(count: count, elementsPerSample: elements, bytes: raw, type: .bf16)
            return available.map {
                TransportCost(stream: stream, implementation: $0).candidateCosts(samples, noiseIDs: noiseIDs, candidates: k)
                    .values.map(\.bitPattern)
            }
        }
        for (implementation, values) in zip(available, costs) { XCTAssertEqual(values, costs[0], "\(implementation)") }
    }
}
