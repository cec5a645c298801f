#if arch(x86_64)
import _Builtin_intrinsics.intel

/// The f32 dot products of `Coupling`'s `DotTiles` in 512-bit vectors, for x86-64-v4 CPUs, with
/// the same bits: each pair keeps the fixed order of eight lanes (element e in lane e mod 8, one
/// fused multiply-add per eight elements in element order, then the lanes added as (l + l+4),
/// (l + l+2), lane 0 + lane 1), and one 512-bit accumulator holds two pairs: rows r and r + 1 of
/// z against one row of e, in its low and high eight lanes. Only `TransportCost` calls it, after
/// checking the CPU.
///
/// Chunks are zero-padded to a multiple of eight elements by the caller.
package enum DotTiles16 {
    @inline(__always)
    static func load(_ base: UnsafePointer<Float>, _ index: Int) -> SIMD8<Float> {
        UnsafeRawPointer(base + index).loadUnaligned(as: SIMD8<Float>.self)
    }

    /// Elements index ..< index + 8 of two rows, side by side.
    @inline(__always)
    static func load(_ low: UnsafePointer<Float>, _ high: UnsafePointer<Float>, _ index: Int) -> SIMD16<Float> {
        SIMD16(lowHalf: load(low, index), highHalf: load(high, index))
    }

    /// Elements index / 2 ..< index / 2 + 8 of a row pair in `paired` layout.
    @inline(__always)
    static func pair(_ base: UnsafePointer<Float>, _ index: Int) -> SIMD16<Float> {
        UnsafeRawPointer(base + index).loadUnaligned(as: SIMD16<Float>.self)
    }

    /// Rows 2p and 2p + 1 of z, eight elements of one then eight of the other, at paired + 2p·count
    /// for p < `pairs`: so that a row pair's vector is one load.
    static func pairRows(
        _ z: UnsafePointer<Float>, zStride: Int, pairs: Int, count: Int, into paired: UnsafeMutablePointer<Float>
    ) {
        for p in 0..<pairs {
            let low = z + 2 &* p &* zStride, target = paired + 2 &* p &* count
            var k = 0
            while k < count {
                let raw = UnsafeMutableRawPointer(target + 2 &* k)
                raw.storeBytes(of: load(low, k), as: SIMD8<Float>.self)
                raw.storeBytes(of: load(low + zStride, k), toByteOffset: 32, as: SIMD8<Float>.self)
                k &+= 8
            }
        }
    }

    /// Elements index ..< index + 8 of one row, twice.
    @inline(__always)
    static func broadcast(_ base: UnsafePointer<Float>, _ index: Int) -> SIMD16<Float> {
        let x = load(base, index)
        return SIMD16(lowHalf: x, highHalf: x)
    }

    @inline(__always)
    static func fma(_ a: SIMD16<Float>, _ b: SIMD16<Float>, _ c: SIMD16<Float>) -> SIMD16<Float> {
        _mm512_fmadd_ps(a, b, c)
    }

    /// The tree of eight lanes, as `DotTiles.laneSum`.
    @inline(__always)
    static func laneSum(_ x: SIMD8<Float>) -> Float {
        let four = x.lowHalf + x.highHalf
        let two = four.lowHalf + four.highHalf
        return two[0] + two[1]
    }

    /// The trees of the eight pairs in four accumulators, in whole-register shuffles, in the order
    /// a.low, a.high, b.low, b.high, c.low, ...: each step adds the same lanes as `laneSum`.
    @inline(__always)
    static func laneSums(_ a: SIMD16<Float>, _ b: SIMD16<Float>, _ c: SIMD16<Float>, _ d: SIMD16<Float>) -> SIMD8<Float> {
        // (l + l+4): the four lanes of each pair, a.low, a.high, b.low, b.high (then c, d).
        @inline(__always) func four(_ a: SIMD16<Float>, _ b: SIMD16<Float>) -> SIMD16<Float> {
            SIMD16(lowHalf: SIMD8(lowHalf: a.lowHalf.lowHalf, highHalf: a.highHalf.lowHalf),
                   highHalf: SIMD8(lowHalf: b.lowHalf.lowHalf, highHalf: b.highHalf.lowHalf))
                + SIMD16(lowHalf: SIMD8(lowHalf: a.lowHalf.highHalf, highHalf: a.highHalf.highHalf),
                         highHalf: SIMD8(lowHalf: b.lowHalf.highHalf, highHalf: b.highHalf.highHalf))
        }
        // (l + l+2): lanes (0, 1) and (2, 3) of each pair are 64-bit words 2k and 2k + 1.
        @inline(__always) func two(_ x: SIMD16<Float>) -> SIMD8<Float> {
            let words = unsafeBitCast(x, to: SIMD8<UInt64>.self)
            return unsafeBitCast(words.evenHalf, to: SIMD8<Float>.self) + unsafeBitCast(words.oddHalf, to: SIMD8<Float>.self)
        }
        // lane 0 + lane 1.
        let pairs = SIMD16(lowHalf: two(four(a, b)), highHalf: two(four(c, d)))
        return pairs.evenHalf + pairs.oddHalf
    }

    /// out[0..<4] += four sums widened to Double.
    @inline(__always)
    static func add(_ four: SIMD4<Float>, into out: UnsafeMutablePointer<Double>) {
        let row = UnsafeMutableRawPointer(out)
        let wide = SIMD4<Double>(Double(four[0]), Double(four[1]), Double(four[2]), Double(four[3]))
        row.storeBytes(of: row.loadUnaligned(as: SIMD4<Double>.self) + wide, as: SIMD4<Double>.self)
    }

    /// Rows r and r + 1 (the low and high halves of a, b, c, d) against four columns, into two
    /// rows of out.
    @inline(__always)
    static func add(
        _ a: SIMD16<Float>, _ b: SIMD16<Float>, _ c: SIMD16<Float>, _ d: SIMD16<Float>,
        into out: UnsafeMutablePointer<Double>, outStride: Int
    ) {
        let sums = laneSums(a, b, c, d)
        add(sums.evenHalf, into: out)
        add(sums.oddHalf, into: out + outStride)
    }

    /// dot(a, b) over `count` (a multiple of 8) elements.
    package static func dot(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, count: Int) -> Float {
        var acc = SIMD8<Float>()
        var k = 0
        while k < count {
            acc = _mm256_fmadd_ps(load(a, k), load(b, k), acc)
            k &+= 8
        }
        return laneSum(acc)
    }

    /// out[r] += Double(dot(x_r, x_r)) for `rows` rows of x (stride `stride`), eight rows at a
    /// time in four accumulators.
    package static func squares(
        _ x: UnsafePointer<Float>, stride: Int, rows: Int, count: Int, into out: UnsafeMutablePointer<Double>
    ) {
        var r = 0
        while r + 8 <= rows {
            let x0 = x + r &* stride, x2 = x0 + 2 &* stride, x4 = x0 + 4 &* stride, x6 = x0 + 6 &* stride
            var a0 = SIMD16<Float>(), a1 = SIMD16<Float>(), a2 = SIMD16<Float>(), a3 = SIMD16<Float>()
            var k = 0
            while k < count {
                let y0 = load(x0, x0 + stride, k), y1 = load(x2, x2 + stride, k)
                let y2 = load(x4, x4 + stride, k), y3 = load(x6, x6 + stride, k)
                a0 = fma(y0, y0, a0); a1 = fma(y1, y1, a1); a2 = fma(y2, y2, a2); a3 = fma(y3, y3, a3)
                k &+= 8
            }
            let sums = laneSums(a0, a1, a2, a3)
            add(sums.lowHalf, into: out + r)
            add(sums.highHalf, into: out + (r &+ 4))
            r &+= 8
        }
        while r < rows {
            out[r] += Double(dot(x + r &* stride, x + r &* stride, count: count))
            r &+= 1
        }
    }

    /// Adds Double(dot(z_r, e_c)) to out[r * outStride + c] for twelve rows of z (six row pairs
    /// of `paired`, `pairStride` floats apart) and four of e: twenty-four accumulators (two pairs
    /// each) and six z vectors in registers (31 of 32), the e vectors streamed, so each step of
    /// eight elements does twenty-four FMAs (48 pairs) for ten loads.
    @inline(never)
    static func tile12x4(
        _ z: UnsafePointer<Float>, pairStride: Int, _ e: UnsafePointer<Float>, eStride: Int, count: Int,
        into out: UnsafeMutablePointer<Double>, outStride: Int
    ) {
        let z1 = z + pairStride, z2 = z + 2 &* pairStride, z3 = z + 3 &* pairStride
        let z4 = z + 4 &* pairStride, z5 = z + 5 &* pairStride
        let e1 = e + eStride, e2 = e + 2 &* eStride, e3 = e + 3 &* eStride
        var a00 = SIMD16<Float>(), a01 = SIMD16<Float>(), a02 = SIMD16<Float>(), a03 = SIMD16<Float>()
        var a10 = SIMD16<Float>(), a11 = SIMD16<Float>(), a12 = SIMD16<Float>(), a13 = SIMD16<Float>()
        var a20 = SIMD16<Float>(), a21 = SIMD16<Float>(), a22 = SIMD16<Float>(), a23 = SIMD16<Float>()
        var a30 = SIMD16<Float>(), a31 = SIMD16<Float>(), a32 = SIMD16<Float>(), a33 = SIMD16<Float>()
        var a40 = SIMD16<Float>(), a41 = SIMD16<Float>(), a42 = SIMD16<Float>(), a43 = SIMD16<Float>()
        var a50 = SIMD16<Float>(), a51 = SIMD16<Float>(), a52 = SIMD16<Float>(), a53 = SIMD16<Float>()
        var k = 0
        while k < count {
            let j = 2 &* k
            let x0 = pair(z, j), x1 = pair(z1, j), x2 = pair(z2, j), x3 = pair(z3, j), x4 = pair(z4, j), x5 = pair(z5, j)
            let y0 = broadcast(e, k)
            a00 = fma(x0, y0, a00); a10 = fma(x1, y0, a10); a20 = fma(x2, y0, a20)
            a30 = fma(x3, y0, a30); a40 = fma(x4, y0, a40); a50 = fma(x5, y0, a50)
            let y1 = broadcast(e1, k)
            a01 = fma(x0, y1, a01); a11 = fma(x1, y1, a11); a21 = fma(x2, y1, a21)
            a31 = fma(x3, y1, a31); a41 = fma(x4, y1, a41); a51 = fma(x5, y1, a51)
            let y2 = broadcast(e2, k)
            a02 = fma(x0, y2, a02); a12 = fma(x1, y2, a12); a22 = fma(x2, y2, a22)
            a32 = fma(x3, y2, a32); a42 = fma(x4, y2, a42); a52 = fma(x5, y2, a52)
            let y3 = broadcast(e3, k)
            a03 = fma(x0, y3, a03); a13 = fma(x1, y3, a13); a23 = fma(x2, y3, a23)
            a33 = fma(x3, y3, a33); a43 = fma(x4, y3, a43); a53 = fma(x5, y3, a53)
            k &+= 8
        }
        let twoRows = 2 &* outStride
        add(a00, a01, a02, a03, into: out, outStride: outStride)
        add(a10, a11, a12, a13, into: out + twoRows, outStride: outStride)
        add(a20, a21, a22, a23, into: out + 2 &* twoRows, outStride: outStride)
        add(a30, a31, a32, a33, into: out + 3 &* twoRows, outStride: outStride)
        add(a40, a41, a42, a43, into: out + 4 &* twoRows, outStride: outStride)
        add(a50, a51, a52, a53, into: out + 5 &* twoRows, outStride: outStride)
    }

    /// Two row pairs of `paired` against four of e, adding into four rows of out.
    @inline(never)
    static func tile4x4(
        _ z: UnsafePointer<Float>, pairStride: Int, _ e: UnsafePointer<Float>, eStride: Int, count: Int,
        into out: UnsafeMutablePointer<Double>, outStride: Int
    ) {
        let z1 = z + pairStride
        let e1 = e + eStride, e2 = e + 2 &* eStride, e3 = e + 3 &* eStride
        var a0 = SIMD16<Float>(), a1 = SIMD16<Float>(), a2 = SIMD16<Float>(), a3 = SIMD16<Float>()
        var b0 = SIMD16<Float>(), b1 = SIMD16<Float>(), b2 = SIMD16<Float>(), b3 = SIMD16<Float>()
        var k = 0
        while k < count {
            let x0 = pair(z, 2 &* k), x1 = pair(z1, 2 &* k)
            let y0 = broadcast(e, k), y1 = broadcast(e1, k), y2 = broadcast(e2, k), y3 = broadcast(e3, k)
            a0 = fma(x0, y0, a0); a1 = fma(x0, y1, a1); a2 = fma(x0, y2, a2); a3 = fma(x0, y3, a3)
            b0 = fma(x1, y0, b0); b1 = fma(x1, y1, b1); b2 = fma(x1, y2, b2); b3 = fma(x1, y3, b3)
            k &+= 8
        }
        add(a0, a1, a2, a3, into: out, outStride: outStride)
        add(b0, b1, b2, b3, into: out + 2 &* outStride, outStride: outStride)
    }

    /// One row pair of `paired` against four of e, adding into two rows of out.
    @inline(never)
    static func tile2x4(
        _ z: UnsafePointer<Float>, _ e: UnsafePointer<Float>, eStride: Int, count: Int,
        into out: UnsafeMutablePointer<Double>, outStride: Int
    ) {
        let e1 = e + eStride, e2 = e + 2 &* eStride, e3 = e + 3 &* eStride
        var a0 = SIMD16<Float>(), a1 = SIMD16<Float>(), a2 = SIMD16<Float>(), a3 = SIMD16<Float>()
        var k = 0
        while k < count {
            let x = pair(z, 2 &* k)
            a0 = fma(x, broadcast(e, k), a0)
            a1 = fma(x, broadcast(e1, k), a1)
            a2 = fma(x, broadcast(e2, k), a2)
            a3 = fma(x, broadcast(e3, k), a3)
            k &+= 8
        }
        add(a0, a1, a2, a3, into: out, outStride: outStride)
    }

    /// The last row of an odd count against four of e, in 256-bit vectors (a lone row would fill
    /// only half of each 512-bit accumulator), adding into out[0..<4].
    @inline(never)
    static func tile1x4(
        _ z: UnsafePointer<Float>, _ e: UnsafePointer<Float>, eStride: Int, count: Int, into out: UnsafeMutablePointer<Double>
    ) {
        let e1 = e + eStride, e2 = e + 2 &* eStride, e3 = e + 3 &* eStride
        var a0 = SIMD8<Float>(), a1 = SIMD8<Float>(), a2 = SIMD8<Float>(), a3 = SIMD8<Float>()
        var k = 0
        while k < count {
            let x = load(z, k)
            a0 = _mm256_fmadd_ps(x, load(e, k), a0)
            a1 = _mm256_fmadd_ps(x, load(e1, k), a1)
            a2 = _mm256_fmadd_ps(x, load(e2, k), a2)
            a3 = _mm256_fmadd_ps(x, load(e3, k), a3)
            k &+= 8
        }
        add(SIMD4(laneSum(a0), laneSum(a1), laneSum(a2), laneSum(a3)), into: out)
    }

    /// out[r * outStride + c] += dot(z_r, e_c) for `rows` rows of z and `columns` of e, by tiles
    /// of 12 x 4, then 4 x 4, 2 x 4 and 1 x 4 for the last rows, then single products for the last
    /// columns. `pairedRows` (room for rows · count floats) takes the row pairs of z.
    package static func block(
        _ z: UnsafePointer<Float>, zStride: Int, rows: Int, _ e: UnsafePointer<Float>, eStride: Int, columns: Int,
        count: Int, into out: UnsafeMutablePointer<Double>, outStride: Int, pairedRows paired: UnsafeMutablePointer<Float>
    ) {
        let fullColumns = columns - columns % 4
        let pairStride = 2 * count
        pairRows(z, zStride: zStride, pairs: rows / 2, count: count, into: paired)
        var c = 0
        // Four e rows (a few KiB) stay in L1 while all z rows stream past them.
        while c < fullColumns {
            var r = 0
            while r + 12 <= rows {
                tile12x4(paired + r / 2 * pairStride, pairStride: pairStride, e + c * eStride, eStride: eStride, count: count,
                         into: out + r * outStride + c, outStride: outStride)
                r += 12
            }
            while r + 4 <= rows {
                tile4x4(paired + r / 2 * pairStride, pairStride: pairStride, e + c * eStride, eStride: eStride, count: count,
                        into: out + r * outStride + c, outStride: outStride)
                r += 4
            }
            if r + 2 <= rows {
                tile2x4(paired + r / 2 * pairStride, e + c * eStride, eStride: eStride, count: count,
                        into: out + r * outStride + c, outStride: outStride)
                r += 2
            }
            if r < rows { tile1x4(z + r * zStride, e + c * eStride, eStride: eStride, count: count, into: out + r * outStride + c) }
            c += 4
        }
        for r in 0..<rows {
            for c in fullColumns..<columns {
                out[r * outStride + c] += Double(dot(z + r * zStride, e + c * eStride, count: count))
            }
        }
    }
}
#endif
