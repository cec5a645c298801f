import XCTest
import Schedule

final class StandardNormalTests: XCTestCase {
    /// Φ⁻¹(p) for exact double p, computed with mpmath at 50 digits.
    private let quantiles: [(p: Double, z: Double)] = [
        (1e-300, -37.047096299361199237),
        (1e-100, -21.273453560965324294),
        (1e-20, -9.2623400897984075796),
        (1e-10, -6.3613409024040561991),
        (1e-05, -4.2648907939228246102),
        (0.01, -2.3263478740408410931),
        (0.02425, -1.9729610513118848376),
        (0.1, -1.2815515655446004353),
        (0.3, -0.52440051270804081597),
        (0.5, 0.0),
        (0.7, 0.52440051270804065631),
        (0.975, 1.9599639845400538556),
        (0.999, 3.0902323061678132778),
        (0.9999999999, 6.3613408896974218642),
    ]

    func testQuantileMatchesHighPrecisionReference() {
        for (p, z) in quantiles {
            let computed = StandardNormal.quantile(p)
            XCTAssertEqual(computed, z, accuracy: max(abs(z), 1) * 4e-16, "quantile(\(p))")
        }
    }

    func testCDFMatchesHighPrecisionReference() {
        let values: [(z: Double, p: Double)] = [
            (-37.5, 4.6053530095819548438e-308),
            (-20, 2.7536241186062336951e-89),
            (-8, 6.2209605742717841235e-16),
            (-3, 0.0013498980316300945267),
            (-1, 0.15865525393145705141),
            (0, 0.5),
            (0.5, 0.69146246127401310364),
            (2, 0.9772498680518207928),
            (6, 0.99999999901341235496),
        ]
        for (z, p) in values {
            XCTAssertEqual(StandardNormal.cdf(z), p, accuracy: p * 1e-13, "cdf(\(z))")
        }
    }

    func testQuantileInvertsCDFAcrossTheRange() {
        var z = -30.0
        while z <= 8 {
            // Rounding p = Φ(z) to a double moves z by about ulp(p) / φ(z), which dominates the
            // error in the upper tail (p near 1); allow that plus a few ulps of z.
            let p = StandardNormal.cdf(z)
            let conditioning = 2 * p.ulp / StandardNormal.pdf(z)
            XCTAssertEqual(StandardNormal.quantile(p), z,
                           accuracy: conditioning + 1e-14 * max(1, abs(z)), "z = \(z)")
            z += 0.37
        }
    }

    func testQuantileEndpointsAreInfinite() {
        XCTAssertEqual(StandardNormal.quantile(0), -.infinity)
        XCTAssertEqual(StandardNormal.quantile(1), .infinity)
    }
}
