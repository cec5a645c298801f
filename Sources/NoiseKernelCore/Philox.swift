/// Philox4x32-10 (Salmon et al. 2011) with the Random123 constants of `NoiseStreamV1`.
public enum Philox4x32_10 {
    /// One block: four 32-bit outputs for a 128-bit counter under a 64-bit key.
    public static func block(counter: SIMD4<UInt32>, key: SIMD2<UInt32>) -> SIMD4<UInt32> {
        var x = counter
        var k = key
        for round in 0..<10 {
            if round > 0 {
                k.x &+= NoiseStreamV1.keyBump0
                k.y &+= NoiseStreamV1.keyBump1
            }
            let p0 = UInt64(NoiseStreamV1.multiplier0) &* UInt64(x.x)
            let p1 = UInt64(NoiseStreamV1.multiplier1) &* UInt64(x.z)
            x = SIMD4(
                UInt32(truncatingIfNeeded: p1 >> 32) ^ x.y ^ k.x,
                UInt32(truncatingIfNeeded: p1),
                UInt32(truncatingIfNeeded: p0 >> 32) ^ x.w ^ k.y,
                UInt32(truncatingIfNeeded: p0)
            )
        }
        return x
    }
}

/// The operations of a vectorised Philox round with each 32-bit word in the low half of a 64-bit
/// lane (the high half is don't-care): a 32 x 32 -> 64-bit multiply (vpmuludq) then gives the
/// whole product, whose halves are one shift apart, so a round needs no lane shuffles and no
/// separate low multiply. One conformance per vector width.
public protocol WideLanes {
    associatedtype Wide
    /// Every lane's low word `x`.
    static func splat(_ x: UInt32) -> Wide
    /// The 64-bit products of the lanes' low words.
    static func multiply(_ a: Wide, _ b: Wide) -> Wide
    /// The high word of each 64-bit lane, in its low half.
    static func high(_ a: Wide) -> Wide
    static func xor(_ a: Wide, _ b: Wide) -> Wide
    /// Lane-wise addition of the low words (the high halves may differ).
    static func add(_ a: Wide, _ b: Wide) -> Wide
}

/// What is the same at every width. The add is 64-bit: its carry lands in the high half, which the
/// multiply ignores and `high` shifts out, so the words come out as with a 32-bit add.
extension WideLanes where Wide: SIMD, Wide.Scalar == Int64 {
    @inlinable @inline(__always) public static func xor(_ a: Wide, _ b: Wide) -> Wide { a ^ b }
    @inlinable @inline(__always) public static func add(_ a: Wide, _ b: Wide) -> Wide { a &+ b }
}

/// The four counter words of a set of Philox blocks, one block per 64-bit lane.
public struct PhiloxWords<L: WideLanes> {
    public var w0, w1, w2, w3: L.Wide

    /// Counters (groups, groupHigh, idLow, idHigh): `groups` holds each lane's first word.
    @inlinable @inline(__always)
    public init(groups: L.Wide, groupHigh: UInt32, idLow: UInt32, idHigh: UInt32) {
        (w0, w1, w2, w3) = (groups, L.splat(groupHigh), L.splat(idLow), L.splat(idHigh))
    }

    @inlinable @inline(__always)
    public mutating func round(_ key: PhiloxRoundKey<L>) {
        let p0 = L.multiply(w0, key.multiplier0), p1 = L.multiply(w2, key.multiplier1)
        w0 = L.xor(L.xor(L.high(p1), w1), key.k0)
        w2 = L.xor(L.xor(L.high(p0), w3), key.k1)
        (w1, w3) = (p1, p0)
    }
}

/// One round's key and the multipliers, splatted.
public struct PhiloxRoundKey<L: WideLanes> {
    public var k0, k1: L.Wide
    public let multiplier0, multiplier1: L.Wide

    /// Runs `round` ten times, with the key bumped between rounds. Written out: unrolled, the key
    /// schedule no longer depends on a loop and the compiler hoists it out of the caller's loop
    /// over blocks (LLVM leaves a loop here rolled, with register copies for the word rotation).
    @inlinable @inline(__always)
    public static func tenRounds(key: SIMD2<UInt32>, _ round: (PhiloxRoundKey<L>) -> Void) {
        var k = PhiloxRoundKey(k0: L.splat(key.x), k1: L.splat(key.y),
                               multiplier0: L.splat(NoiseStreamV1.multiplier0), multiplier1: L.splat(NoiseStreamV1.multiplier1))
        let bump0 = L.splat(NoiseStreamV1.keyBump0), bump1 = L.splat(NoiseStreamV1.keyBump1)
        @inline(__always) func bump() { (k.k0, k.k1) = (L.add(k.k0, bump0), L.add(k.k1, bump1)) }
        round(k); bump(); round(k); bump(); round(k); bump(); round(k); bump(); round(k); bump()
        round(k); bump(); round(k); bump(); round(k); bump(); round(k); bump(); round(k)
    }

    /// `tenRounds` under two keys at once, each round given both keys' round keys: two streams'
    /// blocks worked in lockstep.
    @inlinable @inline(__always)
    public static func tenRounds(keys first: SIMD2<UInt32>, _ second: SIMD2<UInt32>,
                                 _ round: (PhiloxRoundKey<L>, PhiloxRoundKey<L>) -> Void) {
        let multiplier0 = L.splat(NoiseStreamV1.multiplier0), multiplier1 = L.splat(NoiseStreamV1.multiplier1)
        var k = PhiloxRoundKey(k0: L.splat(first.x), k1: L.splat(first.y), multiplier0: multiplier0, multiplier1: multiplier1)
        var l = PhiloxRoundKey(k0: L.splat(second.x), k1: L.splat(second.y), multiplier0: multiplier0, multiplier1: multiplier1)
        let bump0 = L.splat(NoiseStreamV1.keyBump0), bump1 = L.splat(NoiseStreamV1.keyBump1)
        @inline(__always) func bump() {
            (k.k0, k.k1) = (L.add(k.k0, bump0), L.add(k.k1, bump1))
            (l.k0, l.k1) = (L.add(l.k0, bump0), L.add(l.k1, bump1))
        }
        round(k, l); bump(); round(k, l); bump(); round(k, l); bump(); round(k, l); bump(); round(k, l); bump()
        round(k, l); bump(); round(k, l); bump(); round(k, l); bump(); round(k, l); bump(); round(k, l)
    }

    @inlinable @inline(__always)
    init(k0: L.Wide, k1: L.Wide, multiplier0: L.Wide, multiplier1: L.Wide) {
        (self.k0, self.k1, self.multiplier0, self.multiplier1) = (k0, k1, multiplier0, multiplier1)
    }
}
