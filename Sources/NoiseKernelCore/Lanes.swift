/// The lane-wise operations noise stream v1's arithmetic is written in (`BoxMuller`, `Blend`).
/// Each kernel conforms once for its vector width, one instruction per operation, in a module
/// built with that width's target features; the algorithms are written once over this protocol,
/// so every kernel performs the same operations in the same order and writes the same bits.
public protocol Lanes {
    /// Int32 lanes.
    associatedtype Ints
    /// f32 lanes.
    associatedtype Floats

    static func ints(_ value: Int32) -> Ints
    static func floats(_ value: Float) -> Floats

    static func add(_ a: Ints, _ b: Ints) -> Ints
    static func subtract(_ a: Ints, _ b: Ints) -> Ints
    static func and(_ a: Ints, _ b: Ints) -> Ints
    static func or(_ a: Ints, _ b: Ints) -> Ints
    static func xor(_ a: Ints, _ b: Ints) -> Ints
    /// Shifts by a constant count in 0..<32.
    static func shiftRightLogical(_ a: Ints, _ count: Int32) -> Ints
    static func shiftRightArithmetic(_ a: Ints, _ count: Int32) -> Ints
    static func shiftLeft(_ a: Ints, _ count: Int32) -> Ints
    /// Shifts each lane by its own count in 0..<32.
    static func shiftLeft(_ a: Ints, by counts: Ints) -> Ints

    /// Int32 -> f32, rounded to nearest.
    static func converted(_ a: Ints) -> Floats
    /// The same bits reinterpreted.
    static func bits(_ a: Floats) -> Ints
    static func floats(bits: Ints) -> Floats

    static func add(_ a: Floats, _ b: Floats) -> Floats
    static func multiply(_ a: Floats, _ b: Floats) -> Floats
    /// a * b + c, rounded once.
    static func fma(_ a: Floats, _ b: Floats, _ c: Floats) -> Floats
    /// Correctly rounded.
    static func squareRoot(_ a: Floats) -> Floats
    /// Lane-wise max(a, b) and min(a, b), with x86's rule for NaN: a NaN in `a` gives `b`.
    static func maximum(_ a: Floats, _ b: Floats) -> Floats
    static func minimum(_ a: Floats, _ b: Floats) -> Floats
}

/// Two vectors of `Base` worked in lockstep, each operation on one then the other: the 512-bit
/// kernel transforms two blocks so, which keeps an independent instruction beside every long
/// dependency chain (log polynomial, square root).
public enum PairedLanes<Base: Lanes>: Lanes {
    public typealias Ints = Pair<Base.Ints>
    public typealias Floats = Pair<Base.Floats>

    @inlinable @inline(__always) public static func ints(_ value: Int32) -> Ints { Pair(Base.ints(value)) }
    @inlinable @inline(__always) public static func floats(_ value: Float) -> Floats { Pair(Base.floats(value)) }
    @inlinable @inline(__always) public static func add(_ a: Ints, _ b: Ints) -> Ints { a.with(b, Base.add) }
    @inlinable @inline(__always) public static func subtract(_ a: Ints, _ b: Ints) -> Ints { a.with(b, Base.subtract) }
    @inlinable @inline(__always) public static func and(_ a: Ints, _ b: Ints) -> Ints { a.with(b, Base.and) }
    @inlinable @inline(__always) public static func or(_ a: Ints, _ b: Ints) -> Ints { a.with(b, Base.or) }
    @inlinable @inline(__always) public static func xor(_ a: Ints, _ b: Ints) -> Ints { a.with(b, Base.xor) }
    @inlinable @inline(__always) public static func shiftRightLogical(_ a: Ints, _ count: Int32) -> Ints {
        a.map { Base.shiftRightLogical($0, count) }
    }
    @inlinable @inline(__always) public static func shiftRightArithmetic(_ a: Ints, _ count: Int32) -> Ints {
        a.map { Base.shiftRightArithmetic($0, count) }
    }
    @inlinable @inline(__always) public static func shiftLeft(_ a: Ints, _ count: Int32) -> Ints {
        a.map { Base.shiftLeft($0, count) }
    }
    @inlinable @inline(__always) public static func shiftLeft(_ a: Ints, by counts: Ints) -> Ints {
        a.with(counts, Base.shiftLeft(_:by:))
    }
    @inlinable @inline(__always) public static func converted(_ a: Ints) -> Floats { a.map(Base.converted) }
    @inlinable @inline(__always) public static func bits(_ a: Floats) -> Ints { a.map(Base.bits) }
    @inlinable @inline(__always) public static func floats(bits: Ints) -> Floats { bits.map { Base.floats(bits: $0) } }
    @inlinable @inline(__always) public static func add(_ a: Floats, _ b: Floats) -> Floats { a.with(b, Base.add) }
    @inlinable @inline(__always) public static func multiply(_ a: Floats, _ b: Floats) -> Floats { a.with(b, Base.multiply) }
    @inlinable @inline(__always) public static func fma(_ a: Floats, _ b: Floats, _ c: Floats) -> Floats {
        Pair(Base.fma(a.first, b.first, c.first), Base.fma(a.second, b.second, c.second))
    }
    @inlinable @inline(__always) public static func squareRoot(_ a: Floats) -> Floats { a.map(Base.squareRoot) }
    @inlinable @inline(__always) public static func maximum(_ a: Floats, _ b: Floats) -> Floats { a.with(b, Base.maximum) }
    @inlinable @inline(__always) public static func minimum(_ a: Floats, _ b: Floats) -> Floats { a.with(b, Base.minimum) }
}

/// The same value for two blocks.
public struct Pair<T> {
    public var first: T
    public var second: T

    @inlinable @inline(__always) public init(_ first: T, _ second: T) { (self.first, self.second) = (first, second) }
    @inlinable @inline(__always) public init(_ both: T) { (first, second) = (both, both) }

    @inlinable @inline(__always) public func map<U>(_ step: (T) -> U) -> Pair<U> { Pair<U>(step(first), step(second)) }

    @inlinable @inline(__always) public func with<U, V>(_ other: Pair<U>, _ step: (T, U) -> V) -> Pair<V> {
        Pair<V>(step(first, other.first), step(second, other.second))
    }
}

/// What is the same at every width: Swift's own lane-wise integer operators, which lower to one
/// instruction each in the module that specialises them.
extension Lanes where Ints: SIMD, Ints.Scalar == Int32, Floats: SIMD, Floats.Scalar == Float {
    @inlinable @inline(__always) public static func ints(_ value: Int32) -> Ints { Ints(repeating: value) }
    @inlinable @inline(__always) public static func floats(_ value: Float) -> Floats { Floats(repeating: value) }
    @inlinable @inline(__always) public static func add(_ a: Ints, _ b: Ints) -> Ints { a &+ b }
    @inlinable @inline(__always) public static func subtract(_ a: Ints, _ b: Ints) -> Ints { a &- b }
    @inlinable @inline(__always) public static func and(_ a: Ints, _ b: Ints) -> Ints { a & b }
    @inlinable @inline(__always) public static func or(_ a: Ints, _ b: Ints) -> Ints { a | b }
    @inlinable @inline(__always) public static func xor(_ a: Ints, _ b: Ints) -> Ints { a ^ b }
}
