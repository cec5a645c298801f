#if arch(x86_64)
import _Builtin_intrinsics.intel
#endif

/// f32 dot products of element chunks, register-blocked. Every pair is summed the same way
/// whatever tile computes it: element e goes to lane e mod 8 of one accumulator, which starts at
/// zero and takes one fused multiply-add per eight elements in element order; the eight lanes are
/// then added as (l + l+4), then (l + l+2), then lane 0 + lane 1 (`laneSum`). So a cost does not
/// depend on how a matrix is split into tiles or parts, nor on the vector width: `DotTiles16`
/// (AVX-512) keeps the same order with two pairs in each 512-bit accumulator.
///
/// Chunks are zero-padded to a multiple of eight elements (the padding adds exact zeros).
enum DotTiles {
    @inline(__always)
    static func fma(_ a: SIMD8<Float>, _ b: SIMD8<Float>, _ c: SIMD8<Float>) -> SIMD8<Float> {
        #if arch(x86_64)
        _mm256_fmadd_ps(a, b, c)
        #else
        SIMD8(
            c[0].addingProduct(a[0], b[0]), c[1].addingProduct(a[1], b[1]),
            c[2].addingProduct(a[2], b[2]), c[3].addingProduct(a[3], b[3]),
            c[4].addingProduct(a[4], b[4]), c[5].addingProduct(a[5], b[5]),
            c[6].addingProduct(a[6], b[6]), c[7].addingProduct(a[7], b[7]))
        #endif
    }

    @inline(__always)
    static func load(_ base: UnsafePointer<Float>, _ index: Int) -> SIMD8<Float> {
        UnsafeRawPointer(base + index).loadUnaligned(as: SIMD8<Float>.self)
    }

    @inline(__always)
    static func laneSum(_ x: SIMD8<Float>) -> Float {
        let half = x.lowHalf + x.highHalf
        let quarter = half.lowHalf + half.highHalf
        return quarter[0] + quarter[1]
    }

    /// dot(a, b) over `count` (a multiple of 8) elements.
    static func dot(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, count: Int) -> Float {
        var acc = SIMD8<Float>()
        var k = 0
        while k < count {
            acc = fma(load(a, k), load(b, k), acc)
            k &+= 8
        }
        return laneSum(acc)
    }

    /// Adds Double(dot(z_r, e_c)) to out[r * outStride + c] for three rows of z (stride `zStride`)
    /// and four of e (stride `eStride`): twelve accumulators and three z vectors in registers, the
    /// e vectors streamed, so each step does twelve FMAs for seven loads.
    @inline(never)
    static func tile3x4(
        _ z: UnsafePointer<Float>, zStride: Int, _ e: UnsafePointer<Float>, eStride: Int, count: Int,
        into out: UnsafeMutablePointer<Double>, outStride: Int
    ) {
        let z1 = z + zStride, z2 = z + 2 &* zStride
        let e1 = e + eStride, e2 = e + 2 &* eStride, e3 = e + 3 &* eStride
        var a00 = SIMD8<Float>(), a01 = SIMD8<Float>(), a02 = SIMD8<Float>(), a03 = SIMD8<Float>()
        var a10 = SIMD8<Float>(), a11 = SIMD8<Float>(), a12 = SIMD8<Float>(), a13 = SIMD8<Float>()
        var a20 = SIMD8<Float>(), a21 = SIMD8<Float>(), a22 = SIMD8<Float>(), a23 = SIMD8<Float>()
        var k = 0
        while k < count {
            let x0 = load(z, k), x1 = load(z1, k), x2 = load(z2, k)
            let y0 = load(e, k)
            a00 = fma(x0, y0, a00); a10 = fma(x1, y0, a10); a20 = fma(x2, y0, a20)
            let y1 = load(e1, k)
            a01 = fma(x0, y1, a01); a11 = fma(x1, y1, a11); a21 = fma(x2, y1, a21)
            let y2 = load(e2, k)
            a02 = fma(x0, y2, a02); a12 = fma(x1, y2, a12); a22 = fma(x2, y2, a22)
            let y3 = load(e3, k)
            a03 = fma(x0, y3, a03); a13 = fma(x1, y3, a13); a23 = fma(x2, y3, a23)
            k &+= 8
        }
        let r1 = out + outStride, r2 = out + 2 &* outStride
        out[0] += Double(laneSum(a00)); out[1] += Double(laneSum(a01))
        out[2] += Double(laneSum(a02)); out[3] += Double(laneSum(a03))
        r1[0] += Double(laneSum(a10)); r1[1] += Double(laneSum(a11))
        r1[2] += Double(laneSum(a12)); r1[3] += Double(laneSum(a13))
        r2[0] += Double(laneSum(a20)); r2[1] += Double(laneSum(a21))
        r2[2] += Double(laneSum(a22)); r2[3] += Double(laneSum(a23))
    }

    /// One row of z against four of e, adding into out[0..<4].
    @inline(never)
    static func tile1x4(
        _ z: UnsafePointer<Float>, _ e: UnsafePointer<Float>, eStride: Int, count: Int, into out: UnsafeMutablePointer<Double>
    ) {
        let e1 = e + eStride, e2 = e + 2 &* eStride, e3 = e + 3 &* eStride
        var a0 = SIMD8<Float>(), a1 = SIMD8<Float>(), a2 = SIMD8<Float>(), a3 = SIMD8<Float>()
        var k = 0
        while k < count {
            let x = load(z, k)
            a0 = fma(x, load(e, k), a0)
            a1 = fma(x, load(e1, k), a1)
            a2 = fma(x, load(e2, k), a2)
            a3 = fma(x, load(e3, k), a3)
            k &+= 8
        }
        out[0] += Double(laneSum(a0)); out[1] += Double(laneSum(a1))
        out[2] += Double(laneSum(a2)); out[3] += Double(laneSum(a3))
    }

    /// out[r * outStride + c] += dot(z_r, e_c) for `rows` rows of z and `columns` of e, by tiles
    /// of 3 x 4, then 1 x 4 for the last rows, then single products for the last columns.
    static func block(
        _ z: UnsafePointer<Float>, zStride: Int, rows: Int, _ e: UnsafePointer<Float>, eStride: Int, columns: Int,
        count: Int, into out: UnsafeMutablePointer<Double>, outStride: Int
    ) {
        let fullColumns = columns - columns % 4
        var c = 0
        // Four e rows (a few KiB) stay in L1 while all z rows stream past them.
        while c < fullColumns {
            var r = 0
            while r + 3 <= rows {
                tile3x4(z + r * zStride, zStride: zStride, e + c * eStride, eStride: eStride, count: count,
                        into: out + r * outStride + c, outStride: outStride)
                r += 3
            }
            while r < rows {
                tile1x4(z + r * zStride, e + c * eStride, eStride: eStride, count: count, into: out + r * outStride + c)
                r += 1
            }
            c += 4
        }
        for r in 0..<rows {
            for c in fullColumns..<columns {
                out[r * outStride + c] += Double(dot(z + r * zStride, e + c * eStride, count: count))
            }
        }
    }
}
