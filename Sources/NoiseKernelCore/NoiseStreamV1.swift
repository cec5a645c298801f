/// The constants of noise stream v1 (docs/noise-stream.md), for every kernel implementation.
/// Computed and inlinable, so each kernel module folds them into its own instructions.
public enum NoiseStreamV1 {
    /// Philox4x32-10 with the Random123 constants: the round multipliers and the key bumps.
    @inlinable public static var multiplier0: UInt32 { 0xD251_1F53 }
    @inlinable public static var multiplier1: UInt32 { 0xCD9E_8D57 }
    @inlinable public static var keyBump0: UInt32 { 0x9E37_79B9 }
    @inlinable public static var keyBump1: UInt32 { 0xBB67_AE85 }

    /// Elements per kernel block: 16 Philox groups of four.
    @inlinable public static var blockElements: Int { 64 }
    @inlinable public static var blockGroups: Int { 16 }

    /// XORed into the seed's high word for the key of the per-sample uniforms ("SIGM").
    @inlinable public static var sigmaKeyTweak: UInt32 { 0x5349_474D }
    /// XORed into the seed's high word for the posterior's ξ stream ("POST").
    @inlinable public static var posteriorKeyTweak: UInt32 { 0x504F_5354 }

    /// Box–Muller's radius: adding this to the bits of f32(N) moves the exponent boundary from 1
    /// to sqrt(1/2), so the mantissa 1 + f lands in [sqrt(1/2), sqrt(2)).
    @inlinable public static var radiusBoundaryOffset: Int32 { 0x3f80_0000 - 0x3f35_04f3 }
    /// log1p(f) = f - f^2/2 + f^3 P(f) on [sqrt(1/2) - 1, sqrt(2) - 1]: the Cephes logf
    /// polynomial P, highest degree first (relative error ~1e-7).
    @inlinable public static var log1pCoefficients: (Float, Float, Float, Float, Float, Float, Float, Float, Float) {
        (7.0376836292e-2, -1.1514610310e-1, 1.1676998740e-1, -1.2420140846e-1, 1.4249322787e-1,
         -1.6668057665e-1, 2.0000714765e-1, -2.4999993993e-1, 3.3333331174e-1)
    }
    /// ln 2 split in two so that (e - 25) ln2High is exact.
    @inlinable public static var ln2High: Float { 0.693359375 }
    @inlinable public static var ln2Low: Float { -2.12194440e-4 }
    /// Taylor polynomials of sin(pi y) / y and cos(pi y) in y^2, highest degree first; truncation
    /// error < 3e-8 on |y| <= 1/4.
    @inlinable public static var sinPiCoefficients: (Float, Float, Float, Float, Float) {
        (0.08214588661112819, -0.5992645293207919, 2.550164039877345, -5.167712780049969, 3.141592653589793)
    }
    @inlinable public static var cosPiCoefficients: (Float, Float, Float, Float, Float) {
        (0.23533063035889312, -1.3352627688545893, 4.058712126416768, -4.934802200544679, 1)
    }
}
