import NoiseKernelCore

/// Eight f32/Int32 lanes: AVX2 on x86_64 (through `VectorMath`), per-lane code elsewhere.
enum Lanes8: Lanes {
    typealias Ints = SIMD8<Int32>
    typealias Floats = SIMD8<Float>

    @inline(__always) static func shiftRightLogical(_ a: Ints, _ count: Int32) -> Ints {
        VectorMath.signed(VectorMath.shiftRight(VectorMath.unsigned(a), count))
    }
    @inline(__always) static func shiftRightArithmetic(_ a: Ints, _ count: Int32) -> Ints { VectorMath.shiftRight(a, count) }
    @inline(__always) static func shiftLeft(_ a: Ints, _ count: Int32) -> Ints { VectorMath.shiftLeft(a, count) }
    @inline(__always) static func shiftLeft(_ a: Ints, by counts: Ints) -> Ints { VectorMath.shiftLeft(a, by: counts) }
    @inline(__always) static func converted(_ a: Ints) -> Floats { VectorMath.float(a) }
    @inline(__always) static func bits(_ a: Floats) -> Ints { VectorMath.signed(VectorMath.bits(a)) }
    @inline(__always) static func floats(bits: Ints) -> Floats { VectorMath.float(VectorMath.unsigned(bits)) }
    @inline(__always) static func add(_ a: Floats, _ b: Floats) -> Floats { a + b }
    @inline(__always) static func multiply(_ a: Floats, _ b: Floats) -> Floats { VectorMath.multiply(a, b) }
    @inline(__always) static func fma(_ a: Floats, _ b: Floats, _ c: Floats) -> Floats { VectorMath.fma(a, b, c) }
    @inline(__always) static func squareRoot(_ a: Floats) -> Floats { VectorMath.squareRoot(a) }
    @inline(__always) static func maximum(_ a: Floats, _ b: Floats) -> Floats { VectorMath.maximum(a, b) }
    @inline(__always) static func minimum(_ a: Floats, _ b: Floats) -> Floats { VectorMath.minimum(a, b) }
}
